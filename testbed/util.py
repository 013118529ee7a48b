"""Small helpers shared by the test-bed modules: logging, subprocesses, state, ports."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


class TestbedError(Exception):
    """A failure with a one-line explanation for the person running the test bed."""


def state_dir() -> Path:
    path = Path(os.environ.get("PROVISION_TESTBED_DIR", "/var/lib/provision-testbed"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def log(message: str) -> None:
    print(f"[testbed {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(
    argv: list[str],
    *,
    capture: bool = False,
    check: bool = True,
    input_text: str | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one command (never through a shell) and log it; raise TestbedError on failure."""
    log("$ " + shlex.join(argv))
    try:
        result = subprocess.run(
            argv,
            text=True,
            input=input_text,
            stdout=subprocess.PIPE if capture else sys.stderr,
            stderr=subprocess.PIPE if capture else sys.stderr,
            cwd=cwd,
            env=None if env is None else {**os.environ, **env},
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise TestbedError(f"{argv[0]} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise TestbedError(f"timed out after {timeout:.0f}s: {shlex.join(argv)}") from exc
    if check and result.returncode != 0:
        detail = (result.stderr or "").strip().splitlines()[-1:] if capture else []
        raise TestbedError(
            f"command failed (exit {result.returncode}): {shlex.join(argv)}"
            + (f": {detail[0]}" if detail else "")
        )
    return result


def output(argv: list[str], **kwargs: Any) -> str:
    return run(argv, capture=True, **kwargs).stdout.strip()


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port on ``address`` that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_until(predicate: Any, *, timeout: float, what: str, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TestbedError(f"timed out after {timeout:.0f}s waiting for {what}")


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # A zombie is not alive for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def spawn(argv: list[str], *, log_file: Path) -> int:
    """Start a long-running server detached from this process; return its pid."""
    log("$ " + shlex.join(argv) + f"  (background, log {log_file})")
    with log_file.open("ab") as sink:
        proc = subprocess.Popen(
            argv, stdout=sink, stderr=sink, stdin=subprocess.DEVNULL, start_new_session=True
        )
    return proc.pid


def fingerprint_of(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
    return digest.hexdigest()[:12]


def load_state() -> dict[str, Any]:
    path = state_dir() / "state.json"
    if not path.exists():
        return {}
    return dict(json.loads(path.read_text()))


def save_state(state: dict[str, Any]) -> None:
    path = state_dir() / "state.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def missing_packages(packages: list[str]) -> list[str]:
    """The Debian packages of ``packages`` that are not installed on this machine."""
    missing = []
    for package in packages:
        probe = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", package],
            capture_output=True,
            text=True,
            check=False,
        )
        if "install ok installed" not in probe.stdout:
            missing.append(package)
    return missing


def install_packages(packages: list[str]) -> None:
    """apt-get install what is missing; refresh the lists only when the install needs it."""
    missing = missing_packages(packages)
    if not missing:
        return
    log(f"installing {' '.join(missing)}")
    env = {"DEBIAN_FRONTEND": "noninteractive", "NEEDRESTART_MODE": "l"}
    # Another apt run (a colleague's, the first boot's) may hold the lock: wait, don't fail.
    lock = ["-o", "DPkg::Lock::Timeout=600"]
    install = ["apt-get", *lock, "install", "-y", "-qq", "--no-install-recommends", *missing]
    if run(install, env=env, check=False).returncode != 0:
        run(["apt-get", *lock, "update", "-qq"], env=env)
        run(install, env=env)

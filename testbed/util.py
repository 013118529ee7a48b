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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
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

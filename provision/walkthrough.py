"""The reachability probe and the notes walkthrough over testinfra, in a child Python.

``python -m provision.walkthrough`` reads one request (JSON on stdin: ``job`` ``probe`` or
``walk``, ``inventory``, ``hosts``, ``users``, ``image``) and writes one JSON object per line on
stdout as it goes: ``{"host": H}`` when it starts on a host, ``{"step": {...}}`` per walkthrough
step (a :class:`~provision.verify.StepResult`), ``{"unreachable": H, "reason": ...}``.
:mod:`provision.verify` starts it with the run's environment (testinfra reads ANSIBLE_CONFIG
and runs ansible-inventory from PATH), so provision's own environment is never rewritten.

The walkthrough does what the user's notes do, as the target user: ``docker pull``, ``images``,
``ps``, ``run -d``, ``exec``, ``logs``, ``stop``, ``rm``, ``rmi``, each reported.
"""

from __future__ import annotations

import json
import secrets
import shlex
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any, Final, TextIO

from provision.errors import one_line
from provision.verify import StepResult, clip

_READY: Final = "provision-walkthrough-ready"
_EXEC_OK: Final = "provision-exec-ok"

Emit = Callable[[Mapping[str, Any]], None]


class _Docker:
    """Runs ``docker`` on one host as one user."""

    def __init__(self, host: Any, user: str | None) -> None:
        self.host = host
        self.user = user

    def shown(self, args: Sequence[str]) -> str:
        return shlex.join(["docker", *args])

    def run(self, args: Sequence[str]) -> Any:
        if self.user:
            template = "sudo -n -H -u %s -- docker" + " %s" * len(args)
            return self.host.run(template, self.user, *args)
        template = "docker" + " %s" * len(args)
        return self.host.run(template, *args)


def _walk_one_host(host_name: str, host: Any, *, user: str | None, image: str, emit: Emit) -> bool:
    """The walkthrough on one host; False when the host cannot be reached."""
    try:
        login = str(host.check_output("id -un")).strip()
    except Exception as exc:
        emit({"unreachable": host_name, "reason": _exception_reason(exc)})
        return False
    # As the target user: directly when we log in as that user (proves docker works without
    # sudo), else through `sudo -u USER`, which starts a fresh login with its groups.
    docker = _Docker(host, None if not user or user == login else user)
    name = f"provision-walkthrough-{secrets.token_hex(3)}"
    existed = docker.run(["image", "inspect", image]).rc == 0

    def check_pull(r: Any) -> str | None:
        return None if r.rc == 0 else _err(r)

    def check_images(r: Any) -> str | None:
        if r.rc != 0:
            return _err(r)
        return None if r.stdout.strip() else f"{image} is not listed"

    def check_run(r: Any) -> str | None:
        if r.rc != 0:
            return _err(r)
        running = docker.run(["inspect", "--format", "{{.State.Running}}", name])
        return None if running.stdout.strip() == "true" else "the container is not running"

    def check_exec(r: Any) -> str | None:
        if r.rc != 0:
            return _err(r)
        return None if r.stdout.strip() == _EXEC_OK else f"unexpected output {r.stdout!r}"

    def check_logs(r: Any) -> str | None:
        if r.rc != 0:
            return _err(r)
        return None if _READY in r.stdout + r.stderr else f"{_READY!r} not in the logs"

    def check_ok(r: Any) -> str | None:
        return None if r.rc == 0 else _err(r)

    steps: list[tuple[str, list[str], Callable[[Any], str | None]]] = [
        ("pull", ["pull", "--quiet", image], check_pull),
        ("images", ["images", "--format", "{{.Repository}}:{{.Tag}}", image], check_images),
        ("ps", ["ps", "--all", "--format", "{{.Names}}"], check_ok),
        (
            "run -d",
            ["run", "-d", "--name", name, image, "sh", "-c", f"echo {_READY}; exec sleep 600"],
            check_run,
        ),
        ("exec", ["exec", name, "echo", _EXEC_OK], check_exec),
        ("logs", ["logs", name], check_logs),
        ("stop", ["stop", "--time", "1", name], check_ok),
        ("rm", ["rm", name], check_ok),
        ("rmi", ["rmi", image], check_ok),
    ]
    failed, completed = False, False
    try:
        for step, args, check in steps:
            shown = docker.shown(args)
            if failed:
                result = StepResult(host_name, step, shown, "skipped", "an earlier step failed")
            elif step == "rmi" and existed:
                result = StepResult(
                    host_name,
                    step,
                    shown,
                    "skipped",
                    f"{image} was on the host before the walkthrough",
                )
            else:
                started = time.monotonic()
                problem = check(docker.run(args))
                if step == "logs" and problem:
                    time.sleep(1.0)  # the first log line may not be flushed yet
                    problem = check(docker.run(args))
                result = StepResult(
                    host_name,
                    step,
                    shown,
                    "failed" if problem else "passed",
                    problem or "",
                    round(time.monotonic() - started, 2),
                )
                failed = bool(problem)
            emit({"step": asdict(result)})
        completed = not failed
    finally:
        if not completed:  # failed, or interrupted (Ctrl-C, SIGTERM, a timeout)
            _undo(docker, name, None if existed else image)
    return True


def _undo(docker: _Docker, name: str, pulled: str | None) -> None:
    """Remove the walkthrough's container, and the image when the walkthrough pulled it, so an
    unfinished walkthrough leaves the host as it found it; a second Ctrl-C does not cut this
    short (the parent allows verify.CLEANUP_GRACE seconds, then kills)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    docker.run(["rm", "--force", name])
    if pulled is not None:
        docker.run(["image", "rm", "--force", pulled])


def _reachable(host: Any) -> str | None:
    """Why ``host`` cannot be reached over SSH, or None."""
    try:
        result = host.run("true")
    except Exception as exc:  # testinfra raises on ssh's exit status 255
        return _exception_reason(exc)
    if result.rc != 0:
        reason = one_line(result.stderr or result.stdout)[:300]
        return reason or f"ssh exit status {result.rc}"
    return None


def _exception_reason(exc: Exception) -> str:
    """testinfra raises ``RuntimeError(CommandResult)`` when ssh itself fails: use its stderr."""
    result = exc.args[0] if exc.args else None
    stderr = getattr(result, "stderr", None)
    return one_line(str(stderr) if stderr else str(exc))[:300]


def _err(result: Any) -> str:
    text = (result.stderr or result.stdout or "").strip()
    return clip(one_line(text), 600) or f"exit status {result.rc}"


def run(request: Mapping[str, Any], emit: Emit) -> None:
    """Carry out one request (the module's docstring), reporting through ``emit``."""
    import testinfra

    users: Mapping[str, str] = request.get("users") or {}
    for name in request["hosts"]:
        emit({"host": name})
        host = testinfra.get_host(f"ansible://{name}", ansible_inventory=request["inventory"])
        if request["job"] == "probe":
            reason = _reachable(host)
            if reason is not None:
                emit({"unreachable": name, "reason": reason})
        elif not _walk_one_host(
            name, host, user=users.get(name) or None, image=request["image"], emit=emit
        ):
            return


def _main() -> int:
    # provision ends an unfinished walkthrough with SIGTERM: unwind as for Ctrl-C, through the
    # cleanup in _walk_one_host.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    request = json.load(sys.stdin)
    events: TextIO = sys.stdout
    sys.stdout = sys.stderr  # stdout carries the events only

    def emit(event: Mapping[str, Any]) -> None:
        events.write(json.dumps(event) + "\n")
        events.flush()

    run(request, emit)
    return 0


if __name__ == "__main__":
    sys.exit(_main())

"""The one adapter on ansible-runner: every Ansible run goes through :func:`run_playbook`.

Each run gets a fresh private_data_dir (ansible-runner re-reads ``env/extravars`` and
``env/envvars`` left in an old one), the virtualenv's ``bin`` first on ``PATH`` (so
``ansible-playbook`` is the one installed with provision), and ``ANSIBLE_CONFIG`` pointing at the
shipped ``ansible.cfg``. Results come from ansible-runner's ``status``, ``rc`` and ``stats`` and
its structured events, never from parsing Ansible's text output.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from provision.errors import (
    InterruptedRunError,
    ProvisionError,
    RunFailedError,
    UnreachableError,
    one_line,
)
from provision.paths import DataPaths
from provision.role_options import docker_formats

log = logging.getLogger("provision.runner")

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # Ansible colours its text through the pty

_TASK_RESULT_EVENTS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_skipped": "skipped",
    "runner_on_unreachable": "unreachable",
}


@dataclass(frozen=True)
class TaskResult:
    """One task's outcome on one host, as reported live."""

    host: str
    task: str
    status: str  # ok | changed | failed | ignored | skipped | unreachable
    duration: float | None = None
    message: str = ""
    diff: str = ""  # Ansible's own rendering, only in --diff runs
    # The module's result as Ansible reported it (callers that act on a module's return values).
    result: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class HostRecap:
    host: str
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "ok": self.ok,
            "changed": self.changed,
            "failed": self.failed,
            "unreachable": self.unreachable,
            "skipped": self.skipped,
            "rescued": self.rescued,
            "ignored": self.ignored,
        }


@dataclass
class RunResult:
    """What one ``ansible-playbook`` run did."""

    status: str
    rc: int
    hosts: list[HostRecap]
    elapsed: float
    check: bool = False
    failures: list[TaskResult] = field(default_factory=list)
    changes: list[TaskResult] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)
    error_lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # The hosts of each batch Ansible ran (one batch unless the play has `serial`).
    batches: list[list[str]] = field(default_factory=list)

    @property
    def interrupted(self) -> bool:
        return self.status == "canceled"

    @property
    def changed(self) -> int:
        return sum(h.changed for h in self.hosts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "rc": self.rc,
            "check": self.check,
            "elapsed": round(self.elapsed, 2),
            "changed": self.changed,
            "hosts": [h.as_dict() for h in self.hosts],
            "failures": [
                {"host": f.host, "task": f.task, "message": f.message} for f in self.failures
            ],
            # with --check: the drift, what a real run would change
            "changes": [{"host": c.host, "task": c.task, "diff": c.diff} for c in self.changes],
            "unreachable": dict(self.unreachable),
            "warnings": list(self.warnings),
            "batches": [list(b) for b in self.batches],
        }

    def raise_for_status(self) -> None:
        """Turn a failed run into the matching domain error."""
        if self.interrupted:
            raise InterruptedRunError("interrupted: the Ansible run was cancelled")
        unreachable_hosts = [h.host for h in self.hosts if h.unreachable]
        if unreachable_hosts:
            first = unreachable_hosts[0]
            why = self.unreachable.get(first, "")
            more = len(unreachable_hosts) - 1
            others = f" (and {more} more)" if more else ""
            raise UnreachableError(
                f"host {first}{others} unreachable" + (f": {why}" if why else ""),
                detail="\n".join(f"{h}: {m}" for h, m in self.unreachable.items()),
            )
        failed_hosts = [h.host for h in self.hosts if h.failed]
        if failed_hosts:
            first_failure = self.failures[0] if self.failures else None
            where = (
                f": {first_failure.host}: {first_failure.task}: {first_failure.message}"
                if first_failure
                else ""
            )
            raise RunFailedError(
                f"a task failed on {', '.join(failed_hosts)}{where}",
                detail="\n".join(f"{f.host}: {f.task}: {f.message}" for f in self.failures),
            )
        if self.status == "timeout":
            raise RunFailedError("the Ansible run timed out")
        if self.status != "successful" or self.rc != 0:
            reason = self.error_lines[0] if self.error_lines else f"exit status {self.rc}"
            if self.rc == 127:
                reason = "ansible-playbook was not found: reinstall provision"
            raise RunFailedError(
                f"ansible-playbook failed: {reason}", detail="\n".join(self.error_lines)
            )


def _message(res: Mapping[str, Any]) -> str:
    for key in ("msg", "stderr", "module_stderr", "reason"):
        value = res.get(key)
        if value:
            return one_line(str(value))[:300]
    if res.get("rc"):
        return f"exit status {res['rc']}"
    return ""


def _task_name(data: Mapping[str, Any]) -> str:
    task = str(data.get("task") or data.get("name") or "").strip()
    role = str(data.get("role") or "").strip()
    if role and not task.startswith(f"{role} : "):
        return f"{role} : {task}"
    return task


class _EventCollector:
    """ansible-runner ``event_handler``: live task lines and failure details."""

    def __init__(
        self,
        on_task: Callable[[TaskResult], None] | None,
        on_text: Callable[[str], None] | None,
        mask: Callable[[str], str] | None = None,
    ) -> None:
        self.on_task = on_task
        self.on_text = on_text
        # A URL's user:password@ (a repository token, a proxy's credentials) is shown as ***@
        # in every line, result, diff and warning provision prints or keeps (docker_formats).
        self.mask = mask or docker_formats().masked
        self.failures: list[TaskResult] = []
        self.changes: list[TaskResult] = []
        self.unreachable: dict[str, str] = {}
        self.error_lines: list[str] = []
        self.stats: dict[str, Any] | None = None
        self._pending_diff: dict[str, str] = {}
        # warning text -> hosts that reported it (the role's WARNING: lines, Ansible's warnings)
        self.warnings: dict[str, list[str]] = {}
        # Ansible starts the play again for each serial batch: the hosts each start reached.
        self.batches: list[list[str]] = []

    def _batch_host(self, name: str, host: str) -> None:
        if name == "playbook_on_play_start":
            self.batches.append([])
        elif host and self.batches and host not in self.batches[-1]:
            self.batches[-1].append(host)

    def _warn(self, text: str, host: str = "") -> None:
        hosts = self.warnings.setdefault(text, [])
        if host and host not in hosts:
            hosts.append(host)

    def warning_lines(self) -> list[str]:
        """Each warning once, with the hosts that reported it."""
        return [
            f"{text} ({', '.join(hosts)})" if hosts else text
            for text, hosts in self.warnings.items()
        ]

    def __call__(self, raw: Mapping[str, Any]) -> bool:
        event: Mapping[str, Any] = _masked(raw, self.mask)
        name = str(event.get("event", ""))
        data: Mapping[str, Any] = event.get("event_data") or {}
        stdout = str(event.get("stdout") or "")
        if self.on_text is not None and stdout:
            self.on_text(stdout)
        if name in ("verbose", "error") and stdout:
            for line in _ANSI.sub("", stdout).splitlines():
                stripped = line.strip()
                if stripped.startswith(("ERROR!", "[ERROR]")):
                    self.error_lines.append(one_line(stripped))
        if name == "warning" and stdout:
            text = one_line(_ANSI.sub("", stdout)).removeprefix("[WARNING]:").strip()
            if text:
                self._warn(text)
        if name == "playbook_on_stats":
            self.stats = dict(data)
        if name == "playbook_on_play_start":
            self._batch_host(name, "")
        if name == "runner_on_file_diff":
            rendered = render_diff(data.get("diff"))
            if rendered:
                host_name = str(data.get("host", "?"))
                self._pending_diff[host_name] = self._pending_diff.get(host_name, "") + rendered
        status = _TASK_RESULT_EVENTS.get(name)
        if status is not None:
            res: Mapping[str, Any] = data.get("res") or {}
            host = str(data.get("host", "?"))
            self._batch_host(name, host)
            if status == "ok" and res.get("changed"):
                status = "changed"
            if status == "failed" and data.get("ignore_errors"):
                status = "ignored"
            diff = self._pending_diff.pop(host, "")
            result = TaskResult(
                host=host,
                task=_task_name(data),
                status=status,
                duration=_float(data.get("duration")),
                message=_message(res) if status in ("failed", "unreachable", "ignored") else "",
                diff=diff,
                result=dict(res),
            )
            for warning in _result_warnings(data, res, status):
                self._warn(warning, host)
            if status == "changed":
                self.changes.append(result)
            if status == "failed":
                self.failures.append(result)
            elif status == "unreachable":
                self.unreachable.setdefault(host, result.message)
            if self.on_task is not None:
                self.on_task(result)
        # ansible-runner drops the event (and r.stats ends up None) unless this is truthy.
        return True


def _masked(value: Any, mask: Callable[[str], str]) -> Any:
    """VALUE with MASK applied to every string in it."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, Mapping):
        return {k: _masked(v, mask) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked(v, mask) for v in value]
    return value


_DEBUG_ACTIONS = frozenset({"debug", "ansible.builtin.debug", "ansible.legacy.debug"})
_WARNING_PREFIX = "WARNING:"


def _result_warnings(data: Mapping[str, Any], res: Mapping[str, Any], status: str) -> list[str]:
    """The warnings of a task's result: the module's own (``module.warn``: ``res.warnings``),
    and a debug task whose message starts with ``WARNING:`` (a role's way to warn)."""
    found: list[str] = []
    for item in res.get("warnings") or []:
        text = item.get("msg") if isinstance(item, Mapping) else item
        if text:
            found.append(one_line(str(text)))
    msg = res.get("msg")
    if (
        status in ("ok", "changed")
        and str(data.get("task_action", "")) in _DEBUG_ACTIONS
        and isinstance(msg, str)
        and msg.lstrip().startswith(_WARNING_PREFIX)
    ):
        found.append(one_line(msg.lstrip().removeprefix(_WARNING_PREFIX)))
    return found


def render_diff(diff: Any) -> str:
    """Unified text of a ``runner_on_file_diff`` event's ``diff`` (a dict or a list of them)."""
    import difflib
    import json

    items = diff if isinstance(diff, list) else [diff]
    parts: list[str] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        if item.get("prepared"):
            parts.append(str(item["prepared"]))
            continue
        if "before" not in item and "after" not in item:
            continue

        def text(value: Any) -> str:
            if isinstance(value, str):
                return value
            return json.dumps(value, indent=2, sort_keys=True, default=str) + "\n"

        before, after = text(item.get("before", "")), text(item.get("after", ""))
        if before == after:
            continue
        lines = difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=str(item.get("before_header", "before")),
            tofile=str(item.get("after_header", "after")),
        )
        parts.append("".join(line if line.endswith("\n") else line + "\n" for line in lines))
    return "".join(parts)


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _recap(stats: Mapping[str, Any] | None) -> list[HostRecap]:
    if not stats:
        return []

    def count(key: str, host: str) -> int:
        return int((stats.get(key) or {}).get(host, 0))

    hosts: set[str] = set()
    for key in ("processed", "ok", "changed", "failures", "dark", "skipped"):
        hosts.update((stats.get(key) or {}).keys())
    return [
        HostRecap(
            host=host,
            ok=count("ok", host),
            changed=count("changed", host),
            failed=count("failures", host),
            unreachable=count("dark", host),
            skipped=count("skipped", host),
            rescued=count("rescued", host),
            ignored=count("ignored", host),
        )
        for host in sorted(hosts)
    ]


def ansible_env(
    paths: DataPaths, *, extra: Mapping[str, str] | None = None, color: bool = False
) -> dict[str, str]:
    """Environment for Ansible and for tools that read Ansible's config (testinfra). Ansible
    runs in a pseudo-terminal under ansible-runner: colour only when ours is a terminal."""
    venv_bin = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    env = {
        "PATH": venv_bin + (os.pathsep + path if path else ""),
        "ANSIBLE_CONFIG": str(paths.ansible_cfg),
        "ANSIBLE_COLLECTIONS_PATH": str(paths.collections_path()),
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
        "ANSIBLE_NOCOLOR": "false" if color else "true",
    }
    if extra:
        env.update(extra)
    return env


@contextmanager
def _cancel_on_sigint() -> Iterator[Callable[[], bool]]:
    """First Ctrl-C asks ansible-runner to stop the run; a second one raises at once."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested.is_set
        return

    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: FrameType | None) -> None:
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()

    signal.signal(signal.SIGINT, handler)
    try:
        yield requested.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


def run_playbook(
    *,
    paths: DataPaths,
    playbook: Path,
    inventory: Path,
    extravars: Mapping[str, Any] | None = None,
    limit: str | None = None,
    check: bool = False,
    diff: bool = False,
    verbosity: int = 0,
    on_task: Callable[[TaskResult], None] | None = None,
    on_text: Callable[[str], None] | None = None,
    keep_artifacts: bool = False,
    envvars: Mapping[str, str] | None = None,
    color: bool = False,
) -> RunResult:
    """Run ``playbook`` against ``inventory`` and return what happened (does not raise on a
    failed run: call :meth:`RunResult.raise_for_status` after reporting)."""
    if not playbook.is_file():
        raise ProvisionError(f"playbook {playbook} not found: reinstall provision")
    try:
        import ansible_runner
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ProvisionError(f"ansible-runner is not installed: {exc}") from exc

    cmdline: list[str] = []
    if check:
        cmdline.append("--check")
    if diff:
        cmdline.append("--diff")

    private_data_dir = Path(tempfile.mkdtemp(prefix="provision-ansible-"))
    collector = _EventCollector(on_task, on_text, docker_formats(paths).masked)
    env = ansible_env(paths, extra=envvars, color=color)
    started = time.monotonic()
    log.info(
        "$ ansible-playbook -i %s %s%s%s (private_data_dir %s)",
        inventory,
        playbook,
        f" --limit {limit}" if limit else "",
        (" " + " ".join(cmdline)) if cmdline else "",
        private_data_dir,
    )
    try:
        with _cancel_on_sigint() as cancelled:
            runner = ansible_runner.run(
                private_data_dir=str(private_data_dir),
                project_dir=str(playbook.parent),
                playbook=playbook.name,
                inventory=str(inventory.resolve()),
                extravars=dict(extravars or {}),
                envvars=env,
                limit=limit,
                verbosity=verbosity or None,
                cmdline=" ".join(cmdline) or None,
                quiet=True,
                event_handler=collector,
                cancel_callback=cancelled,
            )
        # r.stats reads the job events from the artifacts: before they are removed.
        stats = runner.stats if runner.stats is not None else collector.stats
        status, rc = str(runner.status), runner.rc
    finally:
        if keep_artifacts:
            log.warning("ansible-runner artifacts kept in %s", private_data_dir)
        else:
            shutil.rmtree(private_data_dir, ignore_errors=True)
    elapsed = time.monotonic() - started

    return RunResult(
        status=status,
        rc=int(rc if rc is not None else -1),
        hosts=_recap(stats),
        elapsed=elapsed,
        check=check,
        failures=collector.failures,
        changes=collector.changes,
        unreachable=collector.unreachable,
        error_lines=collector.error_lines,
        warnings=collector.warning_lines(),
        batches=[b for b in collector.batches if b],
    )

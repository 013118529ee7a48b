"""Where a run's time goes, on the controller: one JSON line per event into $BENCH_PROFILE_FILE.

Enabled by bench/ only (ANSIBLE_CALLBACK_PLUGINS=bench/callback_plugins,
ANSIBLE_CALLBACKS_ENABLED=bench_profile). Each line has the wall clock and this process's CPU
(os.times: ansible-playbook's own, and its reaped children's — the workers and their ssh
clients), so the harness can split a run into start-up, tasks and the end. A task's wall time
runs from its start to its last host result. Finished workers are waited for at each task's
start and at the end (a few milliseconds), so their CPU counts for the task that ran them.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: bench_profile
type: aggregate
short_description: per-task wall and CPU time for python -m bench
description: Writes one JSON line per play, task start, host result and the end of the run.
options: {}
"""


def process_start() -> float:
    """This process's start as a wall-clock time: its age from /proc (start ticks after boot
    against the uptime, both on the boot clock) taken from now."""
    with open(f"/proc/{os.getpid()}/stat", encoding="ascii") as own:
        # Field 22 (starttime), counted after the command name in parentheses.
        ticks = float(own.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime", encoding="ascii") as uptime:
        age = float(uptime.read().split()[0]) - ticks / os.sysconf("SC_CLK_TCK")
    return time.time() - age


def reap_workers() -> None:
    """Wait for the workers that have delivered their results, so that their CPU (and their
    ssh clients') is counted in this process's children's times now, not whenever ansible
    reuses their slot."""
    for worker in multiprocessing.active_children():
        worker.join(timeout=1)


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_profile"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._path = os.environ.get("BENCH_PROFILE_FILE", "")
        self._emit("load", started=process_start())

    def _emit(self, event: str, **data: Any) -> None:
        if not self._path:
            return
        times = os.times()
        line = {
            "event": event,
            "t": time.time(),
            "cpu_self": times.user + times.system,
            "cpu_children": times.children_user + times.children_system,
            **data,
        }
        with open(self._path, "a", encoding="utf-8") as sink:
            sink.write(json.dumps(line) + "\n")

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self._emit("play", name=play.get_name())

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        reap_workers()
        self._emit("task", name=task.get_name(), action=task.action)

    def _result(self, status: str, result: Any) -> None:
        self._emit("result", status=status, host=result._host.get_name())

    def v2_runner_on_ok(self, result: Any) -> None:
        self._result("ok", result)

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._result("skipped", result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._result("failed", result)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._result("unreachable", result)

    def v2_playbook_on_stats(self, stats: Any) -> None:
        reap_workers()
        self._emit("end")

"""Where a run's time goes: the events of callback_plugins/bench_profile.py turned into phases.

A run is split into: the wrapper before ansible-playbook starts (provision's own start-up and
its ansible-core probe of the inputs), ansible-playbook's start-up (imports, configuration,
inventory, playbook and role loading, up to the first play), each task (from its start to its
last host result; the controller CPU of the main process and of the reaped workers with their
ssh clients, between its start and the next task's), and the end (recap, exit, the wrapper's
report).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

CALLBACK_DIR = Path(__file__).resolve().parent / "callback_plugins"
ROLE_PREFIX = "provision.hosts.docker : "


def env(events_file: Path) -> dict[str, str]:
    """Environment that makes ansible-playbook (directly or under ansible-runner) record."""
    return {
        "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACK_DIR),
        "ANSIBLE_CALLBACKS_ENABLED": "bench_profile",
        "BENCH_PROFILE_FILE": str(events_file),
    }


def short(name: str) -> str:
    name = name.removeprefix(ROLE_PREFIX)
    if name.startswith("Validating arguments against arg spec"):
        return "Validate the role's arguments (argument_specs)"
    return name


def breakdown(events_file: Path, started: float, ended: float) -> dict[str, Any]:
    """Phases of one run: ``started``/``ended`` are the measured command's wall-clock bounds."""
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    load = events[0]
    end = next((e for e in events if e["event"] == "end"), events[-1])
    first_play = next((e for e in events if e["event"] == "play"), end)
    tasks: list[dict[str, Any]] = []
    starts = [e for e in events if e["event"] in ("task", "end")]
    for task, following in itertools.pairwise(starts):
        if task["event"] != "task":
            continue
        results = [e for e in events if e["event"] == "result" and task["t"] <= e["t"]]
        results = [e for e in results if e["t"] <= following["t"]]
        last = max((e["t"] for e in results), default=task["t"])
        row = {
            "task": short(task["name"]),
            "action": task["action"],
            "hosts": len(results),
            "wall_s": last - task["t"] if results else following["t"] - task["t"],
            "main_cpu_s": following["cpu_self"] - task["cpu_self"],
            "workers_cpu_s": following["cpu_children"] - task["cpu_children"],
        }
        # A task the strategy starts once per host (meta) is one row.
        if tasks and (tasks[-1]["task"], tasks[-1]["action"]) == (row["task"], row["action"]):
            for key in ("hosts", "wall_s", "main_cpu_s", "workers_cpu_s"):
                tasks[-1][key] += row[key]
        else:
            tasks.append(row)
    for row in tasks:
        for key in ("wall_s", "main_cpu_s", "workers_cpu_s"):
            row[key] = round(row[key], 3)
    return {
        "wrapper_before_s": round(load["started"] - started, 3),
        "ansible_startup_s": round(first_play["t"] - load["started"], 3),
        "ansible_startup_cpu_s": round(first_play["cpu_self"], 3),
        "tasks": tasks,
        "after_s": round(ended - end["t"], 3),
        "ansible_main_cpu_s": round(end["cpu_self"], 3),
        "ansible_workers_cpu_s": round(end["cpu_children"], 3),
    }

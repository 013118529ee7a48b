"""The ansible-runner adapter's pure parts: events → live lines, stats → recap, -e parsing."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from provision.paths import DataPaths
from provision.runner import (
    TaskResult,
    _EventCollector,
    _recap,
    ansible_env,
    render_diff,
)


def event(name: str, **data: Any) -> dict[str, Any]:
    """An event shaped as ansible-runner's awx_display callback emits it."""
    return {
        "uuid": "00000000-0000-0000-0000-000000000000",
        "counter": 1,
        "event": name,
        "stdout": data.pop("stdout", ""),
        "event_data": data,
    }


def test_event_handler_returns_true_and_reports_each_task() -> None:
    lines: list[TaskResult] = []
    collector = _EventCollector(lines.append, None)
    events = [
        event("playbook_on_task_start", task="Install packages", role="docker"),
        event(
            "runner_on_ok",
            host="h1",
            task="Install packages",
            role="docker",
            duration=2.5,
            res={"changed": True},
        ),
        event("runner_on_ok", host="h2", task="Gathering Facts", res={"changed": False}),
        event("runner_on_skipped", host="h1", task="Hold", role="docker", res={}),
        event(
            "runner_on_failed",
            host="h2",
            task="Write daemon.json",
            role="docker",
            res={"msg": "validation\nfailed"},
        ),
        event(
            "runner_on_failed",
            host="h1",
            task="Probe",
            role="docker",
            ignore_errors=True,
            res={"rc": 3},
        ),
        event(
            "runner_on_unreachable",
            host="h3",
            task="Gathering Facts",
            res={"msg": "Failed to connect to the host via ssh: Connection refused"},
        ),
    ]
    # ansible-runner drops events (and r.stats ends up None) unless the handler is truthy
    assert all(collector(ev) is True for ev in events)
    assert [(r.host, r.status, r.task) for r in lines] == [
        ("h1", "changed", "docker : Install packages"),
        ("h2", "ok", "Gathering Facts"),
        ("h1", "skipped", "docker : Hold"),
        ("h2", "failed", "docker : Write daemon.json"),
        ("h1", "ignored", "docker : Probe"),
        ("h3", "unreachable", "Gathering Facts"),
    ]
    assert lines[0].duration == 2.5
    assert collector.failures[0].message == "validation failed"
    assert lines[4].message == "exit status 3"
    assert collector.unreachable == {
        "h3": "Failed to connect to the host via ssh: Connection refused"
    }


def test_ansible_error_lines_are_kept() -> None:
    collector = _EventCollector(None, None)
    collector(event("verbose", stdout="[ERROR]: couldn't resolve module/action 'x'\nmore"))
    collector(event("verbose", stdout="ERROR! the playbook: site.yml could not be found"))
    collector(event("verbose", stdout="\x1b[0;31m[ERROR]: no hosts to target.\x1b[0m"))
    assert collector.error_lines == [
        "[ERROR]: couldn't resolve module/action 'x'",
        "ERROR! the playbook: site.yml could not be found",
        "[ERROR]: no hosts to target.",
    ]


def test_text_passthrough_for_verbose_mode() -> None:
    seen: list[str] = []
    collector = _EventCollector(None, seen.append)
    collector(event("runner_on_ok", host="h", task="t", res={}, stdout="ok: [h]"))
    assert seen == ["ok: [h]"]


def test_recap_from_stats() -> None:
    stats = {
        "ok": {"a": 10, "b": 3},
        "changed": {"a": 2},
        "failures": {"b": 1},
        "dark": {"c": 1},
        "skipped": {"a": 4},
        "rescued": {},
        "ignored": {"a": 1},
        "processed": {"a": 1, "b": 1, "c": 1},
    }
    recap = {r.host: r for r in _recap(stats)}
    assert sorted(recap) == ["a", "b", "c"]
    assert (recap["a"].ok, recap["a"].changed, recap["a"].skipped, recap["a"].ignored) == (
        10,
        2,
        4,
        1,
    )
    assert recap["b"].failed == 1
    assert recap["c"].unreachable == 1
    assert _recap(None) == []


def test_warnings_of_the_role_and_of_ansible() -> None:
    """A module's warnings (res.warnings), a debug task whose message starts with WARNING: and
    Ansible's own `warning` events. Each is kept once, with the hosts that said it."""
    collector = _EventCollector(None, None)
    eol = "WARNING: Ubuntu 20.04 LTS (focal) has reached end of life for Docker."
    for host in ("h1", "h2"):
        collector(
            event(
                "runner_on_ok",
                host=host,
                task="Warn that Docker no longer supports this release",
                task_action="ansible.builtin.debug",
                res={"msg": eol, "changed": False},
            )
        )
    collector(
        event("runner_on_ok", host="h1", task="Say", task_action="debug", res={"msg": "hello"})
    )
    collector(
        event(
            "runner_on_ok",
            host="h1",
            task="Shell",
            task_action="ansible.builtin.command",
            res={"msg": "WARNING: not a debug task"},
        )
    )
    collector(
        event(
            "runner_on_ok",
            host="h2",
            task="Read the host",
            task_action="provision.hosts.docker_host_facts",
            res={
                "changed": False,
                "warnings": ["The key at /etc/apt/keyrings/docker.asc is replaced."],
            },
        )
    )
    collector(
        event(
            "warning",
            stdout="\x1b[1;35m[WARNING]: Platform linux on host h1 is using the discovered\n"
            "Python interpreter at /usr/bin/python3.8\x1b[0m",
        )
    )
    assert collector.warning_lines() == [
        "Ubuntu 20.04 LTS (focal) has reached end of life for Docker. (h1, h2)",
        "The key at /etc/apt/keyrings/docker.asc is replaced. (h2)",
        "Platform linux on host h1 is using the discovered Python interpreter at "
        "/usr/bin/python3.8",
    ]


def test_ansible_env_puts_the_venv_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    env = ansible_env(DataPaths(tmp_path))
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert env["ANSIBLE_CONFIG"] == str(tmp_path / "ansible.cfg")
    assert env["ANSIBLE_COLLECTIONS_PATH"] == str(tmp_path / ".collections")
    assert (tmp_path / ".collections/ansible_collections/provision/hosts").resolve() == tmp_path
    # Ansible writes to ansible-runner's pseudo-terminal: colour only for a real terminal
    assert env["ANSIBLE_NOCOLOR"] == "true"
    assert ansible_env(DataPaths(tmp_path), color=True)["ANSIBLE_NOCOLOR"] == "false"


def test_file_diffs_are_rendered_and_attached_to_the_task() -> None:
    lines: list[TaskResult] = []
    collector = _EventCollector(lines.append, None)
    collector(
        event(
            "runner_on_file_diff",
            host="h1",
            task="Write daemon.json",
            diff=[
                {
                    "before": '{\n  "live-restore": true\n}\n',
                    "after": '{\n  "live-restore": true,\n  "debug": true\n}\n',
                    "before_header": "/etc/docker/daemon.json",
                    "after_header": "/etc/docker/daemon.json",
                },
                {"before": {"path": "/etc/docker"}, "after": {"path": "/etc/docker"}},
            ],
        )
    )
    collector(event("runner_on_ok", host="h1", task="Write daemon.json", res={"changed": True}))
    collector(event("runner_on_ok", host="h1", task="Next", res={"changed": False}))
    (changed, unchanged) = lines
    assert changed.diff.startswith("--- /etc/docker/daemon.json\n+++ /etc/docker/daemon.json\n")
    assert '+  "debug": true\n' in changed.diff
    assert unchanged.diff == ""
    assert [c.task for c in collector.changes] == ["Write daemon.json"]


def test_render_prepared_diff() -> None:
    assert render_diff({"prepared": "--- a\n+++ b\n"}) == "--- a\n+++ b\n"
    assert render_diff(None) == ""


def test_url_credentials_are_masked_everywhere() -> None:
    """A repository token or proxy password in a URL appears in no line, result, diff or
    warning the collector passes on or keeps."""
    secret = "https://ops:t0ken-XYZ@repo.internal/linux/ubuntu"
    lines: list[TaskResult] = []
    texts: list[str] = []
    collector = _EventCollector(lines.append, texts.append)
    diff = {"before_header": "x", "after_header": "x", "before": "", "after": secret + "\n"}
    for item in (
        event("playbook_on_task_start", task="Write the source", role="docker"),
        event("runner_on_file_diff", host="h1", diff=diff, stdout=f"+{secret}"),
        event(
            "runner_on_failed",
            host="h1",
            task="Write the source",
            res={"msg": f"cannot reach {secret}", "warnings": [f"tried {secret}"]},
            stdout=f"fatal: [h1]: FAILED! => {secret}",
        ),
        event("warning", stdout=f"[WARNING]: {secret} is slow"),
    ):
        assert collector(item) is True
    kept = repr((lines, texts, collector.failures, collector.warning_lines()))
    assert "t0ken-XYZ" not in kept
    assert "https://***@repo.internal/linux/ubuntu" in kept
    (failure,) = collector.failures
    assert failure.message == "cannot reach https://***@repo.internal/linux/ubuntu"

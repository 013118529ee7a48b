"""docker_daemon_config on real files: daemon.json and the record end root:root 0644 whatever
they were, only a JSON change is a content change, check mode writes nothing, and --diff shows
the change. (Reloading needs a running engine: tests/integration/test_role_docker.py.)"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.provision.hosts.plugins.modules import docker_daemon_config
from ansible_collections.provision.hosts.tests.unit.plugins.modules.conftest import (
    attributes,
    run_module,
    umask,
)

CONFIG = {"log-driver": "json-file", "log-opts": {"max-file": "3", "max-size": "10m"}}


def args(tmp_path: Path, config: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "path": str(tmp_path / "docker" / "daemon.json"),
        "config": CONFIG if config is None else config,
        "record_path": str(tmp_path / "ansible" / "facts.d" / "docker.fact"),
        "record": {"daemon_keys": sorted(CONFIG)},
    }


def run(
    capsys: pytest.CaptureFixture[str], arguments: dict[str, Any], check_mode: bool = False
) -> dict[str, Any]:
    return run_module(docker_daemon_config.main, capsys, arguments, check_mode=check_mode)


def test_a_fresh_host_gets_both_files_with_their_modes_under_a_hardened_umask(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = args(tmp_path)
    with umask(0o077):
        result = run(capsys, arguments)
    assert result["changed"]
    assert result["daemon_json_changed"]
    assert result["changed_keys"] == ["log-driver", "log-opts"]
    assert json.loads(Path(arguments["path"]).read_text()) == CONFIG
    assert json.loads(Path(arguments["record_path"]).read_text()) == {
        "daemon_keys": ["log-driver", "log-opts"]
    }
    for path in (arguments["path"], arguments["record_path"]):
        assert attributes(path) == ("0644", 0, 0)
    for directory in (tmp_path / "docker", tmp_path / "ansible", tmp_path / "ansible" / "facts.d"):
        assert attributes(str(directory)) == ("0755", 0, 0)
    assert run(capsys, arguments)["changed"] is False


def test_a_file_with_the_right_json_and_wrong_owner_is_only_corrected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = args(tmp_path)
    run(capsys, arguments)
    daemon_json = Path(arguments["path"])
    # Another layout of the same object: not a content change.
    daemon_json.write_text(json.dumps(CONFIG, indent=4))
    os.chown(daemon_json, 0, 4)
    daemon_json.chmod(0o640)
    result = run(capsys, arguments)
    assert result["changed"] is True
    assert result["daemon_json_changed"] is False
    assert attributes(str(daemon_json)) == ("0644", 0, 0)
    assert daemon_json.read_text() == json.dumps(CONFIG, indent=4)
    (entry,) = result["diff"]
    assert entry["before"]["mode_owner"].startswith("0640 root:")
    assert entry["after"]["mode_owner"] == "0644 root:root"


def test_a_rewrite_does_not_keep_the_old_files_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ansible-core's atomic_move copies the replaced file's owner and mode by default."""
    arguments = args(tmp_path)
    run(capsys, arguments)
    daemon_json = Path(arguments["path"])
    daemon_json.write_text('{"debug": true}\n')
    os.chown(daemon_json, 0, 4)
    daemon_json.chmod(0o600)
    result = run(capsys, arguments)
    assert result["daemon_json_changed"] is True
    assert result["changed_keys"] == ["debug", "log-driver", "log-opts"]
    assert attributes(str(daemon_json)) == ("0644", 0, 0)
    (entry,) = result["diff"]
    assert entry["before"] == '{"debug": true}\n'
    assert '"log-driver": "json-file"' in entry["after"]


def test_check_mode_shows_the_diff_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = args(tmp_path)
    result = run(capsys, arguments, check_mode=True)
    assert result["changed"]
    assert result["daemon_json_changed"]
    assert not (tmp_path / "docker").exists()
    assert any('"log-opts"' in str(entry.get("after")) for entry in result["diff"])


def test_no_keys_and_no_file_writes_no_daemon_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = {**args(tmp_path, {}), "record": {"daemon_keys": []}}
    result = run(capsys, arguments)
    assert result["daemon_json_changed"] is False
    assert not Path(arguments["path"]).exists()
    assert json.loads(Path(arguments["record_path"]).read_text()) == {"daemon_keys": []}


def test_a_reload_stamp_is_kept_while_daemon_json_is_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = args(tmp_path)
    run(capsys, arguments)
    record = Path(arguments["record_path"])
    record.write_text(json.dumps({"daemon_keys": ["debug"], "reloaded_mtime_ns": 12}))
    result = run(capsys, arguments)
    assert result["daemon_json_changed"] is False
    assert json.loads(record.read_text()) == {
        "daemon_keys": ["log-driver", "log-opts"],
        "reloaded_mtime_ns": 12,
    }
    # A new daemon.json without a reload: the engine restarts with it, the stamp goes.
    run(capsys, args(tmp_path, {"debug": True}))
    assert "reloaded_mtime_ns" not in json.loads(record.read_text())


def test_absent_takes_out_the_roles_keys_and_the_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = args(tmp_path, {**CONFIG, "data-root": "/srv/docker"})
    run(capsys, arguments)
    daemon_json, record = Path(arguments["path"]), Path(arguments["record_path"])
    absent = {**arguments, "state": "absent", "config": {"data-root": "/srv/docker"}}
    del absent["record"]
    would = run(capsys, absent, check_mode=True)
    assert (would["changed"], would["daemon_json_changed"]) == (True, True)
    assert json.loads(daemon_json.read_text())["log-driver"] == "json-file"  # check mode
    assert record.exists()
    result = run(capsys, absent)
    assert result["changed_keys"] == ["log-driver", "log-opts"]
    assert json.loads(daemon_json.read_text()) == {"data-root": "/srv/docker"}
    assert attributes(str(daemon_json)) == ("0644", 0, 0)
    assert not record.exists()
    assert run(capsys, absent)["changed"] is False


def test_absent_removes_a_daemon_json_that_held_only_the_roles_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = args(tmp_path)
    run(capsys, arguments)
    content = Path(arguments["path"]).read_text()
    absent = {**arguments, "state": "absent", "config": {}}
    del absent["record"]
    result = run(capsys, absent)
    assert (result["changed"], result["daemon_json_changed"]) == (True, True)
    assert result["diff"][0]["before"] == content
    assert not Path(arguments["path"]).exists()
    assert not Path(arguments["record_path"]).exists()
    # nothing left to remove, and no directory created for it
    assert run(capsys, absent)["changed"] is False


def test_absent_creates_no_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    absent = {**args(tmp_path), "state": "absent", "config": {}}
    del absent["record"]
    assert run(capsys, absent)["changed"] is False
    assert list(tmp_path.iterdir()) == []


def test_present_needs_the_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arguments = args(tmp_path)
    del arguments["record"]
    result = run(capsys, arguments)
    assert result["failed"]
    assert "record" in result["msg"]
    assert not Path(arguments["path"]).exists()


def test_a_symlinked_daemon_json_is_replaced_and_its_target_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Same content behind a link to a 0600 file: the link becomes a root:root 0644 file of its
    own; chmod/chown never follow it to the target."""
    arguments = args(tmp_path)
    run(capsys, arguments)
    daemon_json = Path(arguments["path"])
    target = tmp_path / "elsewhere.json"
    target.write_bytes(daemon_json.read_bytes())
    target.chmod(0o600)
    os.chown(target, 65534, 65534)
    daemon_json.unlink()
    daemon_json.symlink_to(target)
    result = run(capsys, arguments)
    assert result["changed"]
    assert not daemon_json.is_symlink()
    assert attributes(str(daemon_json)) == ("0644", 0, 0)
    assert json.loads(daemon_json.read_text()) == CONFIG
    assert attributes(str(target)) == ("0600", 65534, 65534)
    assert run(capsys, arguments)["changed"] is False


def test_a_foreign_key_the_plan_passed_masked_is_written_back_as_the_file_holds_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A daemon.json someone else wrote holds a password: the plan shows it as ********, and the
    module writes that key back from the file itself, masked in its own result."""
    arguments = args(tmp_path)
    foreign = {"proxies": {"http-proxy": "http://ops:pa55word-9@proxy.corp:3128"}}
    path = Path(arguments["path"])
    path.parent.mkdir()
    path.write_text(json.dumps(foreign))
    passed = {**CONFIG, "proxies": {"http-proxy": "http://ops:********@proxy.corp:3128"}}
    result = run(capsys, {**arguments, "config": passed})
    assert result["changed_keys"] == ["log-driver", "log-opts"]
    assert json.loads(path.read_text()) == {**CONFIG, **foreign}
    assert "pa55word-9" not in json.dumps(result)

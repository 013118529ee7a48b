"""What ansible-playbook would read, read by ansible-core itself: ``-e`` items and inventories
(a child Python with the shipped ansible.cfg; no host is contacted). The refusals are in
test_malformed_inputs.py, through the CLI; here, what is accepted and how it arrives."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from provision.ansible_probe import ExtraVars, probe
from provision.errors import EXIT_USAGE, ProvisionError, UsageError
from provision.extra_vars import check_extra_vars
from provision.paths import data_paths
from provision.role_options import RoleContract
from provision.runner import ansible_env


def read(
    tmp_path: Path, *, extra_vars: tuple[str, ...] = (), inventory: str = "", limit: str = ""
) -> tuple[list[ExtraVars], list[str], list[str]]:
    paths = data_paths()
    found = probe(
        paths=paths,
        env=ansible_env(paths),
        extra_vars=extra_vars,
        inventory=tmp_path / inventory if inventory else None,
        inventory_arg=inventory,
        limit=limit or None,
    )
    return found.extra_vars, found.hosts, found.warnings


def test_extra_vars_as_ansible_playbook_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "vars.yml").write_text("docker_users: [ops]\nanswer: 42\n", encoding="utf-8")
    items, _, _ = read(
        tmp_path,
        extra_vars=(
            'docker_users=ops,ci note="two words"',
            "@vars.yml",
            '{"docker_live_restore": true}',
            "",  # skipped, as ansible-playbook skips it
        ),
    )
    assert items == [
        ExtraVars(
            'docker_users=ops,ci note="two words"',
            {"docker_users": "ops,ci", "note": "two words"},
            True,
        ),
        ExtraVars("@vars.yml", {"docker_users": ["ops"], "answer": 42}, False),
        ExtraVars('{"docker_live_restore": true}', {"docker_live_restore": True}, False),
    ]
    # then the role's contract converts and checks the role's options; others pass as they are
    assert check_extra_vars(items, contract=RoleContract.load()) == {
        "docker_users": ["ops"],
        "note": "two words",
        "answer": 42,
        "docker_live_restore": True,
    }


def test_key_value_strings_are_converted_by_the_argument_spec() -> None:
    items = [ExtraVars("docker_users=ops,ci", {"docker_users": "ops,ci"}, True)]
    assert check_extra_vars(items, contract=RoleContract.load()) == {"docker_users": ["ops", "ci"]}


@pytest.mark.parametrize(
    ("text", "hosts"),
    [
        ("[web]\nweb1 ansible_host=127.0.0.1\nweb2\n[db]\ndb1\n", ["web1", "web2", "db1"]),
        ("all:\n  children:\n    web:\n      hosts:\n        web1:\n", ["web1"]),
        ('{"all": {"hosts": {"a": {}, "b": {}}}}', ["a", "b"]),
    ],
    ids=["ini", "yaml", "json"],
)
def test_inventory_hosts(tmp_path: Path, text: str, hosts: list[str]) -> None:
    name = "inventory.json" if text.startswith("{") else "inventory"
    (tmp_path / name).write_text(text, encoding="utf-8")
    _, found, warnings = read(tmp_path, inventory=name)
    assert sorted(found) == sorted(hosts)
    assert warnings == []


def test_limit_selects_as_ansible_does(tmp_path: Path) -> None:
    (tmp_path / "hosts").write_text("[web]\nweb1\nweb2\n[db]\ndb1\n", encoding="utf-8")
    assert read(tmp_path, inventory="hosts", limit="web:!web2")[1] == ["web1"]
    assert sorted(read(tmp_path, inventory="hosts", limit="db1,web2")[1]) == ["db1", "web2"]


def test_a_directory_with_one_broken_file_is_refused(tmp_path: Path) -> None:
    """ansible-playbook would warn and go on with half the fleet: refused instead."""
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    (inventory / "good.ini").write_text("[web]\nweb1\n", encoding="utf-8")
    (inventory / "broken.yml").write_text("all: [\n", encoding="utf-8")
    (inventory / "group_vars").mkdir()  # ignored by Ansible, as it should be
    (inventory / "group_vars" / "all.yml").write_text("x: 1\n", encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        read(tmp_path, inventory="inventory")
    assert caught.value.exit_code == EXIT_USAGE
    assert caught.value.message.startswith("-i inventory: not an inventory Ansible can parse (")
    assert "broken.yml" in caught.value.message


# --- answers kept for unchanged inputs (provision/probe_cache.py) ------------------------------


@pytest.fixture
def kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The probe's cache, in this test's own directory."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "provision" / "probe"


def test_a_rerun_with_unchanged_inputs_gets_the_kept_answer(
    tmp_path: Path,
    kept: Path,
    monkeypatch: pytest.MonkeyPatch,
    unreachable_ansible_core: Callable[[], None],
) -> None:
    monkeypatch.chdir(tmp_path)  # `python -m` looks in the working directory first
    (tmp_path / "hosts").write_text("[web]\nweb1\nweb2\n", encoding="utf-8")
    (tmp_path / "vars.yml").write_text("docker_users: [ops]\n", encoding="utf-8")
    items = (f"@{tmp_path / 'vars.yml'}", "note=kept")
    first = read(tmp_path, extra_vars=items, inventory="hosts", limit="web1")
    assert len(list(kept.glob("*.json"))) == 1
    unreachable_ansible_core()
    assert read(tmp_path, extra_vars=items, inventory="hosts", limit="web1") == first
    # anything else is read again, and now fails: ansible-core cannot be asked
    with pytest.raises(ProvisionError, match="ansible-core could not read the inputs"):
        read(tmp_path, extra_vars=items, inventory="hosts", limit="web2")


@pytest.mark.parametrize("change", ["inventory", "extra vars file"])
def test_a_changed_file_is_read_again(tmp_path: Path, kept: Path, change: str) -> None:
    (tmp_path / "hosts").write_text("[web]\nweb1\n", encoding="utf-8")
    (tmp_path / "vars.yml").write_text("answer: 42\n", encoding="utf-8")
    items = (f"@{tmp_path / 'vars.yml'}",)
    assert read(tmp_path, extra_vars=items, inventory="hosts")[1] == ["web1"]
    if change == "inventory":
        (tmp_path / "hosts").write_text("[web]\n", encoding="utf-8")
        with pytest.raises(UsageError, match="the inventory has no hosts"):
            read(tmp_path, extra_vars=items, inventory="hosts")
    else:
        (tmp_path / "vars.yml").write_text("- not a mapping\n", encoding="utf-8")
        with pytest.raises(UsageError, match="must be a mapping of variables"):
            read(tmp_path, extra_vars=items, inventory="hosts")


def test_inventories_that_change_without_a_file_changing_are_not_kept(
    tmp_path: Path, kept: Path
) -> None:
    script = tmp_path / "inventory.py"
    script.write_text(
        "#!/usr/bin/env python3\nimport json\n"
        'print(json.dumps({"web": {"hosts": ["web1"]}, "_meta": {"hostvars": {}}}))\n',
        encoding="utf-8",
    )
    script.chmod(0o755)
    directory = tmp_path / "inventory"
    directory.mkdir()
    (directory / "hosts.ini").write_text("[web]\nweb1\n", encoding="utf-8")
    for inventory in ("inventory.py", "inventory"):
        assert read(tmp_path, inventory=inventory)[1] == ["web1"]
    assert not kept.exists() or not list(kept.glob("*.json"))

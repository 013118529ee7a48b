"""The contract between the plan and the role's YAML: every ``docker__plan.X.Y`` the tasks and
vars read exists in what make_plan returns for the state that YAML runs in, and every
``docker__service.X`` / ``docker__users.X`` (the steps vars/main.yml takes from the plan, or from
docker_apt_install's plan after an install) in both, so renaming a plan key fails here rather than
in a converge. Read from the role's files, not from a list kept here."""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.provision.hosts.plugins.module_utils import docker_plan
from ansible_collections.provision.hosts.plugins.module_utils import docker_plan_types as types
from ansible_collections.provision.hosts.tests.unit.plugins.docker_role import (
    VARS,
    converged_host,
    role_want,
)

ROLE = Path(__file__).resolve().parents[4] / "roles" / "docker"
REFERENCE = re.compile(r"\bdocker__(plan|service|users)((?:\.[a-z_][a-z0-9_]*)+)")
# Only absent.yml runs with docker_state=absent; the other files serve both states, and read
# `absent.` keys only when guarded by it.
ABSENT_ONLY = {"tasks/absent.yml"}


def references() -> list[tuple[str, str]]:
    found = set()
    for path in sorted(ROLE.glob("*/*.yml")):
        relative = path.relative_to(ROLE).as_posix()
        for match in REFERENCE.finditer(path.read_text(encoding="utf-8")):
            step = "" if match.group(1) == "plan" else match.group(1) + "."
            found.add((relative, step + match.group(2).lstrip(".")))
    return sorted(found)


def plan_for(state: str) -> dict[str, Any]:
    """The plan for STATE on a host the role converged."""
    host = converged_host(role_want())
    return docker_plan.make_plan(
        host, role_want(state=state), VARS["docker__paths"], VARS["docker__rules"]
    )


def resolves(plan: Any, dotted: str) -> bool:
    for key in dotted.split("."):
        if not isinstance(plan, dict) or key not in plan:
            return False
        plan = plan[key]
    return True


def test_the_role_reads_the_plan() -> None:
    # A scan that found nothing would make the contract test below pass vacuously.
    assert len(references()) > 20


@pytest.mark.parametrize(("file", "dotted"), references())
def test_every_plan_key_the_yaml_reads_exists(file: str, dotted: str) -> None:
    absent = file in ABSENT_ONLY or dotted.startswith("absent.")
    plan = plan_for("absent" if absent else "present")
    assert resolves(plan, dotted), f"{file} reads docker__plan.{dotted}, which make_plan lacks"
    if dotted.startswith(("service.", "users.")):
        host, want = converged_host(role_want()), role_want()
        after = docker_plan.after_install_plan(host, want, VARS["docker__rules"], answered=True)
        assert resolves(after, dotted), (
            f"{file} reads {dotted}, which the plan after installs lacks"
        )


def test_resolves_follows_nested_keys_only() -> None:
    plan = {"packages": {"install_specs": [], "needed": False}}
    assert resolves(plan, "packages.install_specs")
    assert not resolves(plan, "packages.install")
    assert not resolves(plan, "packages.needed.x")


# --- the typed contract (docker_plan_types.py) --------------------------------------------------


def is_typed_dict(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, dict) and hasattr(kind, "__total__")


def shape_errors(value: Any, kind: Any, where: str) -> list[str]:
    """Where VALUE's keys differ from the TypedDict KIND's, nested TypedDicts included."""
    if is_typed_dict(kind):
        if not isinstance(value, dict):
            return [f"{where} is {type(value).__name__}, not {kind.__name__}"]
        fields = typing.get_type_hints(kind)
        errors = [f"{where}.{k}: not in {kind.__name__}" for k in sorted(set(value) - set(fields))]
        errors += [f"{where}.{k}: missing" for k in sorted(set(fields) - set(value))]
        for key in set(fields) & set(value):
            errors += shape_errors(value[key], fields[key], f"{where}.{key}")
        return errors
    if typing.get_origin(kind) is dict and isinstance(value, dict):
        _key_type, item = typing.get_args(kind)
        return [e for k, v in value.items() for e in shape_errors(v, item, f"{where}[{k!r}]")]
    return []


def plans() -> list[tuple[str, dict[str, Any], Any]]:
    """Plans for hosts in several states, with the type each must have."""
    paths, rules = VARS["docker__paths"], VARS["docker__rules"]
    cases: list[tuple[str, dict[str, Any], Any]] = []
    for state, kind in (("present", types.PresentPlan), ("absent", types.AbsentPlan)):
        converged = converged_host(role_want())
        fresh = converged_host(role_want())
        fresh.update(packages={}, units={}, key={"exists": False}, sources={})
        fresh["files"] = {"source": {"exists": False}, "daemon_json": {"exists": False}}
        drifted = converged_host(role_want())
        drifted["sources"]["/etc/apt/sources.list.d/mixed.list"] = {
            "content": f"deb {role_want()['repository_url']} focal stable\ndeb file:/srv/x ./\n",
            "mode": "0666",
        }
        for name, host in (("converged", converged), ("fresh", fresh), ("drifted", drifted)):
            plan = docker_plan.make_plan(host, role_want(state=state), paths, rules)
            cases.append((f"{state}-{name}", plan, kind))
    after = docker_plan.after_install_plan(converged_host(role_want()), role_want(), rules, True)
    cases.append(("after-install", dict(after), types.AfterInstall))
    return cases


@pytest.mark.parametrize(("case", "plan", "kind"), plans(), ids=[c[0] for c in plans()])
def test_the_plan_has_exactly_its_typed_shape(case: str, plan: dict[str, Any], kind: Any) -> None:
    assert shape_errors(plan, kind, case) == []


def declared(kind: Any, dotted: str) -> bool:
    for key in dotted.split("."):
        if not is_typed_dict(kind):
            return False
        fields = typing.get_type_hints(kind)
        if key not in fields:
            return False
        kind = fields[key]
    return True


@pytest.mark.parametrize(("file", "dotted"), references())
def test_every_plan_key_the_yaml_reads_is_declared(file: str, dotted: str) -> None:
    absent = file in ABSENT_ONLY or dotted.startswith("absent.")
    kind = types.AbsentPlan if absent else types.PresentPlan
    assert declared(kind, dotted), f"{file} reads {dotted}, which {kind.__name__} does not declare"


def test_shape_errors_finds_extra_missing_and_nested_keys() -> None:
    users = {"needed": True, "add": [], "remove": [], "record": {}, "create_group": False}
    assert shape_errors(users, types.UsersStep, "u") == []
    assert shape_errors({**users, "extra": 1}, types.UsersStep, "u") == [
        "u.extra: not in UsersStep"
    ]
    del users["add"]
    assert shape_errors(users, types.UsersStep, "u") == ["u.add: missing"]
    rewrite = {"x": {"content": "", "dest": ""}}
    assert shape_errors(rewrite, dict[str, types.Rewrite], "r") == ["r['x'].mode: missing"]

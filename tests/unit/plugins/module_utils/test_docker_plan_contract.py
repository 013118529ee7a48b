"""The contract between the plan and the role's YAML: every ``docker__plan.X.Y`` the tasks and
vars read exists in what make_plan returns for the state that YAML runs in, and every
``docker__service.X`` / ``docker__users.X`` (the steps vars/main.yml takes from the plan, or from
docker_apt_install's plan after an install) in both, so renaming a plan key fails here rather than
in a converge. Read from the role's files, not from a list kept here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.provision.hosts.plugins.module_utils import docker_plan
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

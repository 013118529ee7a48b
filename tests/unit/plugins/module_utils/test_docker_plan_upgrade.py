"""The upgrade policy in the plan (docker_upgrade, docker_version globs): the versions apt offers
are read only when the policy needs them, the target is installed and held, the restart the
packages cause is guarded by the running containers, a major upgrade is warned about."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.provision.hosts.plugins.module_utils import docker_plan
from ansible_collections.provision.hosts.tests.unit.plugins.docker_role import VERSION

OLD, PATCH = "5:26.0.0-1~ubuntu.20.04~focal", "5:26.0.1-1~ubuntu.20.04~focal"
NEWEST = VERSION  # 5:26.1.3
Data = dict[str, Any]


def on_version(host: Data, version: str, selection: str = "hold") -> Data:
    for name in ("docker-ce", "docker-ce-cli"):
        host["packages"][name].update(version=version, want=selection)
    return host


def with_versions(host: Data, *versions: str) -> Data:
    host["versions"] = list(versions)
    host["read"].append("versions")
    return host


def test_the_default_reads_no_versions(host: Data, want: Data, paths: Data, rules: Data) -> None:
    plan = docker_plan.make_plan(on_version(host, OLD, "install"), want, paths, rules)
    assert "versions" not in plan["needs"]
    assert plan["changes"] is False


def test_series_asks_for_apts_versions_first(
    host: Data, want: Data, paths: Data, rules: Data
) -> None:
    want["upgrade"] = "series"
    assert "versions" in docker_plan.make_plan(host, want, paths, rules)["needs"]


@pytest.mark.parametrize(("upgrade", "expected"), [("series", PATCH), ("latest", NEWEST)])
def test_the_policy_installs_its_target_held_and_says_so(
    host: Data, want: Data, paths: Data, rules: Data, upgrade: str, expected: str
) -> None:
    want["upgrade"] = upgrade
    with_versions(on_version(host, OLD), OLD, PATCH, NEWEST)
    host["engine"] = {"containers": [], "live_restore": False}
    host["read"].append("engine")
    plan = docker_plan.make_plan(host, want, paths, rules)
    assert plan["problems"] == []
    assert plan["packages"]["install_specs"] == [
        f"docker-ce={expected}",
        f"docker-ce-cli={expected}",
    ]
    assert plan["packages"]["allow_downgrade"] is True
    assert plan["restart"]["by_packages"] is True
    # held before, but apt-get install releases what it installs: held again after it
    assert plan["packages"]["selections"] == {"docker-ce": "hold", "docker-ce-cli": "hold"}
    assert any(f"moves from {OLD} to {expected}" in w for w in plan["warnings"])


def test_at_the_target_nothing_changes(host: Data, want: Data, paths: Data, rules: Data) -> None:
    want["upgrade"] = "series"
    with_versions(on_version(host, PATCH), OLD, PATCH, NEWEST)
    plan = docker_plan.make_plan(host, want, paths, rules)
    assert (plan["changes"], plan["needs"]) == (False, [])
    assert not any("moves" in w for w in plan["warnings"])


def test_a_glob_holds_its_newest_match(host: Data, want: Data, paths: Data, rules: Data) -> None:
    want["version"] = "5:26.0.*"
    with_versions(host, OLD, PATCH, NEWEST)
    for name in ("docker-ce", "docker-ce-cli"):
        host["packages"][name]["version"] = OLD
    host["engine"] = {"containers": [], "live_restore": False}
    host["read"].append("engine")
    packages = docker_plan.make_plan(host, want, paths, rules)["packages"]
    assert packages["install_specs"] == [f"docker-ce={PATCH}", f"docker-ce-cli={PATCH}"]
    assert packages["selections"] == {"docker-ce": "hold", "docker-ce-cli": "hold"}


def test_an_upgrade_under_running_containers_without_live_restore_is_refused(
    host: Data, want: Data, paths: Data, rules: Data
) -> None:
    want["upgrade"] = "latest"
    with_versions(on_version(host, OLD), OLD, PATCH, NEWEST)
    plan = docker_plan.make_plan(host, want, paths, rules)
    assert "engine" in plan["needs"]
    host["engine"] = {"containers": ["web"], "live_restore": False}
    host["read"].append("engine")
    problems = docker_plan.make_plan(host, want, paths, rules)["problems"]
    assert len(problems) == 1
    assert "web" in problems[0]
    assert "docker_restart_running_engine" in problems[0]
    assert "docker_upgrade=latest" in problems[0]


def test_live_restore_lets_it_go_ahead_and_a_major_upgrade_is_warned_about(
    host: Data, want: Data, paths: Data, rules: Data
) -> None:
    older_major = "5:25.0.5-1~ubuntu.20.04~focal"
    want["upgrade"] = "latest"
    with_versions(on_version(host, older_major), older_major, NEWEST)
    host["engine"] = {"containers": ["web"], "live_restore": True}
    host["read"].append("engine")
    plan = docker_plan.make_plan(host, want, paths, rules)
    assert plan["problems"] == []
    assert any("major version 25 to 26" in w and "web" in w for w in plan["warnings"])
    with_versions(on_version(host, OLD), OLD, NEWEST)
    plan = docker_plan.make_plan(host, want, paths, rules)
    assert not any("major version" in w for w in plan["warnings"])


def test_an_exact_version_with_a_policy_is_refused(
    host: Data, want: Data, paths: Data, rules: Data
) -> None:
    want.update(upgrade="series", version=PATCH)
    problems = docker_plan.make_plan(host, want, paths, rules)["problems"]
    assert any("docker_upgrade=series" in p and PATCH in p for p in problems)

"""The engine version a run installs (plugins/module_utils/docker_versions.py): dpkg's order of
versions, checked against dpkg itself, and the upgrade policy's choice."""

from __future__ import annotations

import itertools
import shutil
import subprocess

import pytest
from ansible_collections.provision.hosts.plugins.module_utils import docker_versions as dv

FOCAL = "-1~ubuntu.20.04~focal"
AVAILABLE = ["5:26.0.0" + FOCAL, "5:26.0.1" + FOCAL, "5:26.1.3" + FOCAL]
# Versions whose order dpkg's rules decide: epochs, tildes, letters, leading zeros, revisions.
SAMPLES = [
    "1.0", "1.0-1", "1.0-2", "1.0~rc1", "1.0~rc1-1", "1.0+1", "1.0.0", "1.00", "1.0a", "1.0-0",
    "2:0.1", "1:9.9", "0:1.0", "1.0~~", "1.0~", "1.0-1ubuntu1", "1.0-1+deb12u1", "1.0-1~bpo",
    "26.1.3-0ubuntu1~20.04.1", "5:26.1.3-1~ubuntu.20.04~focal", "5:26.0.1-1~ubuntu.20.04~focal",
    "5:20.10.24-1~debian.12~bookworm", "5:20.9.1-1~debian.12~bookworm", "1.2.3-a.b", "1.2.3-a+b",
]  # fmt: skip


def dpkg_says(a: str, op: str, b: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", a, op, b], check=False).returncode == 0


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs dpkg to compare with")
def test_the_order_is_dpkgs_on_every_pair() -> None:
    wrong = []
    for a, b in itertools.combinations(SAMPLES, 2):
        ours = dv.compare(a, b)
        theirs = "lt" if dpkg_says(a, "lt", b) else "gt" if dpkg_says(a, "gt", b) else "eq"
        if (ours < 0, ours == 0, ours > 0) != (theirs == "lt", theirs == "eq", theirs == "gt"):
            wrong.append((a, b, ours, theirs))
    assert wrong == []


def test_newest_series_and_major() -> None:
    assert dv.newest(["5:20.9.1" + FOCAL, "5:20.10.24" + FOCAL]) == "5:20.10.24" + FOCAL
    assert dv.newest([]) is None
    assert dv.series("5:26.1.3" + FOCAL) == "26.1"
    assert dv.major("5:26.1.3" + FOCAL) == "26"


def test_series_takes_the_newest_patch_of_the_installed_series() -> None:
    chosen, why = dv.target(AVAILABLE[0], AVAILABLE, "series", "")
    assert chosen == AVAILABLE[1]
    assert "series (26.0)" in why


def test_series_on_a_fresh_host_takes_the_newest() -> None:
    assert dv.target(None, AVAILABLE, "series", "")[0] == AVAILABLE[2]


def test_latest_takes_the_newest() -> None:
    assert dv.target(AVAILABLE[0], AVAILABLE, "latest", "")[0] == AVAILABLE[2]


def test_a_glob_takes_its_newest_match_whatever_the_policy() -> None:
    for upgrade in dv.UPGRADE_POLICIES:
        assert dv.target(AVAILABLE[2], AVAILABLE, upgrade, "5:26.0.*")[0] == AVAILABLE[1]


def test_never_with_an_exact_or_empty_version_is_todays_behaviour() -> None:
    assert dv.target(AVAILABLE[0], AVAILABLE, "never", "")[0] is None
    assert dv.target(AVAILABLE[0], AVAILABLE, "never", AVAILABLE[1])[0] == AVAILABLE[1]


def test_a_policy_never_downgrades() -> None:
    newer = "5:27.0.0" + FOCAL
    assert dv.target(newer, AVAILABLE, "latest", "")[0] == newer
    assert dv.target(newer, AVAILABLE, "series", "")[0] == newer


def test_nothing_offered_leaves_the_choice_to_apt() -> None:
    assert dv.target(None, [], "latest", "")[0] is None
    assert dv.target(None, [], "never", "5:27.*")[0] is None

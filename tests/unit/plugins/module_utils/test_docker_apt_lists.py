"""How the role refreshes apt's lists (plugins/module_utils/docker_apt_lists.py): Docker's source
alone only when the distribution's lists are current, read from apt's own answers (apt-get
indextargets output and error lines as focal's apt 2.0 and trixie's apt 3.0 print them)."""

from __future__ import annotations

import pytest
from ansible_collections.provision.hosts.plugins.module_utils import docker_apt_lists as lists

SOURCE = "/etc/apt/sources.list.d/docker.sources"
LISTS = "/var/lib/apt/lists/"
FOCAL = "http://archive.ubuntu.com/ubuntu/dists/focal/"
UPDATES = "http://archive.ubuntu.com/ubuntu/dists/focal-updates/"
DOCKER = "http://10.213.7.1:38581/linux/ubuntu/dists/focal/"


def target(entry: str, base: str, name: str) -> str:
    return f"{entry}\t{base}\t{LISTS}{name}"


# What apt-get indextargets --no-release-info lists on focal: every configured suite's targets.
EVERY = "\n".join(
    [
        target("/etc/apt/sources.list:1", FOCAL, "focal_main_binary-amd64_Packages"),
        target("/etc/apt/sources.list:1", FOCAL, "focal_main_binary-all_Packages"),
        target("/etc/apt/sources.list:2", UPDATES, "focal-updates_main_binary-amd64_Packages"),
        target(f"{SOURCE}:1", DOCKER, "docker_stable_binary-amd64_Packages"),
    ]
)
# Without --no-release-info: only suites whose Release file apt has, only the targets it names.
RELEASED = "\n".join(
    [
        target("/etc/apt/sources.list:1", FOCAL, "focal_main_binary-amd64_Packages"),
        target("/etc/apt/sources.list:2", UPDATES, "focal-updates_main_binary-amd64_Packages"),
    ]
)


def read(released: str = RELEASED, present: set[str] | None = None, age: float = 60) -> lists.Lists:
    targets = lists.parse_targets(released)
    found = {t.filename for t in targets} if present is None else present
    return lists.read_lists(lists.parse_targets(EVERY), targets, found, SOURCE, age)


def test_the_narrow_refresh_reads_dockers_source_alone_and_keeps_every_other_list() -> None:
    argv = lists.update_argv("docker", SOURCE)
    assert argv[:2] == ["apt-get", "update"]
    options = [argv[i + 1] for i, a in enumerate(argv) if a == "-o"]
    assert f"Dir::Etc::sourcelist={SOURCE}" in options
    assert "Dir::Etc::sourceparts=-" in options
    assert "APT::Get::List-Cleanup=0" in options
    assert {"Dir::Cache::pkgcache=", "Dir::Cache::srcpkgcache="} <= set(options)
    assert "-o" not in lists.update_argv("full", SOURCE)


def test_the_install_runs_as_the_apt_module_does_with_its_permissions() -> None:
    specs = ["docker-ce=5:26.1.3-1~ubuntu.20.04~focal", "containerd.io"]
    argv = lists.install_argv(specs, allow_downgrade=False, allow_held=False)
    assert argv[:2] == ["apt-get", "install"]
    assert "-y" in argv
    assert "--simulate" not in argv
    options = [argv[i + 1] for i, a in enumerate(argv) if a == "-o"]
    assert options == ["Dpkg::Options::=--force-confdef", "Dpkg::Options::=--force-confold"]
    assert argv[-3:] == ["--", *specs]
    assert "--allow-downgrades" not in argv
    argv = lists.install_argv(specs, allow_downgrade=True, allow_held=True, simulate=True)
    assert {"--allow-downgrades", "--allow-change-held-packages", "--simulate"} <= set(argv)


def test_version_globs_are_resolved_from_madison_to_the_newest_match() -> None:
    madison = (
        " docker-ce | 5:27.5.1-1~ubuntu.20.04~focal | http://10.213.7.1/ubuntu focal/stable"
        " amd64 Packages\n"
        " docker-ce | 5:27.10.0-1~ubuntu.20.04~focal | http://10.213.7.1/ubuntu focal/stable"
        " amd64 Packages\n"
        " docker-ce | 5:26.1.3-1~ubuntu.20.04~focal | http://10.213.7.1/ubuntu focal/stable"
        " amd64 Packages\n"
    )
    versions = lists.parse_madison(madison)
    assert len(versions) == 3
    assert lists.has_glob("5:27.*")
    assert not lists.has_glob(versions[0])

    def compare(a: str, b: str) -> int:  # enough of apt's ordering for these versions
        key = [int(x) for x in a.split(":")[1].split("-", maxsplit=1)[0].split(".")]
        other = [int(x) for x in b.split(":")[1].split("-", maxsplit=1)[0].split(".")]
        return (key > other) - (key < other)

    assert lists.pick_version(versions, "5:27.*", compare) == versions[1]
    assert lists.pick_version(versions, "5:28.*", compare) is None


def test_what_apt_installed_is_read_from_its_output() -> None:
    real = (
        "Unpacking containerd.io (1.7.27-1) ...\n"
        "Selecting previously unselected package docker-ce.\n"
        "Unpacking docker-ce (5:27.5.1-1~ubuntu.20.04~focal) ...\n"
        "Setting up containerd.io (1.7.27-1) ...\n"
        "Setting up docker-ce-cli:amd64 (5:27.5.1-1) ...\n"
    )
    assert lists.installed_by(real) == ["containerd.io", "docker-ce", "docker-ce-cli"]
    simulated = "Inst docker-ce (5:27.5.1-1 stable [amd64])\nConf docker-ce (5:27.5.1-1)\n"
    assert lists.installed_by(simulated) == ["docker-ce"]
    assert lists.installed_by("0 upgraded, 0 newly installed, 0 to remove\n") == []


def test_the_candidate_is_read_from_apt_cache_policy() -> None:
    assert not lists.has_candidate("docker-ce:\n  Installed: (none)\n  Candidate: (none)\n")
    assert not lists.has_candidate("N: Unable to locate package docker-ce\n")
    assert lists.has_candidate("docker-ce:\n  Installed: (none)\n  Candidate: 5:27.5.1-1\n")


def test_current_lists_allow_the_narrow_refresh() -> None:
    found = read()
    assert found == lists.Lists([], [], 60)
    mode, why = lists.choose("docker", found, 86400)
    assert mode == "docker"
    assert "current" in why


def test_dockers_own_targets_do_not_count() -> None:
    # Docker's list is missing (a fresh host): the narrow refresh fetches it.
    assert "docker" not in " ".join(read().missing)
    released = (
        RELEASED + "\n" + target(f"{SOURCE}:1", DOCKER, "docker_stable_binary-amd64_Packages")
    )
    assert read(released).missing == []


def test_a_suite_apt_never_fetched_needs_the_full_refresh() -> None:
    # The test bed's image: only the release pocket was ever fetched.
    found = read(RELEASED.splitlines()[0])
    assert found.unfetched == [UPDATES]
    mode, why = lists.choose("docker", found, 86400)
    assert mode == "full"
    assert "never fetched 1 of the distribution's suites" in why


def test_a_missing_list_needs_the_full_refresh() -> None:
    found = read(present={f"{LISTS}focal_main_binary-amd64_Packages"})
    assert found.missing == [f"{LISTS}focal-updates_main_binary-amd64_Packages"]
    assert lists.choose("docker", found, 86400)[0] == "full"


@pytest.mark.parametrize("age", [86401.0, None, -3600.0])
def test_old_or_unknown_lists_need_the_full_refresh(age: float | None) -> None:
    found = lists.Lists([], [], age)
    mode, why = lists.choose("docker", found, 86400)
    assert mode == "full"
    assert "old" in why or "unknown" in why


def test_the_plans_full_refresh_stays_full() -> None:
    assert lists.choose("full", lists.Lists([], [], 1), 86400) == ("full", "")
    assert lists.choose("docker", None, 86400)[0] == "full"


def test_the_age_comes_from_apts_stamps_before_the_lists_directory() -> None:
    success, periodic = lists.STAMPS
    mtimes = {success: None, periodic: 900.0, LISTS: 990.0}
    assert lists.stamp_age(mtimes, LISTS, 1000.0) == 100.0
    mtimes[success] = 950.0
    assert lists.stamp_age(mtimes, LISTS, 1000.0) == 50.0
    assert lists.stamp_age({LISTS: 990.0}, LISTS, 1000.0) == 10.0
    assert lists.stamp_age({}, LISTS, 1000.0) is None


def test_parse_targets_skips_lines_without_three_fields() -> None:
    assert lists.parse_targets("garbage\n\t\t\n" + RELEASED) == lists.parse_targets(RELEASED)
    assert lists.source_file(f"{SOURCE}:1") == SOURCE


@pytest.mark.parametrize(
    "output",
    [
        # apt-get update (focal 2.0.2, trixie 3.0.4) while another process holds the lists lock
        "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 427 (python3)\n"
        "E: Unable to lock directory /var/lib/apt/lists/",
        "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another"
        " process using it?",
    ],
)
def test_a_held_lock_is_waited_for(output: str) -> None:
    assert lists.lock_failure("Reading package lists...\n" + output)


def test_other_failures_are_not_a_lock() -> None:
    unmet = (
        "The following packages have unmet dependencies:\n"
        " containerd.io : Depends: libseccomp2 (>= 2.5.0) but 2.4.3-1ubuntu1 is to be installed\n"
        "E: Unable to correct problems, you have held broken packages."
    )
    assert not lists.lock_failure(unmet)
    assert lists.errors(unmet) == (
        "containerd.io : Depends: libseccomp2 (>= 2.5.0) but 2.4.3-1ubuntu1 is to be installed"
        " E: Unable to correct problems, you have held broken packages."
    )
    assert lists.errors("a\nb\nc\nd") == "b c d"


def test_a_failed_fetch_counts_although_apt_get_update_exits_0() -> None:
    assert lists.fetch_failure(
        "Err:1 http://10.213.7.1:9/x focal InRelease\n"
        "W: Failed to fetch http://10.213.7.1:9/x/dists/focal/InRelease  Connection refused\n"
        "W: Some index files failed to download. They have been ignored, or old ones used instead."
    )
    assert not lists.fetch_failure("Hit:1 http://archive.ubuntu.com/ubuntu focal InRelease")


def compare(a: str, b: str) -> int:
    """A stand-in for apt_pkg.version_compare on plain dotted numbers."""
    key_a, key_b = (tuple(int(p) for p in v.split(":")[-1].split(".")) for v in (a, b))
    return (key_a > key_b) - (key_a < key_b)


def test_a_versioned_spec_picks_the_newest_version_its_glob_matches() -> None:
    assert lists.split_spec("docker-ce=5:27.*") == ("docker-ce", "5:27.*")
    assert lists.split_spec("containerd.io") == ("containerd.io", None)
    versions = ["5:27.1", "5:27.10", "5:26.9", "5:27.2"]
    assert lists.pick_version(versions, "5:27.*", compare) == "5:27.10"
    assert lists.pick_version(versions, "5:26.9", compare) == "5:26.9"
    assert lists.pick_version(versions, "5:28.*", compare) is None


PRINT_URIS = """\
'http://archive.ubuntu.com/ubuntu/dists/focal/InRelease' archive.ubuntu.com_ubuntu_dists_focal_InRelease 0
'http://archive.ubuntu.com/ubuntu/dists/focal-updates/InRelease' archive.ubuntu.com_ubuntu_dists_focal-updates_InRelease 0
'http://archive.ubuntu.com/ubuntu/dists/focal/main/binary-amd64/Packages.xz' archive.ubuntu.com_ubuntu_dists_focal_main_binary-amd64_Packages 0
'file:/srv/local/./InRelease' _srv_local_._InRelease 0
"""  # noqa: E501


def test_suites_apt_never_fetched_are_read_from_print_uris_and_the_lists_directory() -> None:
    releases = lists.release_files(PRINT_URIS)
    # Index files are not suites; local methods are read in place.
    assert releases == {
        "http://archive.ubuntu.com/ubuntu/dists/focal/": (
            "archive.ubuntu.com_ubuntu_dists_focal_InRelease"
        ),
        "http://archive.ubuntu.com/ubuntu/dists/focal-updates/": (
            "archive.ubuntu.com_ubuntu_dists_focal-updates_InRelease"
        ),
    }
    # The image's lists: the release pocket only, as a Release file (no InRelease).
    present = {"archive.ubuntu.com_ubuntu_dists_focal_Release", "lock", "partial"}
    assert lists.never_fetched(releases, present) == [
        "http://archive.ubuntu.com/ubuntu/dists/focal-updates/"
    ]
    present.add("archive.ubuntu.com_ubuntu_dists_focal-updates_InRelease")
    assert lists.never_fetched(releases, present) == []
    assert lists.release_files("E: something else\n") == {}


def test_candidates_of_several_packages() -> None:
    policy = (
        "ca-certificates:\n  Installed: (none)\n  Candidate: 20230311ubuntu0.20.04.1\n"
        "  Version table:\n     20230311ubuntu0.20.04.1 500\n"
        "gnupg:\n  Installed: (none)\n  Candidate: (none)\n"
    )
    assert lists.candidates(policy) == {"ca-certificates": True, "gnupg": False}
    assert lists.candidates("") == {}


# --- lists apt could not fetch: Docker's fail the run, another source's is a warning ---------

DEAD_SOURCE = (
    "Hit:1 http://archive.ubuntu.com/ubuntu focal InRelease\n"
    "Err:2 http://127.0.0.1:9/none focal InRelease\n"
    "  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)\n"
    "W: Failed to fetch http://127.0.0.1:9/none/dists/focal/InRelease  Could not connect to"
    " 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)\n"
    "W: Some index files failed to download. They have been ignored, or old ones used instead.\n"
)
DOCKER = "http://10.213.7.1:8000/linux/ubuntu"


def test_a_dead_foreign_source_is_foreign() -> None:
    failed = lists.fetch_failures(DEAD_SOURCE, DOCKER)
    assert failed.docker == []
    assert failed.unnamed is False
    ((url, reason),) = failed.foreign
    assert url == "http://127.0.0.1:9/none/dists/focal/InRelease"
    assert reason.startswith("Could not connect to 127.0.0.1:9")
    assert "http://127.0.0.1:9/none/dists/focal/InRelease" in lists.foreign_warning(url, reason)


def test_dockers_own_failure_is_named() -> None:
    output = DEAD_SOURCE + (
        f"W: Failed to fetch {DOCKER}/dists/focal/InRelease  Connection failed [IP: 10.213.7.1]\n"
    )
    failed = lists.fetch_failures(output, DOCKER)
    assert [u for u, _r in failed.docker] == [f"{DOCKER}/dists/focal/InRelease"]
    assert lists.update_failure(output, DOCKER) == (
        f"apt could not fetch Docker's repository {DOCKER}/dists/focal/InRelease:"
        " Connection failed [IP: 10.213.7.1]"
    )


def test_a_failure_apt_does_not_name_counts_as_failed() -> None:
    output = "E: Some index files failed to download. They have been ignored.\n"
    assert lists.fetch_failures(output, DOCKER).unnamed is True

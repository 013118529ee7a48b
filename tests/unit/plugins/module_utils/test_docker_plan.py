"""The role's decisions (plugins/module_utils/docker_plan.py), case by case: what docker_host_facts
read on a host, the role's variables, and the plan the tasks follow. Each case starts from a focal
host the role converged (conftest.py) and changes what the case is about."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.provision.hosts.plugins.module_utils import docker_plan
from ansible_collections.provision.hosts.tests.unit.plugins.docker_role import (
    REPOSITORY,
    SECOND_KEY,
    STARTED_AT,
    TEST_KEY,
    VERSION,
    role_want,
    state,
)

Plan = dict[str, Any]


def plan_of(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> Plan:
    return docker_plan.make_plan(host, want, paths, rules)


def needed(plan: Plan) -> list[str]:
    return [s for s in docker_plan.PRESENT_STEPS if plan[s]["needed"]]


def running_engine(host: dict[str, Any], *containers: str, live_restore: bool = False) -> None:
    """The reading of the engine the module makes when the plan asks for it."""
    host["engine"] = {"containers": list(containers), "live_restore": live_restore}
    host["read"].append("engine")


def lose_a_restart(host: dict[str, Any]) -> None:
    """daemon.json changed after dockerd started (a run that wrote it failed before restarting)."""
    mtime = STARTED_AT + 30
    host["files"]["daemon_json"].update(mtime=mtime, mtime_ns=int(mtime * 1e9))


# --- a host that is right --------------------------------------------------------------------


def test_a_converged_host_needs_nothing_and_no_further_reading(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    plan = plan_of(host, want, paths, rules)
    assert plan["problems"] == []
    assert needed(plan) == []
    assert plan["changes"] is False
    # No apt-cache, no dpkg --audit, no question to dockerd on a no-op run.
    assert plan["needs"] == []


def test_ubuntu_20_04_gets_the_end_of_life_warning(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    (warning,) = plan_of(host, want, paths, rules)["warnings"]
    assert "Ubuntu 20.04.6 LTS (focal) has reached end of life" in warning
    host["os"]["codename"] = "jammy"
    assert plan_of(host, want, paths, rules)["warnings"] == []


# --- what the variables mean on the host ----------------------------------------------------


def test_defaults_follow_the_host() -> None:
    resolved = docker_plan.resolve(
        {"distribution": "debian", "codename": "trixie", "name": "Debian"},
        "arm64",
        role_want(
            repository_url="",
            key_url="",
            architecture="",
            fingerprint="9dc8 5822 9fc7 dd38 854a e2d8 8d81 803c 0ebf cd88",
        ),
    )
    assert resolved["repository_url"] == "https://download.docker.com/linux/debian"
    assert resolved["key_url"] == "https://download.docker.com/linux/debian/gpg"
    assert resolved["architecture"] == "arm64"
    assert resolved["fingerprint"] == "9DC858229FC7DD38854AE2D88D81803C0EBFCD88"


@pytest.mark.parametrize(
    ("login_hint", "login", "users"),
    [
        ("deploy", "ops", ["deploy"]),  # the inventory's ansible_user wins
        (None, "ops", ["ops"]),  # else the user sudo names
        ("", "ops", ["ops"]),
        (None, "root", []),  # connected as root: nobody
        ("root", "ops", []),
    ],
)
def test_docker_users_default_is_the_login_user_unless_root(
    login_hint: str | None, login: str, users: list[str]
) -> None:
    assert docker_plan.default_users(login_hint, login) == users


def test_a_mirror_keeps_its_own_key_url_and_architecture() -> None:
    resolved = docker_plan.resolve(
        {"distribution": "ubuntu", "codename": "noble"},
        "amd64",
        role_want(
            repository_url="https://m.example/docker/",
            key_url="https://k.example/key.asc",
            architecture="arm64",
        ),
    )
    assert resolved["repository_url"] == "https://m.example/docker/"
    assert resolved["key_url"] == "https://k.example/key.asc"
    assert resolved["architecture"] == "arm64"
    resolved = docker_plan.resolve({}, "amd64", role_want(repository_url="https://m.example/d/"))
    assert resolved["key_url"] == "https://m.example/d/gpg"


# --- preflight ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("os_release", "dpkg_arch", "machine"),
    [
        (
            {"distribution": "ubuntu", "codename": "bionic", "name": "Ubuntu 18.04"},
            "amd64",
            "x86_64",
        ),
        ({"distribution": "fedora", "codename": "", "name": "Fedora"}, "amd64", "x86_64"),
        # an arm64 kernel with an armhf userland: apt installs armhf, Docker's role does not
        (
            {"distribution": "ubuntu", "codename": "noble", "name": "Ubuntu 24.04"},
            "armhf",
            "aarch64",
        ),
    ],
)
def test_unsupported_hosts_stop_with_one_sentence(
    host: dict[str, Any],
    want: dict[str, Any],
    paths: dict[str, Any],
    rules: dict[str, Any],
    os_release: dict[str, str],
    dpkg_arch: str,
    machine: str,
) -> None:
    host.update(os=os_release, architecture=dpkg_arch, machine=machine)
    (problem,) = plan_of(host, want, paths, rules)["problems"]
    assert problem.startswith("The docker role supports Ubuntu 20.04, 22.04, 24.04, 26.04")
    assert f"on {machine} (dpkg architecture {dpkg_arch})" in problem


def test_every_problem_is_named_in_one_go(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    host["files"]["daemon_json"] = state("0644", path=paths["daemon_json"], json=[1, 2])
    want.update(
        fingerprint="12 34",
        users=["ops", "no-such-user"],
        registry_mirrors=["http://ok:5000", "not a url"],
        repository_url="ftp://mirror.example/docker",
    )
    problems = plan_of(host, want, paths, rules)["problems"]
    text = " ".join(problems)
    assert "docker_apt_key_fingerprint '12 34' must be 40 hexadecimal digits" in text
    assert "docker_apt_repository_url 'ftp://mirror.example/docker' must be an http://" in text
    assert "docker_registry_mirrors item 2 ('not a url')" in text
    assert "/etc/docker/daemon.json must hold a JSON object" in text
    assert "docker_users names users that do not exist on this host: no-such-user." in text
    assert len(problems) == 6  # the derived key URL is ftp:// too


def test_unknown_users_do_not_stop_a_removal(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    want.update(state="absent", users=["gone"])
    assert plan_of(host, want, paths, rules)["problems"] == []


# --- the key and the source -------------------------------------------------------------------


def test_a_missing_key_is_downloaded(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    host["key"] = {"exists": False}
    plan = plan_of(host, want, paths, rules)
    assert plan["repository"]["key"] == "replace"
    assert plan["repository"]["refresh_cache"] is True
    assert plan["packages"]["needed"]
    assert plan["warnings"][1:] == []  # missing is not worth a warning


@pytest.mark.parametrize(
    "found",
    [
        "holds 2 armored blocks, not one",
        f"holds 2 primary keys ({TEST_KEY}, {SECOND_KEY})",
        "is binary OpenPGP data, not an ASCII-armored key (apt reads an .asc file as armored text)",
    ],
)
def test_a_key_that_is_more_than_the_pinned_key_is_replaced_and_named(
    host: dict[str, Any],
    want: dict[str, Any],
    paths: dict[str, Any],
    rules: dict[str, Any],
    found: str,
) -> None:
    host["key"] = state("0644", problem=found)
    plan = plan_of(host, want, paths, rules)
    assert plan["repository"]["key"] == "replace"
    assert f"/etc/apt/keyrings/docker.asc {found}: the role replaces it" in plan["warnings"][-1]


def test_another_key_is_replaced(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    host["key"]["fingerprint"] = SECOND_KEY
    plan = plan_of(host, want, paths, rules)
    assert plan["repository"]["key"] == "replace"
    assert f"holds the key {SECOND_KEY}, not {TEST_KEY}" in plan["warnings"][-1]


@pytest.mark.parametrize(
    ("where", "attributes"),
    [("key", {"mode": "0640"}), ("key", {"gid": 4}), ("dir", {"mode": "0700"})],
)
def test_the_right_key_with_wrong_attributes_is_only_corrected(
    host: dict[str, Any],
    want: dict[str, Any],
    paths: dict[str, Any],
    rules: dict[str, Any],
    where: str,
    attributes: dict[str, Any],
) -> None:
    target = host["key"] if where == "key" else host["dirs"][paths["keyring_dir"]]
    target.update(attributes)
    plan = plan_of(host, want, paths, rules)
    assert needed(plan) == ["repository"]
    assert plan["repository"]["key"] == "attributes"
    assert plan["repository"]["source"] == "keep"
    # apt trusts and reads the same as before: no apt call at all
    assert plan["repository"]["refresh_cache"] is False
    assert not plan["dpkg"]["apt_calls"]


def test_a_source_with_wrong_mode_is_corrected_without_an_apt_refresh(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    host["files"]["source"]["mode"] = "0600"
    plan = plan_of(host, want, paths, rules)
    assert needed(plan) == ["repository"]
    assert (plan["repository"]["key"], plan["repository"]["source"]) == ("keep", "attributes")
    assert plan["repository"]["refresh_cache"] is False


def test_a_changed_source_is_written_and_apt_reads_again(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    want["channel"] = "test"
    plan = plan_of(host, want, paths, rules)
    assert plan["repository"]["source"] == "write"
    assert "Components: test\n" in plan["repository"]["source_content"]
    assert plan["packages"]["needed"]
    assert plan["packages"]["refresh_cache"]
    assert plan["packages"]["install"] == []


def test_repository_credentials_stay_out_of_the_plan_and_the_source(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    want["repository_url"] = REPOSITORY.replace("://", "://ops:s3cret@")
    plan = plan_of(host, want, paths, rules)
    assert plan["problems"] == []
    assert plan["resolved"]["repository_url"] == REPOSITORY
    assert plan["resolved"]["key_url"] == REPOSITORY + "/gpg"
    assert "s3cret" not in repr(plan)
    # the login file is missing: written, and apt reads Docker's lists again with it
    assert (plan["repository"]["source"], plan["repository"]["auth"]) == ("keep", "write")
    assert plan["repository"]["refresh_cache"] is True

    host["files"]["auth"] = state("0600", path=paths["auth"], ours=True, current=True)
    assert needed(plan_of(host, want, paths, rules)) == []
    host["files"]["auth"]["mode"] = "0644"
    assert plan_of(host, want, paths, rules)["repository"]["auth"] == "write"

    want["repository_url"] = REPOSITORY  # credentials no longer given: the role's file goes
    host["files"]["auth"].update(mode="0600", current=False)
    assert plan_of(host, want, paths, rules)["repository"]["auth"] == "remove"
    host["files"]["auth"]["ours"] = False  # someone else's login file stays
    assert needed(plan_of(host, want, paths, rules)) == []


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("https://token@repo.internal/linux/ubuntu", "not a user alone"),
        ("https://ops:two%20words@repo.internal/linux/ubuntu", "have no spaces"),
    ],
)
def test_credentials_apt_cannot_use_are_refused_without_showing_them(
    host: dict[str, Any],
    want: dict[str, Any],
    paths: dict[str, Any],
    rules: dict[str, Any],
    url: str,
    said: str,
) -> None:
    want["repository_url"] = url
    (problem,) = plan_of(host, want, paths, rules)["problems"]
    assert said in problem
    assert "token" not in problem.replace("(a token as the password)", "")
    assert "words" not in problem


def test_the_source_names_the_dpkg_architecture_and_the_pinned_key_file(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    host.update(architecture="arm64", machine="aarch64")
    content = plan_of(host, want, paths, rules)["repository"]["source_content"]
    assert content.splitlines() == [
        "# Written by the Ansible role docker; local changes are overwritten.",
        "Types: deb",
        f"URIs: {REPOSITORY}",
        "Suites: focal",
        "Components: stable",
        "Architectures: arm64",
        "Signed-By: /etc/apt/keyrings/docker.asc",
    ]


# --- daemon.json and the running engine -------------------------------------------------------


def test_a_daemon_json_owned_by_another_group_is_corrected_without_touching_the_engine(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    host["files"]["daemon_json"].update(gid=4, mode="0640")
    plan = plan_of(host, want, paths, rules)
    assert needed(plan) == ["daemon"]
    assert plan["daemon"]["changed_keys"] == []
    assert plan["daemon"]["apply"] == "none"


def test_keys_the_role_does_not_own_stay_and_dropped_keys_go(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    current = {**host["files"]["daemon_json"]["json"], "runtimes": {"nvidia": {}}, "debug": True}
    host["files"]["daemon_json"]["json"] = current
    host["files"]["record"]["json"] = {"daemon_keys": ["debug", "log-driver", "log-opts"]}
    running_engine(host)
    plan = plan_of(host, want, paths, rules)
    assert plan["daemon"]["config"] == {**want["daemon_options"], "runtimes": {"nvidia": {}}}
    assert plan["daemon"]["changed_keys"] == ["debug"]
    assert plan["daemon"]["record"] == {"daemon_keys": ["log-driver", "log-opts"]}
    # dockerd's reload keeps a key that is no longer in the file: a dropped key needs a restart
    assert plan["daemon"]["apply"] == "restart"


@pytest.mark.parametrize(
    "change",
    [
        {"registry_mirrors": ["http://10.213.7.1:59201"]},
        {"insecure_registries": ["10.213.7.1:59201"]},
        {"live_restore": True},
    ],
)
def test_changes_dockerd_reloads_are_reloaded_without_asking_the_engine(
    host: dict[str, Any],
    want: dict[str, Any],
    paths: dict[str, Any],
    rules: dict[str, Any],
    change: dict[str, Any],
) -> None:
    want.update(change)
    plan = plan_of(host, want, paths, rules)
    assert plan["daemon"]["apply"] == "reload"
    assert plan["needs"] == []  # a reload stops no container: nothing to ask
    assert plan["problems"] == []


def test_a_debug_option_is_reloaded(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    want["daemon_options"] = {**want["daemon_options"], "debug": True}
    plan = plan_of(host, want, paths, rules)
    assert (plan["daemon"]["changed_keys"], plan["daemon"]["apply"]) == (["debug"], "reload")


def test_a_restart_first_asks_the_engine_what_it_runs(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    want["daemon_options"] = {**want["daemon_options"], "log-driver": "local"}
    plan = plan_of(host, want, paths, rules)
    assert plan["daemon"]["apply"] == "restart"
    assert plan["needs"] == ["engine"]
    running_engine(host)
    plan = plan_of(host, want, paths, rules)
    assert (plan["needs"], plan["problems"]) == ([], [])


def test_a_restart_that_would_stop_containers_stops_the_run_and_names_them(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    # Docker CE running containers, daemon.json lacking the role's keys.
    host["files"]["daemon_json"]["json"] = {"max-concurrent-uploads": 3}
    host["files"]["record"] = {"exists": False}
    running_engine(host, "db", "web")
    (problem,) = plan_of(host, want, paths, rules)["problems"]
    assert "daemon.json changes log-driver, log-opts" in problem
    assert "runs 2 container(s) that a restart stops (live-restore is off): db, web" in problem
    assert "docker_restart_running_engine=true" in problem


def test_the_variable_allows_the_restart_with_a_warning(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    host["files"]["daemon_json"]["json"] = {}
    running_engine(host, "db")
    want["restart_running_engine"] = True
    plan = plan_of(host, want, paths, rules)
    assert plan["problems"] == []
    assert plan["daemon"]["apply"] == "restart"
    assert "container(s) stop: db." in plan["warnings"][-1]


def test_live_restore_keeps_containers_through_a_restart(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    host["files"]["daemon_json"]["json"] = {"live-restore": True}
    running_engine(host, "db", live_restore=True)
    plan = plan_of(host, want, paths, rules)
    assert (plan["problems"], plan["daemon"]["apply"]) == ([], "restart")


@pytest.mark.parametrize(
    "engine",
    [
        {"units": {"docker": {"load": "loaded", "active": "inactive", "enabled": "enabled"}}},
        {"packages": {"docker.io": {"status": "installed", "want": "install", "version": "1"}}},
        {"service_state": "stopped"},
    ],
)
def test_an_engine_that_is_not_running_or_goes_away_takes_the_file_when_it_starts(
    host: dict[str, Any],
    want: dict[str, Any],
    paths: dict[str, Any],
    rules: dict[str, Any],
    engine: dict[str, Any],
) -> None:
    want["daemon_options"] = {"log-driver": "local"}
    if "service_state" in engine:
        want["service_state"] = engine["service_state"]
    for key in ("units", "packages"):
        if key in engine:
            host[key].update(engine[key])
    running_engine(host, "db")
    plan = plan_of(host, want, paths, rules)
    assert plan["daemon"]["needed"]
    assert plan["daemon"]["apply"] == "none"


def test_an_engine_running_an_older_daemon_json_restarts(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    lose_a_restart(host)
    plan = plan_of(host, want, paths, rules)
    assert plan["service"]["restart"]
    assert plan["service"]["needed"]
    assert plan["needs"] == ["engine"]
    running_engine(host, "db")
    (problem,) = plan_of(host, want, paths, rules)["problems"]
    assert "it runs an older daemon.json than the one on disk" in problem


def test_an_engine_reloaded_after_the_last_write_is_not_stale(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    lose_a_restart(host)
    host["files"]["record"]["json"]["reloaded_mtime_ns"] = host["files"]["daemon_json"]["mtime_ns"]
    assert plan_of(host, want, paths, rules)["changes"] is False


def test_a_running_distribution_engine_is_not_removed_under_its_containers(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    host["packages"]["docker.io"] = {"status": "installed", "want": "install", "version": "1"}
    plan = plan_of(host, want, paths, rules)
    assert plan["conflicts"]["remove"] == ["docker.io"]
    assert plan["needs"] == ["engine", "dpkg_audit"]
    running_engine(host, "legacy-sleeper")
    (problem,) = plan_of(host, want, paths, rules)["problems"]
    assert "is running 1 container(s): legacy-sleeper" in problem
    assert "docker_remove_running_engine=true" in problem
    want["remove_running_engine"] = True
    plan = plan_of(host, want, paths, rules)
    assert plan["problems"] == []
    assert "legacy-sleeper" in plan["warnings"][-1]


def test_an_engine_that_does_not_answer_is_not_removed_blindly(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    host["packages"]["docker.io"] = {"status": "installed", "want": "install", "version": "1"}
    host["engine"] = {"error": "/var/run/docker.sock does not answer: timed out"}
    host["read"].append("engine")
    (problem,) = plan_of(host, want, paths, rules)["problems"]
    assert "does not answer (/var/run/docker.sock does not answer: timed out)" in problem


def test_conflicting_packages_stay_when_asked(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    host["packages"]["docker-cli"] = {"status": "installed", "want": "install", "version": "1"}
    assert plan_of(host, want, paths, rules)["conflicts"] == {
        "needed": True,
        "remove": ["docker-cli"],
    }
    want["remove_conflicting_packages"] = False
    assert plan_of(host, want, paths, rules)["conflicts"] == {"needed": False, "remove": []}


# --- dpkg ---------------------------------------------------------------------------------


def test_an_interrupted_dpkg_is_finished_before_the_first_apt_call(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    host["dpkg"]["journal"] = ["0000"]
    assert plan_of(host, want, paths, rules)["dpkg"]["needed"] is False  # no apt call: untouched
    del host["packages"]["docker-compose-plugin"]
    plan = plan_of(host, want, paths, rules)
    assert plan["dpkg"]["needed"] is True
    assert "dpkg_audit" not in plan["needs"]  # the journal already says so


def test_dpkg_audit_is_read_only_before_an_apt_call(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    del host["packages"]["docker-compose-plugin"]
    plan = plan_of(host, want, paths, rules)
    assert plan["needs"] == ["candidate", "dpkg_audit"]
    host.update(candidate=True, read=["candidate", "dpkg_audit"])
    host["dpkg"]["audit"] = (
        "The following packages are only half configured, probably due to problems\n"
        " docker-ce            Docker: the open-source application container engine\n"
    )
    plan = plan_of(host, want, paths, rules)
    assert plan["needs"] == []
    assert plan["dpkg"]["needed"] is True
    assert plan["packages"]["refresh_cache"] is False  # apt has the candidate


# --- packages ---------------------------------------------------------------------------------


def test_a_fresh_host(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    host.update(packages={}, key={"exists": False}, sources={}, units={})
    host["files"] = {
        "source": {"exists": False},
        "daemon_json": {"exists": False},
        "record": {"exists": False},
    }
    host["dirs"] = {d: {"exists": False} for d in host["dirs"]}
    host["group"] = {"exists": False, "members": []}
    plan = plan_of(host, want, paths, rules)
    # the service step proves the new engine answers (docker_apt_install plans it again after)
    assert needed(plan) == [
        "prerequisites",
        "repository",
        "daemon",
        "packages",
        "service",
        "users",
    ]
    assert plan["daemon"]["apply"] == "none"
    assert plan["users"] == {
        "needed": True,
        "add": ["ops"],
        "remove": [],
        "record": {"users": ["ops"]},
        "create_group": True,
    }
    # Docker's source is new: lists are read again whatever apt's candidate is now; the
    # missing prerequisite's candidate decides how old apt's lists may be.
    assert plan["needs"] == ["dpkg_audit", "prerequisite_candidates"]
    host.update(read=["dpkg_audit", "prerequisite_candidates"], dpkg={"journal": [], "audit": ""})
    plan = plan_of(host, want, paths, rules)
    assert plan["packages"]["install"] == want["packages"]
    assert plan["packages"]["install_specs"] == want["packages"]
    assert plan["packages"]["refresh_cache"] is True
    # Only Docker's source is new: its lists alone may do (docker_apt_install checks).
    assert plan["packages"]["refresh"] == "docker"
    # Check mode asks apt to simulate the install only when apt has a candidate: read it.
    host["check_mode"] = True
    assert plan_of(host, want, paths, rules)["needs"] == ["candidate"]


def test_apt_reads_dockers_lists_alone_only_when_only_dockers_key_or_source_changed(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    assert plan_of(host, want, paths, rules)["packages"]["refresh"] == "none"
    host["key"]["fingerprint"] = SECOND_KEY
    plan = plan_of(host, want, paths, rules)
    assert (plan["packages"]["refresh"], plan["packages"]["refresh_why"]) == (
        "docker",
        "Docker's key or source changed",
    )
    assert plan["packages"]["needed"]
    assert plan["packages"]["install"] == []
    # Legacy sources went too: apt's view of other sources changed, every list is read.
    host["legacy_keys"] = ["/etc/apt/trusted.gpg.d/docker.gpg"]
    plan = plan_of(host, want, paths, rules)
    assert plan["packages"]["refresh"] == "full"
    assert "legacy" in plan["packages"]["refresh_why"]


def test_a_missing_candidate_with_an_unchanged_source_reads_every_list(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    # A run that failed half-way: the source is in place, apt has no docker-ce candidate.
    del host["packages"]["docker-ce"]
    host.update(candidate=None, read=["candidate", "dpkg_audit"])
    plan = plan_of(host, want, paths, rules)
    assert plan["repository"]["needed"] is False
    assert plan["packages"]["refresh"] == "full"
    assert "no docker-ce candidate" in plan["packages"]["refresh_why"]
    host["candidate"] = True
    assert plan_of(host, want, paths, rules)["packages"]["refresh"] == "none"


def test_docker_version_pins_and_holds_the_engine_packages(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    want["version"] = "5:27.*"
    plan = plan_of(host, want, paths, rules)["packages"]
    assert plan["install"] == ["docker-ce", "docker-ce-cli"]
    assert plan["specs"][:2] == ["docker-ce=5:27.*", "docker-ce-cli=5:27.*"]
    assert plan["install_specs"] == ["docker-ce=5:27.*", "docker-ce-cli=5:27.*"]
    assert plan["selections"] == {"docker-ce": "hold", "docker-ce-cli": "hold"}
    want["version"] = VERSION
    for name in ("docker-ce", "docker-ce-cli"):
        host["packages"][name]["want"] = "hold"
    assert plan_of(host, want, paths, rules)["changes"] is False
    want["version"] = ""
    plan = plan_of(host, want, paths, rules)["packages"]
    assert (plan["install"], plan["selections"]) == (
        [],
        {"docker-ce": "install", "docker-ce-cli": "install"},
    )


# --- services and users --------------------------------------------------------------------


def test_a_failed_engine_is_not_a_no_op(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    host["units"]["docker"].update(active="failed", sub="failed")
    plan = plan_of(host, want, paths, rules)
    assert plan["service"] == {
        "needed": True,
        "units": ["docker"],
        "restart": False,
        "reset_failed": True,  # its start limit is cleared before it is started again
        "prove": True,
    }


def test_stopping_stops_the_socket_first(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    want.update(service_state="stopped", service_enabled=False)
    plan = plan_of(host, want, paths, rules)
    assert plan["service"]["units"] == ["docker.socket", "docker", "containerd"]
    for unit in host["units"].values():
        unit.update(active="inactive", enabled="disabled")
    assert plan_of(host, want, paths, rules)["changes"] is False


def test_a_missing_socket_unit_is_not_managed(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    host["units"]["docker.socket"] = {"load": "not-found", "active": "inactive", "enabled": ""}
    assert plan_of(host, want, paths, rules)["changes"] is False


def test_after_the_install_only_services_and_users_are_planned(
    host: dict[str, Any], want: dict[str, Any], rules: dict[str, Any]
) -> None:
    host["group"]["members"] = []
    after = docker_plan.after_install_plan(host, want, rules, answered=True)
    assert set(after) == {"service", "users"}
    assert after["users"]["add"] == ["ops"]
    assert after["service"]["needed"] is False
    # an engine that does not answer yet must prove it does, or the run fails
    assert docker_plan.after_install_plan(host, want, rules, answered=False)["service"]["prove"]


# --- docker_users is the whole list ---------------------------------------------------------


def members_after(plan: Plan, members: list[str]) -> list[str]:
    users = plan["users"]
    return sorted({*members, *users["add"]} - set(users["remove"]))


def test_a_user_no_longer_listed_leaves_the_group_and_others_stay(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    # the last run was told ops, alice and bob; carol joined the group by other means
    members = ["ops", "alice", "bob", "carol"]
    host["group"]["members"] = members
    host["files"]["users_record"]["json"] = {"users": ["alice", "bob", "ops"]}
    want["users"] = ["ops", "alice"]
    plan = plan_of(host, want, paths, rules)
    assert plan["users"]["remove"] == ["bob"]
    assert plan["users"]["record"] == {"users": ["alice", "ops"]}
    assert members_after(plan, members) == ["alice", "carol", "ops"]
    want["users_exclusive"] = True
    plan = plan_of(host, want, paths, rules)
    assert members_after(plan, members) == ["alice", "ops"]


def test_an_empty_list_removes_the_users_listed_before(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    want["users"] = []
    plan = plan_of(host, want, paths, rules)
    assert (plan["users"]["add"], plan["users"]["remove"]) == ([], ["ops"])
    assert plan["users"]["record"] == {"users": []}


def test_the_record_is_written_when_missing_or_not_in_place(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    assert plan_of(host, want, paths, rules)["users"]["needed"] is False
    host["files"]["users_record"] = {"exists": False}  # a host converged by 0.1.0
    plan = plan_of(host, want, paths, rules)
    assert (plan["users"]["needed"], plan["users"]["add"], plan["users"]["remove"]) == (
        True,
        [],
        [],
    )
    host["files"]["users_record"] = state("0666", json={"users": ["ops"]})
    assert plan_of(host, want, paths, rules)["users"]["needed"] is True
    # nobody listed and no record: nothing to write
    host["files"]["users_record"] = {"exists": False}
    host["group"]["members"] = []
    want["users"] = []
    assert plan_of(host, want, paths, rules)["users"]["needed"] is False


def test_absent_removes_the_members_of_the_last_list_only(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    host["group"]["members"] = ["ops", "carol"]
    want["state"] = "absent"
    users = plan_of(host, want, paths, rules)["absent"]["users"]
    assert users == {"needed": True, "remove": ["ops"]}
    host["group"]["members"] = ["carol"]
    # only the record is left to forget
    assert plan_of(host, want, paths, rules)["absent"]["users"] == {"needed": True, "remove": []}


# --- the daemon's exposure ----------------------------------------------------------------------

TLS_FILES = {
    "tlscacert": "/etc/docker/tls/ca.pem",
    "tlscert": "/etc/docker/tls/cert.pem",
    "tlskey": "/etc/docker/tls/key.pem",
}


def tls_listener(want: dict[str, Any], host: dict[str, Any], key_mode: str = "0600") -> None:
    want["daemon_options"] = {
        **want["daemon_options"],
        "hosts": ["tcp://0.0.0.0:2376"],
        "tlsverify": True,
        **TLS_FILES,
    }
    host["tls_files"] = {
        path: {"exists": True, "is_file": True, "uid": 0, "mode": "0644"}
        for path in TLS_FILES.values()
    }
    host["tls_files"][TLS_FILES["tlskey"]]["mode"] = key_mode


def test_a_tls_listener_gets_the_drop_in_and_keeps_the_socket(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    tls_listener(want, host)
    running_engine(host)
    plan = plan_of(host, want, paths, rules)
    assert plan["problems"] == []
    daemon = plan["daemon"]
    assert daemon["config"]["hosts"] == ["fd://", "tcp://0.0.0.0:2376"]
    assert "ExecStart=\nExecStart=/usr/bin/dockerd --containerd=" in daemon["dropin"]
    assert "-H" not in daemon["dropin"].split("ExecStart=", 2)[2]
    assert daemon["apply"] == "restart"
    # the drop-in in place: nothing left; then hosts dropped: the drop-in goes, with a restart
    host["files"]["daemon_json"]["json"] = daemon["config"]
    host["files"]["record"]["json"] = daemon["record"]
    host["files"]["hosts_dropin"] = state("0644", content=daemon["dropin"])
    assert plan_of(host, want, paths, rules)["daemon"]["needed"] is False
    want["daemon_options"] = {"log-driver": "json-file"}
    gone = plan_of(host, want, paths, rules)["daemon"]
    assert (gone["dropin"], gone["needed"], gone["apply"]) == ("", True, "restart")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("missing", "tlskey /etc/docker/tls/key.pem is not a file on this host"),
        ("readable", "tlskey /etc/docker/tls/key.pem is 0644 uid 0: it must be root's alone"),
        ("foreign", "tlskey /etc/docker/tls/key.pem is 0600 uid 1000"),
    ],
)
def test_a_tls_listener_needs_its_files_on_the_host(
    host: dict[str, Any],
    want: dict[str, Any],
    paths: dict[str, Any],
    rules: dict[str, Any],
    change: str,
    problem: str,
) -> None:
    tls_listener(want, host, key_mode="0644" if change == "readable" else "0600")
    if change == "missing":
        host["tls_files"][TLS_FILES["tlskey"]] = {"exists": False}
    elif change == "foreign":
        host["tls_files"][TLS_FILES["tlskey"]]["uid"] = 1000
    (found,) = plan_of(host, want, paths, rules)["problems"]
    assert problem in found


def test_an_open_listener_stops_the_run_in_preflight(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    want["daemon_options"] = {"hosts": ["tcp://0.0.0.0:2375"]}
    (problem,) = plan_of(host, want, paths, rules)["problems"]
    assert problem.startswith("docker_daemon_options hosts tcp://0.0.0.0:2375 opens the daemon")


def test_absent_removes_the_drop_in(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    want["state"] = "absent"
    host["files"]["hosts_dropin"] = state("0644", content="[Service]\n")
    host["files"]["record"] = {"exists": False}
    host["files"]["daemon_json"] = {"exists": False}
    assert plan_of(host, want, paths, rules)["absent"]["daemon"]["needed"] is True


# --- the restart rule: how dockerd takes this run's changes -----------------------------------


def engine_of(plan: Plan) -> tuple[str, bool, bool, bool]:
    """(daemon.json's apply, the role restarts, the packages restart, the service step proves)."""
    return (
        plan["daemon"]["apply"],
        plan["restart"]["restart"],
        plan["restart"]["by_packages"],
        plan["service"]["prove"],
    )


RESTART = {"daemon_options": {"log-driver": "local"}}  # a key only a restart applies
RELOAD = {"registry_mirrors": ["http://10.213.7.1:59201"]}  # a key dockerd reloads


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("converged", ("none", False, False, False)),
        ("fresh install", ("none", False, False, True)),
        ("reloadable change", ("reload", False, False, True)),
        ("restart change", ("restart", True, False, True)),
        ("restart change, plugin installed first", ("restart", False, False, True)),
        ("lost restart", ("none", True, False, True)),
        ("engine stopped on purpose", ("none", False, False, False)),
        ("package upgrade", ("none", False, True, True)),
        ("check mode", ("restart", True, False, False)),
    ],
)
def test_the_restart_rule(
    host: dict[str, Any],
    want: dict[str, Any],
    paths: dict[str, Any],
    rules: dict[str, Any],
    case: str,
    expected: tuple[str, bool, bool, bool],
) -> None:
    running_engine(host)
    if case == "fresh install":
        host.update(packages={}, units={})
        host["files"]["daemon_json"] = {"exists": False}
    elif case == "reloadable change":
        want.update(RELOAD)
    elif case in ("restart change", "check mode"):
        want.update(RESTART)
        host["check_mode"] = case == "check mode"
    elif case == "restart change, plugin installed first":
        want.update(RESTART)
        del host["packages"]["docker-compose-plugin"]
    elif case == "lost restart":
        lose_a_restart(host)
    elif case == "engine stopped on purpose":
        want.update(RESTART, service_state="stopped")
        for unit in host["units"].values():
            unit.update(active="inactive")
    elif case == "package upgrade":
        want.update(version="5:99.0.0-1*")
    plan = plan_of(host, want, paths, rules)
    assert plan["problems"] == []
    assert engine_of(plan) == expected
    # a restart the role makes clears docker's start limit first
    assert plan["service"]["reset_failed"] == expected[1]


@pytest.mark.parametrize("restart", ["daemon change", "lost restart", "package upgrade"])
@pytest.mark.parametrize("live_restore", [False, True])
def test_every_restart_is_guarded_by_the_containers_it_would_stop(
    host: dict[str, Any],
    want: dict[str, Any],
    paths: dict[str, Any],
    rules: dict[str, Any],
    restart: str,
    live_restore: bool,
) -> None:
    if restart == "daemon change":
        want.update(RESTART)
    elif restart == "lost restart":
        lose_a_restart(host)
    else:
        want.update(version="5:99.0.0-1*")
    assert plan_of(host, want, paths, rules)["needs"][:1] == ["engine"]
    running_engine(host, "db", live_restore=live_restore)
    problems = plan_of(host, want, paths, rules)["problems"]
    if live_restore:
        assert problems == []  # live-restore keeps containers running through the restart
    else:
        (problem,) = problems
        assert "runs 1 container(s) that a restart stops (live-restore is off): db" in problem
        want["restart_running_engine"] = True
        plan = plan_of(host, want, paths, rules)
        assert plan["problems"] == []
        assert "container(s) stop: db." in plan["warnings"][-1]


def test_the_supported_releases_message_is_built_from_the_rules(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    host["os"].update(codename="bionic", name="Ubuntu 18.04.6 LTS")
    (problem,) = plan_of(host, want, paths, rules)["problems"]
    assert problem.startswith(
        "The docker role supports Ubuntu 20.04, 22.04, 24.04, 26.04 and Debian 12, 13 on "
    )
    rules["supported_releases"]["debian"]["forky"] = "14"
    (problem,) = plan_of(host, want, paths, rules)["problems"]
    assert "and Debian 12, 13, 14 on " in problem


# --- docker_state=absent ----------------------------------------------------------------------


def test_absent_removes_the_packages_files_and_only_the_roles_keys(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    host["packages"]["docker-ce-rootless-extras"] = {
        "status": "installed",
        "want": "install",
        "version": VERSION,
    }
    host["files"]["daemon_json"]["json"] = {**host["files"]["daemon_json"]["json"], "debug": True}
    want["state"] = "absent"
    plan = plan_of(host, want, paths, rules)
    absent = plan["absent"]
    assert absent["packages"] == [*want["packages"], "docker-ce-rootless-extras"]
    assert absent["files"] == [paths["source"], paths["key"]]
    assert absent["daemon"] == {"action": "write", "config": {"debug": True}, "needed": True}
    assert absent["data_dirs"] == []
    want["purge_data"] = True
    assert plan_of(host, want, paths, rules)["absent"]["data_dirs"] == paths["data_dirs"]


def test_absent_deletes_a_daemon_json_that_held_only_the_roles_keys(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    want["state"] = "absent"
    assert plan_of(host, want, paths, rules)["absent"]["daemon"] == {
        "action": "delete",
        "config": {},
        "needed": True,
    }


def test_absent_keeps_a_daemon_json_without_the_roles_keys_exactly_and_forgets_the_record(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    want["state"] = "absent"
    host["files"]["daemon_json"]["json"] = {"data-root": "/srv/docker"}
    daemon = plan_of(host, want, paths, rules)["absent"]["daemon"]
    # docker_daemon_config(state=absent) leaves a file holding exactly CONFIG as it is
    assert daemon == {"action": "keep", "config": {"data-root": "/srv/docker"}, "needed": True}
    host["files"]["record"] = {"exists": False}
    assert plan_of(host, want, paths, rules)["absent"]["daemon"]["needed"] is False


def test_absent_on_a_clean_host_changes_nothing(
    want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    host = {
        "os": {"distribution": "ubuntu", "codename": "jammy"},
        "architecture": "amd64",
        "packages": {},
        "files": {"daemon_json": {"exists": False}},
        "key": {"exists": False},
        "read": [],
    }
    want["state"] = "absent"
    plan = plan_of(host, want, paths, rules)
    assert (plan["problems"], plan["changes"]) == ([], False)


def test_absent_has_the_running_containers_guard(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    want["state"] = "absent"
    assert plan_of(host, want, paths, rules)["needs"][:1] == ["engine"]
    running_engine(host, "db")
    (problem,) = plan_of(host, want, paths, rules)["problems"]
    assert problem.startswith("dockerd is running 1 container(s): db. docker_state=absent removes")
    want["remove_running_engine"] = True
    plan = plan_of(host, want, paths, rules)
    assert plan["problems"] == []
    assert "container(s) stop: db." in plan["warnings"][-1]
    host["engine"] = {"containers": []}
    assert plan_of(host, want, paths, rules)["problems"] == []


def test_absent_keeps_containerd_that_another_user_has(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    want.update(state="absent", purge_data=True)
    running_engine(host)
    assert plan_of(host, want, paths, rules)["absent"]["data_dirs"] == paths["data_dirs"]
    host["containerd_users"] = ["/usr/bin/kubelet exists"]
    plan = plan_of(host, want, paths, rules)
    assert plan["absent"]["data_dirs"] == ["/var/lib/docker"]
    assert "containerd.io" not in plan["absent"]["packages"]
    assert "docker-ce" in plan["absent"]["packages"]
    assert plan["warnings"][-1] == (
        "docker_state=absent keeps containerd.io and /var/lib/containerd: another user of"
        " containerd is on this host (/usr/bin/kubelet exists)."
    )
    assert "warnings" not in plan["absent"]


def test_prerequisites_refresh_apt_lists_unless_each_has_a_candidate(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    del host["packages"]["ca-certificates"]
    plan = plan_of(host, want, paths, rules)
    assert plan["prerequisites"]["missing"] == ["ca-certificates"]
    assert "prerequisite_candidates" in plan["needs"]
    host["prerequisite_candidates"] = {"ca-certificates": False}
    host["read"].append("prerequisite_candidates")
    plan = plan_of(host, want, paths, rules)
    assert (plan["prerequisites"]["cache_valid_time"], plan["needs"]) == (0, ["dpkg_audit"])
    host["prerequisite_candidates"] = {"ca-certificates": True}
    assert plan_of(host, want, paths, rules)["prerequisites"]["cache_valid_time"] == 3600

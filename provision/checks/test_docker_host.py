"""The host checks of a Docker Engine host converged by the ``docker`` role.

One set of checks, run by molecule's verifier, by ``provision verify`` and by the end-to-end
tests (pytest-testinfra: ``--hosts=ansible://all --ansible-inventory=INV`` or
``--hosts=ssh://...``). Expectations: see expectations.py. The checks need no root: they connect as
an ordinary user and use sudo only to switch to another user of ``docker_users``.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
from typing import TYPE_CHECKING

import pytest

from .expectations import CONFLICTING_PACKAGES, DOCKER_KEY_FINGERPRINT, Expectations

if TYPE_CHECKING:
    from testinfra.host import Host

SOURCES_DIR = "/etc/apt/sources.list.d"
# The role's record of whom it put in the docker group on its last run (docker_users resolved).
USERS_RECORD = "/etc/ansible/facts.d/docker_users.fact"
KEY_PATH = "/etc/apt/keyrings/docker.asc"
APT_KEY_KEYRING = "/etc/apt/trusted.gpg"
LEGACY_KEYS = (
    "/usr/share/keyrings/docker-archive-keyring.gpg",
    "/etc/apt/keyrings/docker.gpg",
)
# A source line that points at Docker's repository or a mirror in its layout (.../linux/ubuntu).
DOCKER_SOURCE_LINE = re.compile(
    r"^\s*(deb(-src)?\s|URIs:).*(download\.docker\.com|/linux/(ubuntu|debian)/?(\s|$))",
    re.MULTILINE,
)
# gpg with a throw-away home directory: reading keys must not create ~/.gnupg on the host.
GPG_SCRIPT = (
    "home=$(mktemp -d) || exit 1; "
    'gpg --homedir "$home" --batch --quiet --with-colons "$@"; '
    'rc=$?; rm -rf "$home"; exit $rc'
)


@functools.cache
def role_paths() -> dict[str, str]:
    """Where the role keeps daemon.json and its record of the keys it owns there (its
    vars/main.yml: the one definition of what daemon.json must hold is that record)."""
    from provision.paths import data_paths
    from provision.role_options import ROLE_NAME, load_ansible_yaml

    paths = load_ansible_yaml(data_paths().role(ROLE_NAME) / "vars" / "main.yml")["docker__paths"]
    return {"daemon_json": str(paths["daemon_json"]), "record": str(paths["record"])}


def primary_fingerprints(colons: str) -> list[str]:
    """Primary-key fingerprints from ``gpg --with-colons`` output."""
    found: list[str] = []
    previous = ""
    for line in colons.splitlines():
        fields = line.split(":")
        if fields[0] == "fpr" and previous == "pub":
            found.append(fields[9])
        previous = fields[0]
    return found


def gpg_fingerprints(host: Host, *gpg_args: str) -> list[str]:
    """Primary-key fingerprints of the keys ``gpg GPG_ARGS`` lists on the host."""
    command = shlex.join(["sh", "-c", GPG_SCRIPT, "gpg", *gpg_args])
    return primary_fingerprints(host.check_output(command))


def resolve_users(host: Host, docker_user: str | None) -> list[str]:
    """The users to check: the given one, or whom the role resolved docker_users to on its last
    run (its record on the host: the one resolver of the default), or, on a host the role did
    not record, the user the checks connect as."""
    if docker_user is not None:
        return [docker_user]
    record = host.file(USERS_RECORD)
    if record.exists:
        users = [str(u) for u in json.loads(record.content_string).get("users") or []]
        if not users:
            pytest.skip(f"{USERS_RECORD}: the role's last run put nobody in the docker group")
        return users
    name = str(host.user().name)
    if name == "root":
        pytest.skip("connected as root and no users expected: no docker user to check")
    return [name]


def test_package_installed(host: Host, package: str) -> None:
    assert host.package(package).is_installed, f"{package} is not installed"


def test_no_conflicting_packages(host: Host) -> None:
    installed = [name for name in CONFLICTING_PACKAGES if host.package(name).is_installed]
    assert installed == []


@pytest.mark.parametrize("service", ["docker", "containerd"])
def test_service_enabled_and_running(host: Host, service: str) -> None:
    unit = host.service(service)
    assert unit.is_enabled, f"{service} is not enabled"
    assert unit.is_running, f"{service} is not running"


def test_docker_socket(host: Host) -> None:
    assert host.file("/var/run/docker.sock").is_socket


def test_exactly_one_docker_source(host: Host) -> None:
    names = host.check_output(
        # symlinks too: apt reads a linked source file like any other
        f"find {SOURCES_DIR} -mindepth 1 -maxdepth 1 -xtype f -printf '%f\\n'"
    ).split()
    docker_files = sorted(
        name
        for name in names
        if "docker" in name
        or DOCKER_SOURCE_LINE.search(host.file(f"{SOURCES_DIR}/{name}").content_string)
    )
    assert docker_files == ["docker.sources"]
    main_list = host.file("/etc/apt/sources.list")
    if main_list.exists:
        assert not DOCKER_SOURCE_LINE.search(main_list.content_string)


def test_no_legacy_keys(host: Host, expect: Expectations) -> None:
    legacy = [path for path in LEGACY_KEYS if host.file(path).exists]
    legacy += host.check_output(
        "find /etc/apt/trusted.gpg.d -maxdepth 1 -name '*docker*' 2>/dev/null || true"
    ).split()
    assert legacy == []
    if host.file(APT_KEY_KEYRING).exists:
        in_keyring = gpg_fingerprints(
            host, "--no-default-keyring", "--keyring", APT_KEY_KEYRING, "--list-keys"
        )
        docker_keys = {expect.key_fingerprint, DOCKER_KEY_FINGERPRINT}
        assert docker_keys.isdisjoint(in_keyring), f"Docker's key is still in {APT_KEY_KEYRING}"


def test_key_fingerprint(host: Host, expect: Expectations) -> None:
    key = host.file(KEY_PATH)
    assert key.is_file
    assert key.user == "root"
    assert key.mode == 0o644
    assert gpg_fingerprints(host, "--show-keys", KEY_PATH) == [expect.key_fingerprint]


def test_daemon_json(host: Host, expect: Expectations) -> None:
    paths = role_paths()
    config = json.loads(host.file(paths["daemon_json"]).content_string)
    assert isinstance(config, dict)
    # The role records the keys it owns (its options, mirrors, ...): all must be there.
    record = json.loads(host.file(paths["record"]).content_string)
    owned = record.get("daemon_keys") if isinstance(record, dict) else None
    assert isinstance(owned, list), f"{paths['record']} holds no list of daemon_keys"
    missing = [key for key in owned if key not in config]
    assert missing == [], f"{paths['daemon_json']} lacks keys the role owns"
    # And the values the run asked for, where the caller said which.
    mismatched = {
        key: config.get(key, "<missing>")
        for key, value in expect.daemon_options.items()
        if config.get(key) != value
    }
    assert mismatched == {}, f"daemon.json differs from {expect.daemon_options}"


def test_user_in_docker_group(host: Host, docker_user: str | None) -> None:
    assert host.group("docker").exists
    for user in resolve_users(host, docker_user):
        assert host.user(user).exists, f"user {user} does not exist"
        # Exact names from `id -nG`, not a substring of the line.
        assert "docker" in host.user(user).groups, f"{user} is not in the docker group"


def test_hello_world_as_user(host: Host, docker_user: str | None) -> None:
    command = "docker run --rm hello-world"
    for user in resolve_users(host, docker_user):
        if user == host.user().name:
            result = host.run(command)
        else:
            # sudo only switches to that user; docker itself runs with the user's own rights.
            with host.sudo(user):
                result = host.run(command)
        assert result.rc == 0, f"{command} as {user}: {result.stderr}"
        assert "Hello from Docker!" in result.stdout

"""Legacy Docker sources and keys (docker_plan.legacy_step over docker_apt_sources): Docker's
entries leave, every other repository stays, and a URL is matched whole."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.provision.hosts.plugins.module_utils import docker_plan
from ansible_collections.provision.hosts.plugins.module_utils.docker_apt_sources import (
    is_docker_uri,
    read_entries,
)
from ansible_collections.provision.hosts.tests.unit.plugins.docker_role import REPOSITORY, TEST_KEY

OTHER = "deb [trusted=yes] file:/srv/extra-repo ./\n"
DOCKER_LINE = (
    f"deb [arch=amd64 signed-by=/usr/share/keyrings/docker.gpg] {REPOSITORY} focal stable\n"
)
OTHER_STANZA = (
    "Types: deb\nURIs: http://archive.ubuntu.com/ubuntu\nSuites: focal-backports\n"
    "Components: main\n"
)
DOCKER_STANZA = (
    f"Types: deb\nURIs: {REPOSITORY}\nSuites: focal\nComponents: stable\n"
    "Signed-By: /etc/apt/keyrings/docker.gpg\n"
)


def legacy(
    host: dict[str, Any],
    paths: dict[str, Any],
    rules: dict[str, Any],
    files: dict[str, str],
    want: dict[str, Any],
) -> tuple[dict[str, Any], list[str]]:
    host["sources"] = {p: {"content": c, "mode": "0644"} for p, c in files.items()}
    plan = docker_plan.make_plan(host, want, paths, rules)
    return plan["legacy"], plan["problems"]


@pytest.mark.parametrize(
    ("uri", "docker"),
    [
        ("https://download.docker.com/linux/ubuntu", True),
        ("https://download.docker.com/linux/debian/", True),
        ("http://download.docker.com/linux/raspbian", True),
        (REPOSITORY, True),
        (REPOSITORY + "/", True),
        # merely starting with the configured URL, or Docker's host with another path
        (REPOSITORY + "-other", False),
        (REPOSITORY.replace(":38581", ":385810"), False),
        ("https://download.docker.com/linux/ubuntu/extra", False),
        ("https://download.docker.com.evil.example/linux/ubuntu", False),
        ("http://archive.ubuntu.com/ubuntu", False),
    ],
)
def test_a_uri_is_dockers_only_when_it_is_the_whole_url(uri: str, docker: bool) -> None:
    assert is_docker_uri(uri, REPOSITORY) is docker


def test_one_line_entries_keep_options_comments_and_other_lines() -> None:
    text = "# my sources\n" + DOCKER_LINE + "deb-src " + REPOSITORY + " focal stable\n" + OTHER
    text += "# deb https://download.docker.com/linux/ubuntu focal stable\n"
    entries = read_entries("mixed.list", text, REPOSITORY)
    assert (entries.docker, entries.other) == (2, 1)
    assert entries.without_docker == (
        "# my sources\n" + OTHER + "# deb https://download.docker.com/linux/ubuntu focal stable\n"
    )


def test_deb822_stanzas_are_removed_whole_and_mixed_uris_keep_the_others() -> None:
    mixed = (
        f"Types: deb\nURIs: {REPOSITORY}\n  http://mirror.example/ubuntu\nSuites: focal\n"
        "Components: stable\n"
    )
    text = "# two repositories\n" + DOCKER_STANZA + "\n" + OTHER_STANZA + "\n" + mixed
    entries = read_entries("extra.sources", text, REPOSITORY)
    assert (entries.docker, entries.other) == (2, 2)
    assert entries.without_docker == (
        "# two repositories\n" + OTHER_STANZA + "\n"
        "Types: deb\nURIs: http://mirror.example/ubuntu\nSuites: focal\nComponents: stable\n"
    )


def test_a_last_docker_stanza_takes_its_separator_with_it() -> None:
    entries = read_entries("x.sources", OTHER_STANZA + "\n" + DOCKER_STANZA, REPOSITORY)
    assert entries.without_docker == OTHER_STANZA


def test_files_with_only_dockers_entries_go_and_mixed_files_are_rewritten(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    files = {
        "/etc/apt/sources.list.d/docker.list": DOCKER_LINE,
        "/etc/apt/sources.list.d/docker.list.distUpgrade": DOCKER_LINE,
        "/etc/apt/sources.list.d/download_docker_com_linux_ubuntu.list": "# disabled\n",
        "/etc/apt/sources.list.d/mixed.list": DOCKER_LINE + OTHER,
        "/etc/apt/sources.list.d/extra.sources": DOCKER_STANZA + "\n" + OTHER_STANZA,
        "/etc/apt/sources.list.d/lookalike.list": f"deb {REPOSITORY}-other focal stable\n",
        "/etc/apt/sources.list": "deb http://archive.ubuntu.com/ubuntu focal main\n" + DOCKER_LINE,
    }
    found, problems = legacy(host, paths, rules, files, want)
    assert problems == []
    assert found["delete"] == [
        "/etc/apt/sources.list.d/docker.list",
        "/etc/apt/sources.list.d/docker.list.distUpgrade",
        "/etc/apt/sources.list.d/download_docker_com_linux_ubuntu.list",
    ]
    assert found["rewrite"] == {
        "/etc/apt/sources.list": written(
            "/etc/apt/sources.list", "deb http://archive.ubuntu.com/ubuntu focal main\n"
        ),
        "/etc/apt/sources.list.d/extra.sources": written(
            "/etc/apt/sources.list.d/extra.sources", OTHER_STANZA
        ),
        "/etc/apt/sources.list.d/mixed.list": written("/etc/apt/sources.list.d/mixed.list", OTHER),
    }


def written(dest: str, content: str, mode: str = "0644") -> Any:
    return {"content": content, "dest": dest, "mode": mode}


MIXED = "/etc/apt/sources.list.d/mixed.list"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # a foreign file keeps its mode only without group/world write (and set-id bits)
        ({"mode": "0640"}, written(MIXED, OTHER, "0640")),
        ({"mode": "0666"}, written(MIXED, OTHER, "0644")),
        ({"mode": "4775"}, written(MIXED, OTHER, "0755")),
        # a symlink (lstat says 0777): edited at a root-owned target under /etc/apt ...
        (
            {"mode": "0644", "link": True, "target": "/etc/apt/mine.list", "target_ok": True},
            written("/etc/apt/mine.list", OTHER),
        ),
        # ... else replaced by a root:root 0644 file of its own
        (
            {"mode": "0666", "link": True, "target": "/tmp/any.list", "target_ok": False},
            written(MIXED, OTHER, "0644"),
        ),
    ],
)
def test_a_rewritten_source_is_never_wider_than_it_may_be(
    host: dict[str, Any],
    want: dict[str, Any],
    paths: dict[str, Any],
    rules: dict[str, Any],
    source: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    host["sources"] = {MIXED: {"content": DOCKER_LINE + OTHER, **source}}
    plan = docker_plan.make_plan(host, want, paths, rules)
    assert plan["legacy"]["rewrite"] == {MIXED: expected}


def test_the_roles_own_source_is_not_legacy_but_a_foreign_one_is(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    found, _problems = legacy(host, paths, rules, {}, want)
    assert found["needed"] is False
    found, problems = legacy(host, paths, rules, {paths["source"]: DOCKER_STANZA}, want)
    assert (found["delete"], problems) == ([paths["source"]], [])


def test_a_foreign_docker_sources_with_other_repositories_stops_the_run(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    files = {paths["source"]: DOCKER_STANZA + "\n" + OTHER_STANZA}
    found, (problem,) = legacy(host, paths, rules, files, want)
    assert "docker.sources was not written by this role and holds other repositories" in problem
    assert found["rewrite"] == {}


def test_legacy_keys_and_dockers_keys_in_the_apt_key_keyring(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    official = rules["official_key_fingerprint"]
    host["legacy_keys"] = ["/etc/apt/trusted.gpg.d/docker.gpg", "/etc/apt/keyrings/docker.gpg"]
    host["apt_key_fingerprints"] = [official, TEST_KEY, "A" * 40]
    found, _problems = legacy(host, paths, rules, {}, want)
    assert found["delete"] == ["/etc/apt/keyrings/docker.gpg", "/etc/apt/trusted.gpg.d/docker.gpg"]
    assert found["apt_key_fingerprints"] == sorted([official, TEST_KEY])
    plan = docker_plan.make_plan(host, want, paths, rules)
    # apt must read its lists again after legacy sources went
    assert plan["packages"]["refresh_cache"] is True


MIRROR = "http://mirror.internal/ubuntu"  # one URL serving the distribution and Docker


def test_a_shared_mirror_keeps_the_distributions_entries() -> None:
    """With docker_apt_repository_url a mirror that also serves the distribution, an entry is
    Docker's only with Docker's channels as components."""
    text = (
        f"deb {MIRROR} focal main universe\n"
        f"deb {MIRROR} focal-updates main\n"
        f"deb [arch=amd64] {MIRROR} focal stable\n"
    )
    entries = read_entries("mirror.list", text, MIRROR)
    assert (entries.docker, entries.other) == (1, 2)
    assert entries.without_docker == (
        f"deb {MIRROR} focal main universe\ndeb {MIRROR} focal-updates main\n"
    )
    stanzas = (
        f"Types: deb\nURIs: {MIRROR}\nSuites: focal focal-updates\nComponents: main\n\n"
        f"Types: deb\nURIs: {MIRROR}\nSuites: focal\nComponents:\n stable\n"
    )
    entries = read_entries("mirror.sources", stanzas, MIRROR)
    assert (entries.docker, entries.other) == (1, 1)
    assert entries.without_docker == (
        f"Types: deb\nURIs: {MIRROR}\nSuites: focal focal-updates\nComponents: main\n"
    )
    # Docker's own URI is Docker's whatever the component
    official = "deb https://download.docker.com/linux/ubuntu focal main\n"
    assert read_entries("x.list", official, MIRROR).docker == 1


def test_a_shared_mirrors_key_stays_trusted_for_the_distribution(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    """The configured key in trusted.gpg leaves only when no entry that stays is served from the
    same URL: a mirror's key signs the distribution's suites it serves too. Docker's own key
    always leaves."""
    official = rules["official_key_fingerprint"]
    host["apt_key_fingerprints"] = [official, TEST_KEY]
    want["repository_url"] = MIRROR
    shared = {"/etc/apt/sources.list": f"deb {MIRROR} focal main\ndeb {MIRROR} focal stable\n"}
    found, _problems = legacy(host, paths, rules, shared, want)
    assert found["apt_key_fingerprints"] == [official]
    assert found["rewrite"]["/etc/apt/sources.list"]["content"] == f"deb {MIRROR} focal main\n"
    alone = {"/etc/apt/sources.list.d/old.list": f"deb {MIRROR} focal stable\n"}
    found, _problems = legacy(host, paths, rules, alone, want)
    assert found["apt_key_fingerprints"] == sorted([official, TEST_KEY])

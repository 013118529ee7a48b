"""docker_host_facts' readings on real files: the key read as strictly as a download, the apt
source files worth planning on, dpkg's pending journal, legacy key files."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.provision.hosts.plugins.modules import docker_host_facts
from ansible_collections.provision.hosts.tests.unit.plugins import gpg_keys
from ansible_collections.provision.hosts.tests.unit.plugins.docker_role import VARS

DATA = Path(__file__).resolve().parents[1] / "module_utils" / "data"
REPOSITORY = "http://10.213.7.1:38581/linux/ubuntu"


@pytest.fixture
def apt(tmp_path: Path) -> dict[str, Any]:
    """The role's paths, with apt's directories under TMP_PATH."""
    paths: dict[str, Any] = copy.deepcopy(VARS["docker__paths"])
    for name in ("sources_dir", "trusted_dir"):
        (tmp_path / name).mkdir()
        paths[name] = str(tmp_path / name)
    paths["main_list"] = str(tmp_path / "sources.list")
    paths["source"] = str(tmp_path / "sources_dir" / "docker.sources")
    return paths


@pytest.mark.parametrize(
    ("content", "fingerprint", "problem"),
    [
        ((DATA / "test-key.asc").read_bytes(), "93438B4689AB4A1AB710DB6C3A11C6C5A91AECE4", None),
        (
            (DATA / "test-key.asc").read_bytes() + (DATA / "second-key.asc").read_bytes(),
            None,
            "holds 2 armored blocks, not one",
        ),
        ((DATA / "test-key.gpg").read_bytes(), None, "is binary OpenPGP data"),
    ],
)
def test_the_installed_key_is_read_strictly(
    tmp_path: Path, content: bytes, fingerprint: str | None, problem: str | None
) -> None:
    path = tmp_path / "docker.asc"
    path.write_bytes(content)
    path.chmod(0o640)
    found = docker_host_facts.key_file(str(path))
    assert found["mode"] == "0640"
    assert found.get("fingerprint") == fingerprint
    assert (found.get("problem") or "").startswith(problem or "")
    assert docker_host_facts.key_file(str(tmp_path / "missing.asc")) == {
        "exists": False,
        "path": str(tmp_path / "missing.asc"),
    }


def test_only_source_files_that_may_hold_dockers_entries_are_read(
    tmp_path: Path, apt: dict[str, Any]
) -> None:
    sources = Path(apt["sources_dir"])
    (sources / "ubuntu.sources").write_text("URIs: http://archive.ubuntu.com/ubuntu\n")
    (sources / "mixed.list").write_text(f"deb {REPOSITORY} focal stable\ndeb file:/srv/x ./\n")
    (sources / "docker.list.save").write_text("")
    (sources / "docker.sources").write_text("# Written by the Ansible role docker\n")
    (sources / "mixed.list").chmod(0o600)
    Path(apt["main_list"]).write_text("deb https://download.docker.com/linux/ubuntu focal stable\n")
    found = docker_host_facts.sources(apt, VARS["docker__rules"], REPOSITORY)
    assert sorted(found) == sorted(
        [
            str(sources / "mixed.list"),
            str(sources / "docker.list.save"),
            str(sources / "docker.sources"),
            apt["main_list"],
        ]
    )
    assert found[str(sources / "mixed.list")]["mode"] == "0600"


def test_legacy_key_files_are_found_by_name(tmp_path: Path, apt: dict[str, Any]) -> None:
    trusted = Path(apt["trusted_dir"])
    for name in ("docker.gpg", "docker-ce.asc", "ubuntu-keyring-2018-archive.gpg"):
        (trusted / name).write_bytes(b"")
    rules = {**VARS["docker__rules"], "legacy_key_paths": [str(tmp_path / "docker-archive.gpg")]}
    (tmp_path / "docker-archive.gpg").write_bytes(b"")
    assert docker_host_facts.legacy_keys(apt, rules) == [
        str(trusted / "docker-ce.asc"),
        str(trusted / "docker.gpg"),
        str(tmp_path / "docker-archive.gpg"),
    ]


def test_a_pending_dpkg_journal_is_seen(tmp_path: Path) -> None:
    assert docker_host_facts.dpkg_journal(str(tmp_path)) == []
    (tmp_path / "0000").write_text("")
    (tmp_path / "tmp.i").write_text("")
    assert docker_host_facts.dpkg_journal(str(tmp_path)) == ["0000"]
    assert docker_host_facts.dpkg_journal(str(tmp_path / "missing")) == []


def test_json_files_are_parsed_or_their_error_named(tmp_path: Path) -> None:
    good, bad = tmp_path / "daemon.json", tmp_path / "broken.json"
    good.write_text('{"debug": true}')
    bad.write_text("{debug}")
    assert docker_host_facts.text_file(str(good))["json"] == {"debug": True}
    assert "Expecting property name" in docker_host_facts.text_file(str(bad))["json_error"]


def test_an_installed_key_with_another_keys_secret_packets_is_not_in_place(
    tmp_path: Path,
) -> None:
    keys = gpg_keys.made_keys()
    path = tmp_path / "docker.asc"
    path.write_bytes(keys.pinned_asc)
    assert docker_host_facts.key_file(str(path))["fingerprint"] == keys.pinned
    path.write_bytes(gpg_keys.with_impostors_secret_key(keys))
    found = docker_host_facts.key_file(str(path))
    assert "fingerprint" not in found
    assert found["problem"] == (
        "holds a secret-key packet (tag 5) as packet 4 of 8 besides the public key"
        f" {keys.pinned}: refused"
    )


class _Masking:
    def __init__(self, *secrets: str) -> None:
        self.no_log_values = set(secrets)


def test_a_secret_that_occurs_outside_its_url_stops_the_run() -> None:
    """Ansible would mask "docker" in every path of the plan: the module stops instead."""
    plan = {"daemon": {"config": {"proxies": {"http-proxy": "http://u:docker@proxy:3128"}}}}
    result = {"plan": {**plan, "paths": ["/etc/docker/daemon.json"]}}
    assert "longer, unique password" in docker_host_facts.masking_clash(_Masking("docker"), result)
    # inside its URL alone, it is masked there and nothing else changes
    assert docker_host_facts.masking_clash(_Masking("docker"), {"plan": plan}) == ""
    assert docker_host_facts.masking_clash(_Masking("pa55-unique"), result) == ""

"""The docker role's pure-Python pieces: the OpenPGP fingerprint reader its modules verify the
key with (against keys made and read by gpg, tests/unit/data) and its Jinja tests."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
DATA = Path(__file__).parent / "data"
sys.path[:0] = [str(PLUGINS / "module_utils"), str(PLUGINS / "test")]

import docker_openpgp  # noqa: E402
import docker_tests  # noqa: E402

TEST_KEY = "93438B4689AB4A1AB710DB6C3A11C6C5A91AECE4"
SECOND_KEY = "1F7DB1A6C4ED070DABC01477C596657E594A77F9"


def test_armored_key_gives_gpgs_fingerprint() -> None:
    assert docker_openpgp.primary_fingerprints((DATA / "test-key.asc").read_bytes()) == [TEST_KEY]


def test_armor_headers_and_surrounding_text_are_ignored() -> None:
    armored = (DATA / "test-key.asc").read_bytes()
    with_header = armored.replace(
        b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n",
        b"-----BEGIN PGP PUBLIC KEY BLOCK-----\nComment: a mirror's note\n",
    )
    assert docker_openpgp.primary_fingerprints(b"junk before\n" + with_header) == [TEST_KEY]


def test_binary_keyring_gives_every_primary_key() -> None:
    found = docker_openpgp.primary_fingerprints((DATA / "two-keys.gpg").read_bytes())
    assert found == [TEST_KEY, SECOND_KEY]


def test_old_format_packet_headers_are_read() -> None:
    binary = docker_openpgp.dearmor((DATA / "test-key.asc").read_bytes())
    tag, body = next(docker_openpgp.packets(binary))
    assert tag == docker_openpgp.PUBLIC_KEY_TAG
    # Old format, tag 6, two-octet length: 0b10_0110_01.
    old = bytes([0x80 | (6 << 2) | 1]) + len(body).to_bytes(2, "big") + body
    assert docker_openpgp.primary_fingerprints(old) == [TEST_KEY]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "no public key"),
        (b"not a key at all", "not an OpenPGP packet"),
        (b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDME\n", "no END line"),
        (
            b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n%%%%\n-----END PGP PUBLIC KEY BLOCK-----",
            "base64",
        ),
    ],
)
def test_what_is_not_a_key_is_refused(data: bytes, problem: str) -> None:
    with pytest.raises(docker_openpgp.OpenPGPError, match=problem):
        docker_openpgp.primary_fingerprints(data)


def test_truncated_key_is_refused() -> None:
    binary = (DATA / "two-keys.gpg").read_bytes()
    with pytest.raises(docker_openpgp.OpenPGPError, match="truncated"):
        docker_openpgp.primary_fingerprints(binary[:40])


FILE: dict[str, Any] = {"exists": True, "is_dir": False, "mode": "0644", "uid": 0, "gid": 0}


@pytest.mark.parametrize(
    ("state", "content", "expected"),
    [
        ({**FILE, "content": "x"}, "x", True),
        ({**FILE, "content": "x"}, None, True),
        ({**FILE, "content": "x"}, "y", False),
        ({**FILE, "content": "x", "mode": "0600"}, "x", False),
        ({**FILE, "content": "x", "uid": 1000}, "x", False),
        ({**FILE, "is_dir": True}, None, False),
        ({"exists": False}, "x", False),
        ({}, None, False),
    ],
)
def test_file_in_place(state: dict[str, Any], content: str | None, expected: bool) -> None:
    assert docker_tests.docker_file_in_place(state, "0644", content) is expected


def test_dir_in_place() -> None:
    directory = {**FILE, "is_dir": True, "mode": "0755"}
    assert docker_tests.docker_dir_in_place(directory, "0755")
    assert not docker_tests.docker_dir_in_place({**directory, "mode": "0700"}, "0755")
    assert not docker_tests.docker_dir_in_place(FILE, "0644")


def test_at_version_takes_apt_globs() -> None:
    packages = {"docker-ce": {"status": "installed", "version": "5:27.1.1-1~ubuntu.20.04~focal"}}
    assert docker_tests.docker_at_version("docker-ce", packages, "5:27.1.1-1~ubuntu.20.04~focal")
    assert docker_tests.docker_at_version("docker-ce", packages, "5:27.*")
    assert not docker_tests.docker_at_version("docker-ce", packages, "5:26.*")
    assert not docker_tests.docker_at_version("docker-ce-cli", packages, "5:27.*")


def test_held_and_unit_state() -> None:
    assert docker_tests.docker_held("docker-ce", {"docker-ce": {"want": "hold"}})
    assert not docker_tests.docker_held("docker-ce", {"docker-ce": {"want": "install"}})
    units = {"docker": {"enabled": "enabled", "active": "active"}}
    assert docker_tests.docker_unit_in_state("docker", units, True, "started")
    assert not docker_tests.docker_unit_in_state("docker", units, False, "started")
    assert not docker_tests.docker_unit_in_state("docker", units, True, "stopped")
    assert not docker_tests.docker_unit_in_state("containerd", units, True, "started")

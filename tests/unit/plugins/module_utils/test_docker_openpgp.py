"""The OpenPGP reader the role's modules verify Docker's key with, against keys made and read by
gpg (data/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.provision.hosts.plugins.module_utils import docker_openpgp

DATA = Path(__file__).parent / "data"

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

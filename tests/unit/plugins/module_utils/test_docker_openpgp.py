"""The OpenPGP reader the role verifies Docker's key with, against keys made and read by gpg
(data/README.md): the strict reader that decides what apt may trust (exactly one armored block,
exactly one primary key, that fingerprint, nothing else) and the lenient one for keyrings."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from ansible_collections.provision.hosts.plugins.module_utils import docker_openpgp

DATA = Path(__file__).parent / "data"

TEST_KEY = "93438B4689AB4A1AB710DB6C3A11C6C5A91AECE4"
SECOND_KEY = "1F7DB1A6C4ED070DABC01477C596657E594A77F9"
SUBKEY_KEY = "2A2D20DCAD5EA3452D972F27897F0A8764FEB2BA"  # primary key; its signing subkey differs


def data(name: str) -> bytes:
    return (DATA / name).read_bytes()


# --- the strict reader: what may be installed ----------------------------------------------


@pytest.mark.parametrize(
    ("name", "fingerprint"),
    [("test-key.asc", TEST_KEY), ("second-key.asc", SECOND_KEY), ("with-subkey.asc", SUBKEY_KEY)],
)
def test_one_armored_key_gives_gpgs_fingerprint(name: str, fingerprint: str) -> None:
    assert docker_openpgp.key_fingerprint(data(name)) == fingerprint


@pytest.mark.parametrize("name", ["test-key.asc", "with-subkey.asc"])
def test_the_verified_key_is_rearmored_exactly_as_gpg_armors_it(name: str) -> None:
    key = data(name)
    assert docker_openpgp.verified_key(key, docker_openpgp.key_fingerprint(key)) == key


def test_only_the_checked_packets_are_written() -> None:
    """Armor headers and surrounding whitespace are not part of what is installed."""
    with_header = data("test-key.asc").replace(
        b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n",
        b"\n\n-----BEGIN PGP PUBLIC KEY BLOCK-----\nComment: a mirror's note\nVersion: 1\n",
    )
    assert docker_openpgp.verified_key(with_header + b"\n\n", TEST_KEY) == data("test-key.asc")


@pytest.mark.parametrize(
    ("key", "found"),
    [
        # Docker's key with a second key appended, as a second armored block
        (data("test-key.asc") + data("second-key.asc"), "holds 2 armored blocks, not one"),
        # ... or inside the same block (gpg --export --armor A B)
        (data("two-keys.asc"), f"holds 2 primary keys ({TEST_KEY}, {SECOND_KEY})"),
        # a dearmored key at the .asc path (gpg --export): apt cannot read it there
        (data("test-key.gpg"), "is binary OpenPGP data, not an ASCII-armored key"),
        (data("test-key.asc") + b"trailing words\n", "has data after the END line"),
        (b"# Docker's key\n" + data("test-key.asc"), "has data before its armored block"),
        (data("second-key.asc"), f"holds the key {SECOND_KEY}, not {TEST_KEY}"),
        (b"<html>404 Not Found</html>\n", "holds no ASCII-armored OpenPGP block"),
        (b"", "holds no ASCII-armored OpenPGP block"),
        (
            data("test-key.asc").replace(b"PUBLIC KEY BLOCK", b"PRIVATE KEY BLOCK"),
            "holds a PGP PRIVATE KEY BLOCK, not a PGP PUBLIC KEY BLOCK",
        ),
        (
            data("test-key.asc").replace(b"-----END PGP PUBLIC KEY BLOCK-----\n", b""),
            "has no END line",
        ),
    ],
)
def test_anything_but_exactly_the_pinned_key_is_refused(key: bytes, found: str) -> None:
    with pytest.raises(
        docker_openpgp.OpenPGPError, match=found.replace("(", r"\(").replace(")", r"\)")
    ):
        docker_openpgp.verified_key(key, TEST_KEY)


def test_a_changed_byte_fails_the_armor_checksum() -> None:
    lines = data("test-key.asc").splitlines(keepends=True)
    body = next(i for i, line in enumerate(lines) if line.startswith(b"mDME"))
    lines[body] = b"mDMF" + lines[body][4:]
    with pytest.raises(docker_openpgp.OpenPGPError, match="fails its armor checksum"):
        docker_openpgp.key_fingerprint(b"".join(lines))


def test_a_block_that_does_not_start_with_a_key_is_refused() -> None:
    binary = base64.b64decode(b"".join(line for line in data("test-key.asc").splitlines()[2:-2]))
    first_length = binary[1] + 2
    user_id_first = docker_openpgp.armor(binary[first_length:])
    with pytest.raises(docker_openpgp.OpenPGPError, match="does not start with a public-key"):
        docker_openpgp.key_fingerprint(user_id_first)


def test_garbage_inside_the_block_is_refused() -> None:
    binary = base64.b64decode(b"".join(data("test-key.asc").splitlines()[2:-2]))
    with pytest.raises(docker_openpgp.OpenPGPError, match="not an OpenPGP packet"):
        docker_openpgp.key_fingerprint(docker_openpgp.armor(binary + b"\x00junk"))


def test_a_truncated_key_is_refused() -> None:
    binary = base64.b64decode(b"".join(data("test-key.asc").splitlines()[2:-2]))
    with pytest.raises(docker_openpgp.OpenPGPError, match="truncated"):
        docker_openpgp.key_fingerprint(docker_openpgp.armor(binary[:40]))


def test_crc24_matches_gpgs_checksum_line() -> None:
    lines = data("test-key.asc").splitlines()
    binary = base64.b64decode(b"".join(lines[2:-2]))
    assert base64.b64encode(docker_openpgp.crc24(binary).to_bytes(3, "big")) == lines[-2][1:]


# --- the lenient reader: keyrings ------------------------------------------------------------


def test_a_binary_keyring_gives_every_primary_key() -> None:
    found = docker_openpgp.primary_fingerprints(data("two-keys.gpg"))
    assert found == [TEST_KEY, SECOND_KEY]


def test_an_armored_keyring_gives_every_primary_key() -> None:
    assert docker_openpgp.primary_fingerprints(data("two-keys.asc")) == [TEST_KEY, SECOND_KEY]


def test_old_format_packet_headers_are_read() -> None:
    binary = base64.b64decode(b"".join(data("test-key.asc").splitlines()[2:-2]))
    tag, body = next(docker_openpgp.packets(binary))
    assert tag == docker_openpgp.PUBLIC_KEY_TAG
    # Old format, tag 6, two-octet length: 0b10_0110_01.
    old = bytes([0x80 | (6 << 2) | 1]) + len(body).to_bytes(2, "big") + body
    assert docker_openpgp.primary_fingerprints(old) == [TEST_KEY]


@pytest.mark.parametrize(
    ("keyring", "problem"),
    [
        (b"", "holds no public key"),
        (b"not a key at all", "not an OpenPGP packet"),
    ],
)
def test_what_is_not_a_keyring_is_refused(keyring: bytes, problem: str) -> None:
    with pytest.raises(docker_openpgp.OpenPGPError, match=problem):
        docker_openpgp.primary_fingerprints(keyring)


def test_a_truncated_keyring_is_refused() -> None:
    with pytest.raises(docker_openpgp.OpenPGPError, match="truncated"):
        docker_openpgp.primary_fingerprints(data("two-keys.gpg")[:40])

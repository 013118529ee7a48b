"""The OpenPGP reader the role verifies Docker's key with, against keys made and read by gpg
(data/README.md): the strict reader that decides what apt may trust (exactly one armored block,
exactly one primary key, that fingerprint, nothing else) and the lenient one for keyrings."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.provision.hosts.plugins.module_utils import docker_openpgp
from ansible_collections.provision.hosts.tests.unit.plugins import gpg_keys

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


# --- only the pinned key's public packets: keys made by gpg at test time (../gpg_keys.py) -----


@pytest.fixture(scope="module")
def keys() -> gpg_keys.Keys:
    return gpg_keys.made_keys()


def spliced(keys: gpg_keys.Keys, extra: bytes, at: int | None = None) -> bytes:
    """The pinned key's armored block with EXTRA packets inserted before its packet AT (or
    appended), re-armored with a valid checksum: what an altered mirror could serve."""
    packets = [raw for _tag, raw in gpg_keys.split(keys.pinned_gpg)]
    packets.insert(len(packets) if at is None else at, extra)
    return docker_openpgp.armor(b"".join(packets))


def only(binary: bytes, *tags: int) -> bytes:
    return b"".join(raw for tag, raw in gpg_keys.split(binary) if tag in tags)


def test_the_pinned_key_is_written_as_exactly_its_public_packets(keys: gpg_keys.Keys) -> None:
    written = docker_openpgp.verified_key(keys.pinned_asc, keys.pinned)
    assert written == keys.pinned_asc
    binary = docker_openpgp.armored_packets(written)
    assert binary == keys.pinned_gpg
    assert [tag for tag, _raw in gpg_keys.split(binary)] == [6, 13, 2]
    assert docker_openpgp.key_fingerprint(written) == keys.pinned


def test_gpgs_secret_export_holds_secret_packets(keys: gpg_keys.Keys) -> None:
    """The premise of the splices below: the impostor's export has a secret key and subkey."""
    tags = [tag for tag, _raw in gpg_keys.split(keys.impostor_secret)]
    assert tags[0] == 5
    assert 7 in tags


def secret(tag: int, where: str) -> str:
    name = "secret-key" if tag == 5 else "secret-subkey"
    return (
        f"holds a {name} packet (tag {tag}) as packet {where} besides the public key"
        " {pinned}: refused"
    )


@pytest.mark.parametrize(
    ("extra", "at", "found"),
    [
        # the impostor's whole secret export (key, user ID, signatures, subkey) appended
        (lambda k: k.impostor_secret, None, secret(5, "4 of 8")),
        # only its secret primary key, between the pinned key and its user ID
        (lambda k: only(k.impostor_secret, 5), 1, secret(5, "2 of 4")),
        # only its secret subkey and the subkey's binding signature, after the pinned packets
        (
            lambda k: b"".join(raw for _t, raw in gpg_keys.split(k.impostor_secret)[-2:]),
            None,
            secret(7, "4 of 5"),
        ),
    ],
)
def test_a_secret_key_spliced_into_the_pinned_keys_block_is_refused(
    keys: gpg_keys.Keys, extra: Any, at: int | None, found: str
) -> None:
    key = spliced(keys, extra(keys), at)
    message = found.format(pinned=keys.pinned)
    with pytest.raises(docker_openpgp.OpenPGPError) as error:
        docker_openpgp.verified_key(key, keys.pinned)
    assert str(error.value) == message
    assert "\n" not in str(error.value)
    # The same reading of the key on the host: not in place.
    with pytest.raises(docker_openpgp.OpenPGPError, match="refused"):
        docker_openpgp.key_fingerprint(key)


def test_another_public_key_in_the_pinned_keys_block_is_refused(keys: gpg_keys.Keys) -> None:
    with pytest.raises(
        docker_openpgp.OpenPGPError,
        match=rf"holds 2 primary keys \({keys.pinned}, {keys.impostor}\)",
    ):
        docker_openpgp.verified_key(spliced(keys, keys.impostor_public), keys.pinned)


@pytest.mark.parametrize(
    ("extra", "found"),
    [
        (
            b"\xa8\x03PGP",
            "holds a marker packet (tag 10) as packet 4 of 4, which is not part of a public key: "
            "refused",
        ),
        (b"\xb0\x02\x00\x00", "holds a trust packet (tag 12) as packet 4 of 4, which is not"),
        (b"\xd5\x04\x00\x00\x00\x00", "holds a padding packet (tag 21) as packet 4 of 4"),
        (b"\xcb\x05b\x00\x00hi", "holds a literal data packet (tag 11) as packet 4 of 4"),
        (b"\xfc\x01\x00", "holds an unknown packet (tag 60) as packet 4 of 4"),
        # a signature whose old-format indeterminate length swallows the bytes after it
        (
            b"\x8b\x04\x00trailing junk",
            "holds a signature packet (tag 2) with an indeterminate length as packet 4 of 4",
        ),
    ],
)
def test_trailing_packets_that_are_no_part_of_a_public_key_are_refused(
    keys: gpg_keys.Keys, extra: bytes, found: str
) -> None:
    key = spliced(keys, extra)
    with pytest.raises(docker_openpgp.OpenPGPError, match=re_escape(found)):
        docker_openpgp.verified_key(key, keys.pinned)
    with pytest.raises(docker_openpgp.OpenPGPError, match="refused"):
        docker_openpgp.key_fingerprint(key)


def test_trailing_bytes_that_are_no_packet_are_refused(keys: gpg_keys.Keys) -> None:
    key = docker_openpgp.armor(keys.pinned_gpg + b"\x00trailing junk")
    with pytest.raises(docker_openpgp.OpenPGPError, match="not an OpenPGP packet at byte"):
        docker_openpgp.verified_key(key, keys.pinned)


def test_packets_out_of_a_public_keys_order_are_refused() -> None:
    packets = gpg_keys.split(
        docker_openpgp.armored_packets(data("with-subkey.asc"))
    )  # 6, 13, 2, 14, 2
    assert [tag for tag, _raw in packets] == [6, 13, 2, 14, 2]
    raws = [raw for _tag, raw in packets]
    uid_after_subkey = docker_openpgp.armor(b"".join([raws[0], raws[3], raws[4], *raws[1:3]]))
    with pytest.raises(
        docker_openpgp.OpenPGPError,
        match=re_escape("holds a user ID packet (tag 13) as packet 4 of 5 after a subkey"),
    ):
        docker_openpgp.verified_key(uid_after_subkey, SUBKEY_KEY)
    subkey_first = docker_openpgp.armor(b"".join(raws[3:] + raws[:3]))
    with pytest.raises(
        docker_openpgp.OpenPGPError,
        match=re_escape(
            "does not start with a public-key packet "
            "(it starts with a public-subkey packet (tag 14))"
        ),
    ):
        docker_openpgp.verified_key(subkey_first, SUBKEY_KEY)


def re_escape(text: str) -> str:
    return re.escape(text)


# --- what apt's verifier makes of the written key (sqv, when installed) ---------------------


@pytest.mark.skipif(
    shutil.which("sqv") is None, reason="sqv is not installed (apt-get install sqv)"
)
def test_sqv_trusts_no_signature_of_the_impostor_through_the_written_key(
    keys: gpg_keys.Keys, tmp_path: Path
) -> None:
    message = tmp_path / "InRelease-ish"
    message.write_bytes(b"Origin: Docker\n")
    impostor_sig = tmp_path / "impostor.sig"
    impostor_sig.write_bytes(
        keys.gpg("--detach-sign", "--local-user", keys.impostor, "--output", "-", str(message))
    )
    pinned_sig = tmp_path / "pinned.sig"
    pinned_sig.write_bytes(
        keys.gpg("--detach-sign", "--local-user", keys.pinned, "--output", "-", str(message))
    )

    def sqv(keyring: bytes, signature: Path) -> int:
        path = tmp_path / "docker.asc"
        path.write_bytes(keyring)
        argv = ["sqv", "--keyring", str(path), str(signature), str(message)]
        return subprocess.run(argv, capture_output=True, check=False).returncode

    written = docker_openpgp.verified_key(keys.pinned_asc, keys.pinned)
    assert sqv(written, pinned_sig) == 0
    assert sqv(written, impostor_sig) != 0
    # The splice that is now refused is what would have let sqv accept the impostor's signature.
    attack = spliced(keys, keys.impostor_secret)
    assert sqv(attack, impostor_sig) == 0
    with pytest.raises(docker_openpgp.OpenPGPError, match="secret-key packet"):
        docker_openpgp.verified_key(attack, keys.pinned)

"""OpenPGP keys made by gpg at test time, in a temporary GNUPGHOME: the pinned key, and an
impostor whose packets are spliced into the pinned key's armored block (a secret key, a secret
subkey, a second public key). Made once per test run; gpg must be installed (apt-get install
gnupg), the tests do not skip without it."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

PINNED_UID = "Pinned <p@example.invalid>"
IMPOSTOR_UID = "Impostor <i@example.invalid>"


@dataclass(frozen=True)
class Keys:
    home: str
    pinned: str  # fingerprint, as gpg gives it
    impostor: str
    pinned_asc: bytes  # gpg --export --armor
    pinned_gpg: bytes  # gpg --export
    impostor_public: bytes  # binary
    impostor_secret: bytes  # binary: gpg --export-secret-keys (tags 5, 13, 2, 7, 2)

    def gpg(self, *argv: str, stdin: bytes | None = None) -> bytes:
        return gpg(self.home, *argv, stdin=stdin)


def gpg(home: str, *argv: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(
        ["gpg", "--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", "", *argv],
        env={**os.environ, "GNUPGHOME": home, "LC_ALL": "C"},
        input=stdin,
        capture_output=True,
        check=True,
    ).stdout


def split(binary: bytes) -> list[tuple[int, bytes]]:
    """(tag, the packet's bytes with its header) of each packet in BINARY, read independently of
    docker_openpgp (old and new format headers with definite lengths, as gpg writes them)."""
    found, offset = [], 0
    while offset < len(binary):
        header = binary[offset]
        assert header & 0x80, f"not a packet at byte {offset}"
        if header & 0x40:
            tag, first = header & 0x3F, binary[offset + 1]
            if first < 192:
                start, length = offset + 2, first
            elif first < 224:
                start, length = offset + 3, ((first - 192) << 8) + binary[offset + 2] + 192
            else:
                assert first == 255, "partial lengths"
                start, length = offset + 6, int.from_bytes(binary[offset + 2 : offset + 6], "big")
        else:
            tag, size = (header >> 2) & 0x0F, (1, 2, 4)[header & 0x03]
            start = offset + 1 + size
            length = int.from_bytes(binary[offset + 1 : start], "big")
        found.append((tag, binary[offset : start + length]))
        offset = start + length
    return found


def _fingerprint(home: str, uid: str) -> str:
    for line in gpg(home, "--with-colons", "--list-keys", uid).decode().splitlines():
        if line.startswith("fpr:"):
            return line.split(":")[9]
    raise AssertionError(f"gpg lists no fingerprint for {uid}")


@functools.cache
def made_keys() -> Keys:
    home = tempfile.mkdtemp(prefix="gnupg-")
    atexit.register(shutil.rmtree, home, True)
    atexit.register(
        subprocess.run,
        ["gpgconf", "--kill", "gpg-agent"],
        env={**os.environ, "GNUPGHOME": home},
        check=False,
        capture_output=True,
    )
    gpg(home, "--quick-gen-key", PINNED_UID, "ed25519", "sign", "never")
    gpg(home, "--quick-gen-key", IMPOSTOR_UID, "ed25519", "sign", "never")
    impostor = _fingerprint(home, IMPOSTOR_UID)
    gpg(home, "--quick-add-key", impostor, "ed25519", "sign", "never")
    pinned = _fingerprint(home, PINNED_UID)
    return Keys(
        home=home,
        pinned=pinned,
        impostor=impostor,
        pinned_asc=gpg(home, "--armor", "--export", pinned),
        pinned_gpg=gpg(home, "--export", pinned),
        impostor_public=gpg(home, "--export", impostor),
        impostor_secret=gpg(home, "--export-secret-keys", impostor),
    )


def with_impostors_secret_key(keys: Keys) -> bytes:
    """The pinned key and the impostor's secret key and subkey in one armored block with a valid
    checksum: one public primary key, the pinned fingerprint, and a signer sqv would trust."""
    from ansible_collections.provision.hosts.plugins.module_utils.docker_openpgp import armor

    return armor(keys.pinned_gpg + keys.impostor_secret)

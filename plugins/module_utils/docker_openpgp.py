# Primary-key fingerprints of OpenPGP public keys (RFC 4880), in pure Python: the role verifies
# Docker's key without gnupg on the host. Reads an ASCII-armored block or binary packets (an
# exported key, or an apt-key keyring such as /etc/apt/trusted.gpg).
from __future__ import annotations

import base64
import binascii
import hashlib

PUBLIC_KEY_TAG = 6
ARMOR_BEGIN = b"-----BEGIN PGP PUBLIC KEY BLOCK-----"
ARMOR_END = b"-----END PGP PUBLIC KEY BLOCK-----"


class OpenPGPError(ValueError):
    """The data is not a readable OpenPGP public key."""


def dearmor(data):
    """The binary packets of ASCII-armored DATA; binary DATA is returned as it is."""
    start = data.find(ARMOR_BEGIN)
    if start < 0:
        return data
    end = data.find(ARMOR_END, start)
    if end < 0:
        raise OpenPGPError("the armored key has no END line")
    lines = data[start + len(ARMOR_BEGIN) : end].strip().splitlines()
    # Armor headers ("Comment: ...") end at the first empty line; the body follows.
    if any(b":" in line for line in lines[:1]):
        while lines and lines[0].strip():
            lines.pop(0)
    # A line starting with "=" is the CRC-24 checksum, not data.
    body = b"".join(line.strip() for line in lines if line.strip() and not line.startswith(b"="))
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error as error:
        raise OpenPGPError("the armored key is not valid base64") from error


def packets(data):
    """(tag, body) of each packet in binary DATA."""
    offset = 0
    while offset < len(data):
        header = data[offset]
        if not header & 0x80:
            raise OpenPGPError("not an OpenPGP packet at byte %d" % offset)
        if header & 0x40:  # new format: tag in 6 bits, length in 1, 2 or 5 octets
            tag = header & 0x3F
            first = _byte(data, offset + 1)
            if first < 192:
                length, offset = first, offset + 2
            elif first < 224:
                length = ((first - 192) << 8) + _byte(data, offset + 2) + 192
                offset += 3
            elif first == 255:
                length, offset = int.from_bytes(_slice(data, offset + 2, 4), "big"), offset + 6
            else:
                raise OpenPGPError("partial body lengths do not occur in public keys")
        else:  # old format: tag in 4 bits, length type in 2
            tag = (header >> 2) & 0x0F
            size = (1, 2, 4, None)[header & 0x03]
            if size is None:
                length, offset = len(data) - offset - 1, offset + 1
            else:
                length = int.from_bytes(_slice(data, offset + 1, size), "big")
                offset += 1 + size
        yield tag, _slice(data, offset, length)
        offset += length


def primary_fingerprints(data):
    """Upper-case hex fingerprints of the primary keys in DATA (armored or binary)."""
    found = []
    for tag, body in packets(dearmor(data)):
        if tag != PUBLIC_KEY_TAG:
            continue
        if not body or body[0] != 4:
            # Not comparable with a v4 fingerprint: named, so that a check reports what it saw.
            found.append("(a version %d key)" % (body[0] if body else 0))
            continue
        digest = hashlib.sha1(b"\x99" + len(body).to_bytes(2, "big") + body)  # noqa: S324 - RFC 4880 12.2
        found.append(digest.hexdigest().upper())
    if not found:
        raise OpenPGPError("no public key in the data")
    return found


def _byte(data, index):
    if index >= len(data):
        raise OpenPGPError("the key data is truncated")
    return data[index]


def _slice(data, start, length):
    if start + length > len(data):
        raise OpenPGPError("the key data is truncated")
    return data[start : start + length]

# OpenPGP public keys (RFC 4880) in pure Python: the docker role verifies Docker's key without
# gnupg on the host. Two readers:
#   verified_key(data, expected) -> armored bytes   the strict one, for the repository key: exactly
#       one ASCII-armored public-key block, nothing but whitespace around it, a matching CRC-24,
#       exactly one primary key, and that key's fingerprint is EXPECTED. It returns the key
#       re-armored from the packets it checked, so only what was verified is ever installed.
#   primary_fingerprints(data) -> [fingerprint, ...]   the lenient one, for keyrings that hold
#       many keys (an apt-key keyring such as /etc/apt/trusted.gpg, binary or armored).
# Errors are OpenPGPError whose text completes "The key ..." ("holds 2 primary keys (...)").
# Python 3.8, standard library only.
from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Iterator, List, Tuple

PUBLIC_KEY_TAG = 6
ARMOR_TYPE = "PUBLIC KEY BLOCK"
_ARMOR = re.compile(rb"^-----(BEGIN|END) PGP ([A-Z0-9 ,/]+)-----[ \t\r]*$", re.MULTILINE)
_HEADER = re.compile(rb"^[A-Za-z][A-Za-z0-9-]*: ")
_LINE = 64  # base64 characters per armored line, as gpg writes them


class OpenPGPError(ValueError):
    """The data is not what was asked for; the text completes "The key ..."."""


def crc24(data: bytes) -> int:
    """The CRC-24 of RFC 4880 6.1 (the armor checksum)."""
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _bit in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def armored_packets(data: bytes) -> bytes:
    """The binary packets of DATA, which must be exactly one armored public-key block with
    nothing but whitespace before or after it."""
    marks = list(_ARMOR.finditer(data))
    begins = [m for m in marks if m.group(1) == b"BEGIN"]
    if not begins:
        if data[:1] and data[0] & 0x80:
            raise OpenPGPError(
                "is binary OpenPGP data, not an ASCII-armored key (apt reads an .asc file as "
                "armored text)"
            )
        raise OpenPGPError("holds no ASCII-armored OpenPGP block")
    if len(begins) > 1:
        raise OpenPGPError("holds %d armored blocks, not one" % len(begins))
    begin = begins[0]
    kind = begin.group(2).decode("ascii")
    if kind != ARMOR_TYPE:
        raise OpenPGPError("holds a PGP %s, not a PGP %s" % (kind, ARMOR_TYPE))
    ends = [m for m in marks if m.group(1) == b"END" and m.start() > begin.start()]
    if not ends or ends[0].group(2) != begin.group(2):
        raise OpenPGPError("has no END line for its armored block")
    end = ends[0]
    if data[: begin.start()].strip():
        raise OpenPGPError("has data before its armored block")
    if data[end.end() :].strip():
        raise OpenPGPError("has data after the END line of its armored block")
    return _decode_body(data[begin.end() : end.start()].splitlines())


def _decode_body(lines: List[bytes]) -> bytes:
    lines = [line.strip() for line in lines]
    while lines and not lines[0]:
        lines.pop(0)
    # Armor headers ("Comment: ...", "Version: ...") end at the first empty line.
    if lines and _HEADER.match(lines[0]):
        while lines and lines[0]:
            lines.pop(0)
    body = [line for line in lines if line]
    checksum = None
    if body and body[-1].startswith(b"="):
        checksum = body.pop()[1:]
    try:
        packets = base64.b64decode(b"".join(body), validate=True)
        expected = base64.b64decode(checksum, validate=True) if checksum is not None else None
    except (binascii.Error, ValueError) as error:
        raise OpenPGPError("is not valid base64 inside its armored block") from error
    if not packets:
        raise OpenPGPError("has an empty armored block")
    if expected is not None and expected != crc24(packets).to_bytes(3, "big"):
        raise OpenPGPError("fails its armor checksum (the block was altered or truncated)")
    return packets


def packets(data: bytes) -> Iterator[Tuple[int, bytes]]:
    """(tag, body) of each packet in binary DATA."""
    offset = 0
    while offset < len(data):
        header = data[offset]
        if not header & 0x80:
            raise OpenPGPError("has data that is not an OpenPGP packet at byte %d" % offset)
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
                raise OpenPGPError("uses partial body lengths, which public keys never do")
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


def fingerprint(body: bytes) -> str:
    """The v4 fingerprint of a public-key packet BODY, or a name for another key version."""
    if not body or body[0] != 4:
        return "(a version %d key)" % (body[0] if body else 0)
    digest = hashlib.sha1(b"\x99" + len(body).to_bytes(2, "big") + body)  # noqa: S324 - RFC 4880 12.2
    return digest.hexdigest().upper()


def primary_fingerprints(data: bytes) -> List[str]:
    """Fingerprints of every primary key in DATA: binary packets or one armored block (lenient:
    for keyrings)."""
    binary = armored_packets(data) if _ARMOR.search(data) else data
    found = [fingerprint(body) for tag, body in packets(binary) if tag == PUBLIC_KEY_TAG]
    if not found:
        raise OpenPGPError("holds no public key")
    return found


def key_fingerprint(data: bytes) -> str:
    """The fingerprint of the one primary key in DATA, read strictly (see verified_key)."""
    return _one_key(data)[0]


def verified_key(data: bytes, expected: str) -> bytes:
    """DATA's one key, re-armored, when it is exactly one armored public-key block holding
    exactly one primary key with the fingerprint EXPECTED; OpenPGPError otherwise."""
    found, binary = _one_key(data)
    if found != expected:
        raise OpenPGPError("holds the key %s, not %s" % (found, expected))
    return armor(binary)


def armor(binary: bytes) -> bytes:
    """BINARY packets as an ASCII-armored public-key block, the way gpg writes one."""
    text = base64.b64encode(binary)
    lines = [text[i : i + _LINE] for i in range(0, len(text), _LINE)]
    checksum = b"=" + base64.b64encode(crc24(binary).to_bytes(3, "big"))
    begin = ("-----BEGIN PGP %s-----" % ARMOR_TYPE).encode("ascii")
    end = ("-----END PGP %s-----" % ARMOR_TYPE).encode("ascii")
    return b"\n".join([begin, b""] + lines + [checksum, end]) + b"\n"


def _one_key(data: bytes) -> Tuple[str, bytes]:
    binary = armored_packets(data)
    found = list(packets(binary))
    if found[0][0] != PUBLIC_KEY_TAG:
        raise OpenPGPError("does not start with a public-key packet (tag %d)" % found[0][0])
    primaries = [fingerprint(body) for tag, body in found if tag == PUBLIC_KEY_TAG]
    if len(primaries) != 1:
        raise OpenPGPError("holds %d primary keys (%s)" % (len(primaries), ", ".join(primaries)))
    return primaries[0], binary


def _byte(data: bytes, index: int) -> int:
    if index >= len(data):
        raise OpenPGPError("is truncated (a packet ends past the data)")
    return data[index]


def _slice(data: bytes, start: int, length: int) -> bytes:
    if start + length > len(data):
        raise OpenPGPError("is truncated (a packet ends past the data)")
    return data[start : start + length]

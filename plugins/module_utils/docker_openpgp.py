# OpenPGP public keys (RFC 4880) in pure Python: the docker role verifies Docker's key without
# gnupg on the host. Two readers:
#   verified_key(data, expected) -> armored bytes   the strict one, for the repository key: exactly
#       one ASCII-armored public-key block, nothing but whitespace around it, a matching CRC-24,
#       exactly one primary key, and that key's fingerprint is EXPECTED. The block must be a
#       transferable public key (RFC 4880 11.1, RFC 9580 10.1) and nothing else: the public
#       primary key (tag 6), then signatures (2), user IDs (13) and user attributes (17) with
#       their signatures, then public subkeys (14) with theirs. Any other packet (a secret key or
#       subkey, 5 or 7, that apt's sqv would trust as a signer; trust, marker, padding, data
#       packets) or any other order is refused. It returns the key re-armored from the packets
#       it checked, so only what was verified is ever installed.
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

SECRET_KEY_TAG = 5
PUBLIC_KEY_TAG = 6
SECRET_SUBKEY_TAG = 7
SIGNATURE_TAG = 2
USER_ID_TAG = 13
USER_ATTRIBUTE_TAG = 17
PUBLIC_SUBKEY_TAG = 14
# Names of the packet tags (RFC 9580 5), for the messages of what is refused.
PACKET_NAMES = {
    0: "reserved",
    1: "public-key encrypted session key",
    2: "signature",
    3: "symmetric-key encrypted session key",
    4: "one-pass signature",
    5: "secret-key",
    6: "public-key",
    7: "secret-subkey",
    8: "compressed data",
    9: "symmetrically encrypted data",
    10: "marker",
    11: "literal data",
    12: "trust",
    13: "user ID",
    14: "public-subkey",
    17: "user attribute",
    18: "encrypted and integrity protected data",
    19: "modification detection code",
    20: "AEAD encrypted data",
    21: "padding",
}
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
    for tag, body, _raw, _indeterminate in _packets(data):
        yield tag, body


def _packets(data: bytes) -> Iterator[Tuple[int, bytes, bytes, bool]]:
    """(tag, body, the packet's bytes with its header, whether its length is indeterminate)
    of each packet in binary DATA."""
    offset = 0
    while offset < len(data):
        start = offset
        indeterminate = False
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
                indeterminate = True
            else:
                length = int.from_bytes(_slice(data, offset + 1, size), "big")
                offset += 1 + size
        body = _slice(data, offset, length)
        offset += length
        yield tag, body, data[start:offset], indeterminate


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
    return armor(binary)  # only the packets _one_key admitted: the key's public packets


def armor(binary: bytes) -> bytes:
    """BINARY packets as an ASCII-armored public-key block, the way gpg writes one."""
    text = base64.b64encode(binary)
    lines = [text[i : i + _LINE] for i in range(0, len(text), _LINE)]
    checksum = b"=" + base64.b64encode(crc24(binary).to_bytes(3, "big"))
    begin = ("-----BEGIN PGP %s-----" % ARMOR_TYPE).encode("ascii")
    end = ("-----END PGP %s-----" % ARMOR_TYPE).encode("ascii")
    return b"\n".join([begin, b""] + lines + [checksum, end]) + b"\n"


def _packet_name(tag: int) -> str:
    """'a secret-key packet (tag 5)', 'an unknown packet (tag 60)'."""
    name = PACKET_NAMES.get(tag, "unknown")
    article = "an" if name[0] in "aeioAEIO" or name == "unknown" else "a"
    return "%s %s packet (tag %d)" % (article, name, tag)


def _one_key(data: bytes) -> Tuple[str, bytes]:
    """(fingerprint, the binary packets admitted) of the one transferable public key in DATA:
    the strict reading that verified_key and key_fingerprint share."""
    found = list(_packets(armored_packets(data)))
    if found[0][0] != PUBLIC_KEY_TAG:
        raise OpenPGPError(
            "does not start with a public-key packet (it starts with %s)"
            % _packet_name(found[0][0])
        )
    primaries = [fingerprint(body) for tag, body, _raw, _ind in found if tag == PUBLIC_KEY_TAG]
    if len(primaries) != 1:
        raise OpenPGPError("holds %d primary keys (%s)" % (len(primaries), ", ".join(primaries)))
    # The transferable public key grammar: primary key, its signatures, user IDs and user
    # attributes each with their signatures, then public subkeys each with theirs.
    kept = []
    after_subkey = False
    for index, (tag, _body, raw, indeterminate) in enumerate(found):
        where = "as packet %d of %d" % (index + 1, len(found))
        if indeterminate:
            raise OpenPGPError(
                "holds %s with an indeterminate length %s, which a public key never"
                " uses: refused" % (_packet_name(tag), where)
            )
        if tag in (SECRET_KEY_TAG, SECRET_SUBKEY_TAG):
            raise OpenPGPError(
                "holds %s %s besides the public key %s: refused"
                % (_packet_name(tag), where, primaries[0])
            )
        if tag in (USER_ID_TAG, USER_ATTRIBUTE_TAG) and after_subkey:
            raise OpenPGPError(
                "holds %s %s after a subkey, out of a public key's order: refused"
                % (_packet_name(tag), where)
            )
        if tag == PUBLIC_SUBKEY_TAG:
            after_subkey = True
        elif tag not in (PUBLIC_KEY_TAG, SIGNATURE_TAG, USER_ID_TAG, USER_ATTRIBUTE_TAG):
            raise OpenPGPError(
                "holds %s %s, which is not part of a public key: refused"
                % (_packet_name(tag), where)
            )
        kept.append(raw)
    return primaries[0], b"".join(kept)


def _byte(data: bytes, index: int) -> int:
    if index >= len(data):
        raise OpenPGPError("is truncated (a packet ends past the data)")
    return data[index]


def _slice(data: bytes, start: int, length: int) -> bytes:
    if start + length > len(data):
        raise OpenPGPError("is truncated (a packet ends past the data)")
    return data[start : start + length]

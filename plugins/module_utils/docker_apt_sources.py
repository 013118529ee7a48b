# apt source files, read precisely enough to take Docker's entries out of them and leave every
# other repository alone: one-line files (sources.list, *.list: "deb [options] URI suite ...")
# and deb822 files (*.sources: stanzas separated by blank lines, with a URIs field). An entry is
# Docker's when its URI is Docker's repository (https://download.docker.com/linux/<distribution>),
# or exactly the configured repository URL and every component one of Docker's channels (a mirror
# URL that also serves the distribution keeps the distribution's "focal main" entries): the
# whole URI is compared, so a URL that merely starts with the configured one is not Docker's.
# Python 3.8, standard library only.
from __future__ import annotations

import re
from typing import Dict, List, Optional, Set, Tuple

from ansible_collections.provision.hosts.plugins.module_utils.docker_formats import (
    apt_auth_entry,
    without_credentials,
)

DOCKER_URI = re.compile(r"^https?://download\.docker\.com/linux/[A-Za-z0-9._-]+$")


def normalize_uri(uri: str) -> str:
    """URI as entries are compared: no trailing slash, no user:password@ (older guides put a
    token there)."""
    return without_credentials(uri.strip()).rstrip("/")


# The components of Docker's repository: docker_apt_channel's choices, and the channels older
# guides used.
DOCKER_CHANNELS = ("stable", "test", "nightly", "edge")


def is_docker_uri(uri: str, repository_url: str) -> bool:
    uri = normalize_uri(uri)
    return bool(DOCKER_URI.match(uri)) or (
        bool(repository_url) and uri == normalize_uri(repository_url)
    )


def is_docker_entry(uri: str, components: List[str], repository_url: str) -> bool:
    """An entry (URI and its components) is Docker's: Docker's own URI, or the configured one
    with only Docker's channels as components."""
    if DOCKER_URI.match(normalize_uri(uri)):
        return True
    return (
        is_docker_uri(uri, repository_url)
        and bool(components)
        and all(c in DOCKER_CHANNELS for c in components)
    )


def auth_content(repository_url: str, marker: str) -> Optional[str]:
    """The role's file in /etc/apt/auth.conf.d: apt's login for the repository when its URL has
    credentials (None otherwise), under the role's MARKER line."""
    entry = apt_auth_entry(repository_url) if repository_url else None
    if entry is None:
        return None
    return "%s; the login for docker_apt_repository_url.\n%s" % (marker, entry)


def is_deb822(name: str) -> bool:
    """*.sources (and copies such as docker.sources.save) are deb822; the rest one-line."""
    return ".sources" in name


class Entries:
    """What one file holds: Docker's entries, other entries, and the file without Docker's."""

    def __init__(self, docker: int, other: int, without_docker: str) -> None:
        self.docker = docker
        self.other = other
        self.without_docker = without_docker


def read_entries(name: str, text: str, repository_url: str) -> Entries:
    if is_deb822(name):
        return _deb822(text, repository_url)
    return _one_line(text, repository_url)


def _one_line_entry(line: str) -> Optional[Tuple[str, List[str]]]:
    """The URI and components of a one-line entry, or None for a comment, a blank or a
    malformed line."""
    words = line.split("#", 1)[0].split()
    if not words or words[0] not in ("deb", "deb-src"):
        return None
    rest = " ".join(words[1:])
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            return None
        rest = rest[end + 1 :]
    words = rest.split()
    return (words[0], words[2:]) if words else None


def _one_line(text: str, repository_url: str) -> Entries:
    docker = other = 0
    kept = []
    for line in text.splitlines(True):
        entry = _one_line_entry(line)
        if entry is not None:
            if is_docker_entry(entry[0], entry[1], repository_url):
                docker += 1
                continue
            other += 1
        kept.append(line)
    return Entries(docker, other, "".join(kept))


def _stanzas(lines: List[str]) -> List[List[int]]:
    """Lists of line indexes, one per stanza (blank lines separate them)."""
    stanzas, current = [], []
    for index, line in enumerate(lines):
        if line.strip():
            current.append(index)
        elif current:
            stanzas.append(current)
            current = []
    if current:
        stanzas.append(current)
    return stanzas


def _field(lines: List[str], stanza: List[int], field: str) -> Tuple[List[int], List[str]]:
    """(indexes of FIELD's lines, its words) in STANZA (a field may continue on indented
    lines)."""
    indexes, value, inside = [], [], False
    for index in stanza:
        line = lines[index]
        if line.lstrip().startswith("#"):
            continue
        if inside and line[:1] in (" ", "\t"):
            indexes.append(index)
            value.append(line)
            continue
        name, sep, rest = line.partition(":")
        inside = bool(sep) and name.strip().lower() == field
        if inside:
            indexes.append(index)
            value.append(rest)
    return indexes, " ".join(value).split()


def _deb822(text: str, repository_url: str) -> Entries:
    lines = text.splitlines(True)
    docker = other = 0
    drop: Set[int] = set()
    replace: Dict[int, str] = {}
    for stanza in _stanzas(lines):
        indexes, uris = _field(lines, stanza, "uris")
        if not uris:
            continue  # only comments, or not an entry apt would use
        _lines, components = _field(lines, stanza, "components")
        theirs = [u for u in uris if not is_docker_entry(u, components, repository_url)]
        if len(theirs) == len(uris):
            other += 1
            continue
        docker += 1
        if not theirs:
            # Comments above the stanza's first field may be the file's own: they stay.
            first = next(i for i in stanza if not lines[i].lstrip().startswith("#"))
            drop.update(i for i in stanza if i >= first)
            # and the blank line that separated it from the next stanza
            following, preceding = stanza[-1] + 1, first - 1
            if following < len(lines) and not lines[following].strip():
                drop.add(following)
            elif preceding >= 0 and not lines[preceding].strip():
                drop.add(preceding)
            continue
        other += 1
        # A stanza listing Docker's URI next to others keeps the others.
        replace[indexes[0]] = "URIs: %s\n" % " ".join(theirs)
        drop.update(indexes[1:])
    kept = [replace.get(i, line) for i, line in enumerate(lines) if i not in drop]
    return Entries(docker, other, "".join(kept))

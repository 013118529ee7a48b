# Which version of Docker's engine packages a run installs: dpkg's ordering of versions, Docker's
# series (major.minor), and the upgrade policy (docker_upgrade, docker_version globs). Pure, used
# by docker_plan on the managed host (Python 3.8+) and unit-tested against dpkg itself.
#
# API:
#   compare(a, b) -> int            dpkg's order of two Debian versions (<0, 0, >0)
#   newest(versions) -> str | None  the highest by that order
#   upstream(version) -> str        "5:26.1.3-1~ubuntu.20.04~focal" -> "26.1.3"
#   series(version) -> str          -> "26.1" (Docker's patch releases share a series)
#   major(version) -> str           -> "26"
#   is_glob(pattern) -> bool        a docker_version with fnmatch wildcards
#   target(installed, available, upgrade, pattern) -> (version or None, why)
from __future__ import annotations

import fnmatch
import functools
from typing import List, Optional, Tuple

UPGRADE_POLICIES = ("never", "series", "latest")
_GLOB = "*?["


def _order(char: str) -> int:
    """dpkg's weight of a character in a version's non-digit run ("" is the end)."""
    if char == "~":
        return -1
    if not char or char.isdigit():
        return 0
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _compare_part(a: str, b: str) -> int:
    """dpkg's verrevcmp: non-digit runs by _order, then digit runs as numbers, alternating."""
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            left = _order(a[i] if i < len(a) else "")
            right = _order(b[j] if j < len(b) else "")
            if left != right:
                return left - right
            i += 1
            j += 1
        start_i = i
        while i < len(a) and a[i].isdigit():
            i += 1
        start_j = j
        while j < len(b) and b[j].isdigit():
            j += 1
        left_number = int(a[start_i:i] or "0")
        right_number = int(b[start_j:j] or "0")
        if left_number != right_number:
            return -1 if left_number < right_number else 1
    return 0


def _split(version: str) -> Tuple[int, str, str]:
    epoch, colon, rest = version.partition(":")
    if not colon:
        epoch, rest = "0", version
    upstream_part, dash, revision = rest.rpartition("-")
    if not dash:
        upstream_part, revision = rest, ""
    return int(epoch) if epoch.isdigit() else 0, upstream_part, revision


def compare(a: str, b: str) -> int:
    """dpkg's order of Debian versions A and B: negative, 0 or positive."""
    left, right = _split(a), _split(b)
    if left[0] != right[0]:
        return -1 if left[0] < right[0] else 1
    return _compare_part(left[1], right[1]) or _compare_part(left[2], right[2])


def newest(versions: List[str]) -> Optional[str]:
    if not versions:
        return None
    return max(versions, key=functools.cmp_to_key(compare))


def upstream(version: str) -> str:
    return _split(version)[1]


def series(version: str) -> str:
    return ".".join(upstream(version).split(".")[:2])


def major(version: str) -> str:
    return upstream(version).split(".")[0]


def is_glob(pattern: str) -> bool:
    return any(c in pattern for c in _GLOB)


def target(
    installed: Optional[str], available: List[str], upgrade: str, pattern: str
) -> Tuple[Optional[str], str]:
    """The exact version to install (None: leave it to apt, today's "install once") and which
    setting chose it (a few words, for messages).
    PATTERN: docker_version (exact, a glob or empty); AVAILABLE: the versions apt offers;
    INSTALLED: the engine package's installed version or None. An exact docker_version is that
    version; a glob is its newest match (kept current); with docker_upgrade=series the newest of
    the installed (or matching) version's major.minor, latest the newest of all."""
    if pattern and not is_glob(pattern):
        return pattern, "docker_version is %s" % pattern
    offered = [v for v in available if not pattern or fnmatch.fnmatchcase(v, pattern)]
    what = "docker_version %s" % pattern if pattern else "docker_upgrade=%s" % upgrade
    in_pattern = bool(installed) and (not pattern or fnmatch.fnmatchcase(str(installed), pattern))
    if upgrade == "series" and installed and in_pattern:
        offered = [v for v in offered if series(v) == series(installed)] or [installed]
        what = "docker_upgrade=series (%s)" % series(installed) + (
            " and docker_version %s" % pattern if pattern else ""
        )
    if upgrade == "never" and not pattern:
        return None, ""
    chosen = newest(offered)
    if installed and chosen and in_pattern and compare(installed, chosen) > 0:
        chosen = installed  # a policy never downgrades what it did not choose
    return chosen, what

# How the docker role reads apt's lists again and installs (modules/docker_apt_install.py runs apt):
# Docker's source alone ("docker": apt-get update with that one file as the source list) when
# only Docker's key or source changed and the distribution's lists are current, every source
# ("full") otherwise. Pure: the readings come in as plain values, so each decision is
# unit-tested (tests/unit/plugins/module_utils/test_docker_apt_lists.py).
# Python 3.8: no newer syntax or library calls.
from __future__ import annotations

import fnmatch
import re
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Set, Tuple

# apt-get indextargets --format: one line per index target.
TARGET_FORMAT = "$(SOURCESENTRY)\t$(BASE_URI)\t$(FILENAME)"
# Suffixes apt stores a list under (Acquire::GzipIndexes, KeepCompressed targets).
LIST_SUFFIXES = ("", ".gz", ".xz", ".lz4", ".zst", ".bz2", ".lzma")
# Marks of apt's last full refresh, newest evidence first (apt's periodic stamps; the lists
# directory's own mtime when no stamp exists).
STAMPS = ("/var/lib/apt/periodic/update-success-stamp", "/var/lib/apt/periodic/update-stamp")
CANDIDATE = re.compile(r"^\s*Candidate: (?!\(none\))", re.MULTILINE)
LOCK_ERRORS = ("Could not get lock", "Unable to lock directory", "Unable to acquire the dpkg")


class Target(NamedTuple):
    entry: str  # "/etc/apt/sources.list:2", "/etc/apt/sources.list.d/debian.sources:1"
    base_uri: str  # one suite of one repository
    filename: str  # where apt keeps this list


def update_argv(mode: str, source: str) -> List[str]:
    """apt-get update for MODE. "docker" reads SOURCE alone; List-Cleanup=0 keeps every other
    list (apt deletes lists no configured source names otherwise: checked on focal's apt 2.0.2
    and trixie's 3.0.4), and the empty cache paths keep apt's package caches, which would
    otherwise hold Docker's lists alone and cost the next apt call a rebuild from every list
    (focal: the solver check after it 4.7 s instead of 1.7 s)."""
    argv = ["apt-get", "update", "-q"]
    if mode == "docker":
        argv += [
            "-o",
            "Dir::Etc::sourcelist=" + source,
            "-o",
            "Dir::Etc::sourceparts=-",
            "-o",
            "APT::Get::List-Cleanup=0",
            "-o",
            "Dir::Cache::pkgcache=",
            "-o",
            "Dir::Cache::srcpkgcache=",
        ]
    return argv


def install_argv(
    specs: Sequence[str], allow_downgrade: bool, allow_held: bool, simulate: bool = False
) -> List[str]:
    """apt-get install of SPECS as the apt module runs it: no questions, the configuration files
    an admin changed kept (confdef, confold). --simulate (check mode) changes and downloads
    nothing (adding --no-download makes apt 2.0 fail on archives it does not have cached)."""
    argv = ["apt-get", "install", "-q", "-y"]
    argv += ["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]
    if simulate:
        argv.append("--simulate")
    if allow_downgrade:
        argv.append("--allow-downgrades")
    if allow_held:
        argv.append("--allow-change-held-packages")
    return argv + ["--"] + list(specs)


def has_glob(version: str) -> bool:
    """VERSION is a pattern (5:27.*) that apt-get does not take: it is resolved first."""
    return any(c in version for c in "*?[")


def parse_madison(text: str) -> List[str]:
    """The versions `apt-cache madison PACKAGE` lists ("docker-ce | 5:27.5.1-1~... | URI ...")."""
    found = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) >= 3 and parts[1] and parts[1] not in found:
            found.append(parts[1])
    return found


def installed_by(output: str) -> List[str]:
    """The packages an apt-get install (or its --simulate) installs, upgrades or configures:
    "Inst"/"Conf" lines when simulating, dpkg's "Unpacking"/"Setting up" lines otherwise."""
    found = []
    for line in output.splitlines():
        words = line.replace("Setting up ", "Setting-up ", 1).split()
        if len(words) >= 2 and words[0] in ("Inst", "Conf", "Unpacking", "Setting-up"):
            name = words[1].split(":")[0]
            if name not in found:
                found.append(name)
    return found


def has_candidate(policy: str) -> bool:
    """`apt-cache policy PACKAGE` (LC_ALL=C) names a version apt would install."""
    return bool(CANDIDATE.search(policy))


def candidates(policy: str) -> Dict[str, bool]:
    """`apt-cache policy A B ...` (LC_ALL=C): whether apt would install a version of each."""
    found: Dict[str, bool] = {}
    name = ""
    for line in policy.splitlines():
        if line and not line[0].isspace() and line.rstrip().endswith(":"):
            name = line.rstrip()[:-1]
            found[name] = False
        elif name and CANDIDATE.search(line):
            found[name] = True
    return found


def split_spec(spec: str) -> Tuple[str, Optional[str]]:
    """The package and the version (or glob) of an install spec: "docker-ce=5:27.*"."""
    name, sep, version = spec.partition("=")
    return name, (version if sep else None)


def parse_targets(text: str) -> List[Target]:
    found = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and all(parts):
            found.append(Target(parts[0], parts[1], parts[2]))
    return found


def source_file(entry: str) -> str:
    """The file of a SOURCESENTRY ("/etc/apt/sources.list:2" -> "/etc/apt/sources.list")."""
    return entry.rsplit(":", 1)[0]


class Lists(NamedTuple):
    """The distribution's lists, as far as a narrow refresh depends on them."""

    unfetched: List[str]  # suites whose Release file apt does not have
    missing: List[str]  # index files the Release files name that are not on disk
    age: Optional[float]  # seconds since the last full refresh (None: unknown)


def read_lists(
    every: Iterable[Target],
    released: Iterable[Target],
    present: Set[str],
    own_source: str,
    age: Optional[float],
) -> Lists:
    """EVERY: apt-get indextargets --no-release-info (each configured suite's targets);
    RELEASED: apt-get indextargets (only suites whose Release file apt has, only the targets it
    names); PRESENT: the list files found on disk. Docker's own source (OWN_SOURCE) is left out:
    the narrow refresh fetches it."""
    others = [t for t in every if source_file(t.entry) != own_source]
    fetched = {t.base_uri for t in released}
    unfetched = sorted({t.base_uri for t in others} - fetched)
    missing = sorted(
        t.filename
        for t in released
        if source_file(t.entry) != own_source and t.filename not in present
    )
    return Lists(unfetched, missing, age)


def release_files(print_uris: str) -> Dict[str, str]:
    """Each suite's base URI and the name apt stores its InRelease file under, from `apt-get
    update --print-uris` (which reads the sources alone: no package cache is built, unlike
    indextargets). Local methods (file:, cdrom:, copy:) are left out: apt reads those lists in
    place."""
    found = {}
    for line in print_uris.splitlines():
        parts = line.split()
        if len(parts) < 2 or not parts[0].startswith("'") or not parts[0].endswith("'"):
            continue
        uri, filename = parts[0].strip("'"), parts[1]
        local = uri.split(":", 1)[0] in ("file", "cdrom", "copy")
        if uri.endswith("/InRelease") and filename.endswith("_InRelease") and not local:
            found[uri[: -len("InRelease")]] = filename
    return found


def never_fetched(releases: Dict[str, str], present: Set[str]) -> List[str]:
    """The suites (base URIs) of RELEASES (release_files) for which apt has neither an InRelease
    nor a Release file among PRESENT (the names in its lists directory)."""
    return sorted(
        base
        for base, filename in releases.items()
        if filename not in present and filename[: -len("InRelease")] + "Release" not in present
    )


def choose(mode: str, lists: Optional[Lists], max_age: float) -> Tuple[str, str]:
    """The refresh to run for the plan's MODE: ("docker" | "full", why)."""
    if mode != "docker":
        return "full", ""
    if lists is None:
        return "full", "the distribution's lists were not read"
    if lists.unfetched:
        return "full", "apt has never fetched %d of the distribution's suites (%s)" % (
            len(lists.unfetched),
            ", ".join(lists.unfetched[:3]),
        )
    if lists.missing:
        return "full", "%d of the distribution's lists are missing (%s)" % (
            len(lists.missing),
            ", ".join(lists.missing[:3]),
        )
    if lists.age is None:
        return "full", "the age of the distribution's lists is unknown"
    if lists.age > max_age or lists.age < -300:
        return "full", "the distribution's lists are %d s old (more than %d s)" % (
            lists.age,
            max_age,
        )
    return "docker", "the distribution's lists are current (%d s old, every list present)" % (
        lists.age
    )


def lock_failure(output: str) -> bool:
    """apt-get failed only because another apt or dpkg holds its lock (LC_ALL=C)."""
    return any(
        line.startswith("E: ") and m in line for line in output.splitlines() for m in LOCK_ERRORS
    )


def fetch_failure(output: str) -> bool:
    """apt-get update exits 0 when an index could not be fetched (old lists are used)."""
    return any(
        line.startswith(
            (
                "W: Failed to fetch",
                "E: Failed to fetch",
                "W: Some index files failed",
                "E: Some index files failed",
            )
        )
        for line in output.splitlines()
    )


# apt-get update's line for a list it could not fetch (it exits 0 and keeps the old lists).
FAILED_FETCH = re.compile(r"^[WE]: Failed to fetch (\S+)\s*(.*)$")


class FetchFailures(NamedTuple):
    docker: List[Tuple[str, str]]  # (URL, apt's reason) of Docker's repository
    foreign: List[Tuple[str, str]]  # of every other source
    unnamed: bool  # apt said an index failed without naming one


def fetch_failures(output: str, repository_url: str) -> FetchFailures:
    """The lists apt-get update could not fetch, Docker's (under REPOSITORY_URL) apart from the
    others: a source that went away (a PPA, a vendor repository behind a VPN) must not stop the
    install, Docker's own must."""
    prefix = repository_url.rstrip("/") + "/"
    docker: List[Tuple[str, str]] = []
    foreign: List[Tuple[str, str]] = []
    for line in output.splitlines():
        match = FAILED_FETCH.match(line.strip())
        if match:
            url, reason = match.group(1), match.group(2).strip()
            (docker if repository_url and url.startswith(prefix) else foreign).append((url, reason))
    unnamed = fetch_failure(output) and not (docker or foreign)
    return FetchFailures(docker, foreign, unnamed)


def foreign_warning(url: str, reason: str) -> str:
    return (
        "apt could not fetch %s (%s): a source other than Docker's, so the install goes on from"
        " the lists apt has. Fix or remove that source." % (url, reason or "no reason given")
    )


def update_failure(output: str, repository_url: str) -> str:
    """Why the refresh failed: Docker's repository when apt names it, else apt's own lines."""
    failed = fetch_failures(output, repository_url).docker
    if failed:
        url, reason = failed[0]
        return "apt could not fetch Docker's repository %s: %s" % (url, reason or "no reason")
    return errors(output)


def errors(output: str, limit: int = 3) -> str:
    """apt's own error lines (E:, W:), else its last lines: what a failure message shows."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    picked = [line for line in lines if line.startswith(("E:", "W:"))]
    unmet = [line for line in lines if "Depends:" in line or "but it is not" in line]
    return " ".join((unmet + picked or lines[-limit:])[:limit])


def stamp_age(mtimes: Dict[str, Optional[float]], lists_dir: str, now: float) -> Optional[float]:
    """Seconds since the last full refresh: the first of STAMPS that exists, else the lists
    directory's mtime. MTIMES maps each of those paths to its mtime (None: absent)."""
    for path in list(STAMPS) + [lists_dir]:
        mtime = mtimes.get(path)
        if mtime is not None:
            return now - mtime
    return None


def pick_version(
    versions: Sequence[str], pattern: str, compare: Callable[[str, str], int]
) -> Optional[str]:
    """The newest of VERSIONS that PATTERN (a version or a glob, as apt and the apt module take
    it) matches; COMPARE is apt's version comparison."""
    best: Optional[str] = None
    for version in versions:
        if fnmatch.fnmatchcase(version, pattern) and (best is None or compare(version, best) > 0):
            best = version
    return best

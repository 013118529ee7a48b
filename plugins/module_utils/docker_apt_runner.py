# apt as the docker role's install runs it on the managed host: apt-get calls that wait for
# apt's lock (unattended-upgrades at boot) until one deadline, every source refreshed with
# retries, the reading of which lists are current (without building apt's cache), the marks of
# the last full refresh kept across a refresh of Docker's source alone, and version globs
# resolved against apt's lists. The decisions over that output: docker_apt_lists.py.
# Python 3.8, standard library and ansible.module_utils only.
from __future__ import annotations

import os
import tempfile
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, Dict, Iterator, List, Optional, Tuple

from ansible_collections.provision.hosts.plugins.module_utils import docker_apt_lists as lists

if TYPE_CHECKING:
    from ansible.module_utils.basic import AnsibleModule

ENVIRON = {"LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive", "DEBIAN_PRIORITY": "critical"}
FETCH_TRIES = 5


class Apt:
    """apt-get calls that wait for apt's lock until one shared deadline."""

    def __init__(self, module: AnsibleModule, lock_timeout: int, repository_url: str = "") -> None:
        self.module = module
        # Docker's repository: a list of it that apt cannot fetch fails the refresh, any other
        # source's is a warning (foreign: URL -> apt's reason).
        self.repository_url = repository_url
        self.foreign: Dict[str, str] = {}
        self.deadline = time.monotonic() + lock_timeout
        self.lock_waits = 0
        self.seconds: Dict[str, float] = {}

    def run(self, name: str, argv: List[str]) -> Tuple[int, str]:
        started = time.monotonic()
        while True:
            rc, out, err = self.module.run_command(argv, environ_update=ENVIRON)
            output = "%s\n%s" % (out, err)
            if rc == 0 or not lists.lock_failure(output) or time.monotonic() >= self.deadline:
                break
            self.lock_waits += 1
            time.sleep(1)
        self.seconds[name] = round(self.seconds.get(name, 0) + time.monotonic() - started, 3)
        return rc, output

    def update(self, mode: str, source: str) -> Tuple[bool, str]:
        """apt-get update for MODE; ok unless apt failed or could not fetch one of Docker's
        lists (another source's failure is kept in self.foreign)."""
        rc, output = self.run(mode, lists.update_argv(mode, source))
        failed = lists.fetch_failures(output, self.repository_url)
        if rc != 0 or failed.docker or failed.unnamed:
            return False, output
        self.foreign.update(dict(failed.foreign))
        return True, output


def mtime(path: str) -> Optional[float]:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


@contextmanager
def without_source(module: AnsibleModule, source: str) -> Iterator[List[str]]:
    """apt options that configure every source but SOURCE: a directory of links to every other
    file of apt's source parts. apt's package cache stays valid for that configuration, so
    reading it costs no cache rebuild (a Docker source just written, without its lists yet,
    makes apt rebuild the cache in memory: ~1 s on focal)."""
    _rc, out, _err = module.run_command(
        ["apt-config", "shell", "PARTS", "Dir::Etc::sourceparts/d"], environ_update=ENVIRON
    )
    parts = out.strip().partition("=")[2].strip("'\"")
    if not parts or os.path.dirname(os.path.abspath(source)) != os.path.abspath(parts):
        yield []
        return
    with tempfile.TemporaryDirectory(prefix="provision-apt-") as staged:
        for name in os.listdir(parts):
            if name != os.path.basename(source):
                os.symlink(os.path.join(parts, name), os.path.join(staged, name))
        yield ["-o", "Dir::Etc::sourceparts=" + staged]


def read_lists(module: AnsibleModule, source: str, lists_dir: str) -> Optional[lists.Lists]:
    def targets(*options: str) -> Optional[List[lists.Target]]:
        rc, out, _err = module.run_command(
            ["apt-get", "indextargets", "--format", lists.TARGET_FORMAT] + list(options),
            environ_update=ENVIRON,
        )
        return lists.parse_targets(out) if rc == 0 else None

    marks = {p: mtime(p) for p in list(lists.STAMPS) + [lists_dir]}
    age = lists.stamp_age(marks, lists_dir, time.time())
    with without_source(module, source) as options:
        # A suite apt never fetched decides it, and is seen without building apt's cache.
        _rc, out, _err = module.run_command(
            ["apt-get", "update", "--print-uris", "-q"] + options, environ_update=ENVIRON
        )
        names = set(os.listdir(lists_dir)) if os.path.isdir(lists_dir) else set()
        unfetched = lists.never_fetched(lists.release_files(out), names)
        if unfetched:
            return lists.Lists(unfetched, [], age)
        every, released = targets("--no-release-info", *options), targets(*options)
    if every is None or released is None:
        return None
    present = {
        t.filename
        for t in released
        if any(os.path.isfile(t.filename + s) for s in lists.LIST_SUFFIXES)
    }
    return lists.read_lists(every, released, present, source, age)


class Marks:
    """The marks of the last full refresh, put back after a refresh of Docker's source alone
    (apt's Post-Invoke-Success hooks touch the stamp after any apt-get update)."""

    def __init__(self, lists_dir: str) -> None:
        self.times: Dict[str, Optional[Tuple[int, int]]] = {}
        for path in list(lists.STAMPS) + [lists_dir]:
            try:
                info = os.stat(path)
                self.times[path] = (info.st_atime_ns, info.st_mtime_ns)
            except OSError:
                self.times[path] = None

    def restore(self) -> None:
        for path, times in self.times.items():
            try:
                if times is not None:
                    os.utime(path, ns=times)
                elif path in lists.STAMPS and os.path.isfile(path):
                    os.unlink(path)
            except OSError:
                pass


def full(apt: Apt, source: str) -> Tuple[bool, str]:
    ok, output = apt.update("full", source)
    for attempt in range(1, FETCH_TRIES):
        if ok:
            break
        apt.module.warn(
            "apt-get update failed (%s); trying again"
            % lists.update_failure(output, apt.repository_url)
        )
        time.sleep(2 ** (attempt - 1))
        ok, output = apt.update("full", source)
    return ok, output


def compare(module: AnsibleModule) -> Callable[[str, str], int]:
    """apt's version comparison: python3-apt's when the host has it, dpkg's otherwise."""
    try:
        import apt_pkg  # only on the managed host

        apt_pkg.init_system()
        return apt_pkg.version_compare  # type: ignore[no-any-return]
    except ImportError:
        pass

    def by_dpkg(a: str, b: str) -> int:
        rc, _out, _err = module.run_command(["dpkg", "--compare-versions", a, "gt", b])
        return 1 if rc == 0 else -1

    return by_dpkg


def resolve(apt: Apt, specs: List[str]) -> Tuple[List[str], List[str]]:
    """SPECS with each version glob replaced by the newest version apt's lists have that matches
    it, and the specs no version matched."""
    started = time.monotonic()
    resolved, unmatched = [], []
    for spec in specs:
        name, pattern = lists.split_spec(spec)
        if pattern is None or not lists.has_glob(pattern):
            resolved.append(spec)
            continue
        _rc, out, _err = apt.module.run_command(
            ["apt-cache", "madison", name], environ_update=ENVIRON
        )
        picked = lists.pick_version(lists.parse_madison(out), pattern, compare(apt.module))
        if picked is None:
            unmatched.append(spec)
        else:
            resolved.append(name + "=" + picked)
    apt.seconds["resolve"] = round(time.monotonic() - started, 3)
    return resolved, unmatched

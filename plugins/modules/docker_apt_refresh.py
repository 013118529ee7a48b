#!/usr/bin/python
# apt's lists refreshed for Docker's packages in one module call: Docker's source alone when the
# distribution's lists are current, proven sufficient by apt's solver, every source otherwise.
# The reading "are the distribution's lists current" is made here, not in docker_host_facts:
# here it is made only when a refresh runs, and just before it, after the steps that ran since
# the read (legacy sources removed, prerequisites installed with a refresh of their own) that
# change the answer. Decisions: module_utils/docker_apt_lists.py.
from __future__ import annotations

DOCUMENTATION = r"""
module: docker_apt_refresh
short_description: Refresh apt's lists for Docker's packages, narrowly when that is enough
version_added: 0.2.0
description:
- With O(mode=docker), reads whether the distribution's lists are current (every suite's
  Release file and every index file it names present, as C(apt-get indextargets) lists them,
  leaving out O(source); the last full refresh, after apt's periodic stamps or the lists
  directory, at most O(lists_max_age) seconds ago). When they are, refreshes O(source) alone
  (C(apt-get update) with it as the only source list, C(APT::Get::List-Cleanup=0) so that every
  other list stays) and asks apt's solver whether it can now install O(specs) with every
  dependency (python3-apt's solver; C(apt-get install --simulate) says why not). When they
  are not, or the solver cannot, refreshes every source.
- A refresh of Docker's source alone leaves the marks of the last full refresh (apt's periodic
  stamps, the lists directory's mtime) as they were, so it never makes the next reading think
  the distribution's lists are newer than they are.
- With O(mode=full), refreshes every source.
- Waits up to O(lock_timeout) seconds for another apt or dpkg that holds apt's lock, like the
  apt module's C(lock_timeout). A full refresh that cannot fetch an index is tried again (5
  tries, waiting 1, 2, 4, 8 s), as the apt module does, then fails with apt's error lines.
- In check mode it reads and reports the refresh it would run, and refreshes nothing.
options:
  mode:
    description:
    - C(docker) when only Docker's key or source changed (a narrower refresh may do), C(full)
      otherwise.
    type: str
    choices: [docker, full]
    required: true
  why:
    description: Why the plan asks for a refresh (reported back).
    type: str
    default: ""
  source:
    description: Docker's deb822 source file.
    type: path
    required: true
  specs:
    description: The packages the install that follows asks apt for (C(name) or C(name=version)).
    type: list
    elements: str
    required: true
  allow_downgrade:
    description: The install may downgrade (as the apt module's O(allow_downgrade)).
    type: bool
    default: false
  allow_change_held_packages:
    description: The install may change held packages.
    type: bool
    default: false
  lists_max_age:
    description: Seconds after a full refresh that the distribution's lists count as current.
    type: int
    default: 86400
  lists_dir:
    description: apt's lists directory (C(Dir::State::Lists)).
    type: path
    default: /var/lib/apt/lists
  lock_timeout:
    description: Seconds to wait for apt's lock held by another process.
    type: int
    default: 600
author:
- provision maintainers (@provision)
"""

EXAMPLES = r"""
- name: Refresh apt's lists (Docker's source alone when the distribution's lists are current)
  provision.hosts.docker_apt_refresh:
    mode: docker
    source: /etc/apt/sources.list.d/docker.sources
    specs: [docker-ce, docker-ce-cli, containerd.io, docker-buildx-plugin, docker-compose-plugin]
  register: docker__apt_refresh
"""

RETURN = r"""
refreshed:
  description: C(docker) (Docker's source alone), C(full) (every source), or C(none) (check mode).
  returned: always
  type: str
  sample: docker
would:
  description: The refresh that runs (in check mode, the one that would run).
  returned: always
  type: str
  sample: docker
why:
  description: Why this refresh, in one sentence.
  returned: always
  type: str
  sample: only Docker's key or source changed and the distribution's lists are current
seconds:
  description: Seconds per step (C(docker), C(check), C(explain), C(full)), lock waits included.
  returned: always
  type: dict
lock_waits:
  description: How many times apt-get found apt's lock held and was started again.
  returned: always
  type: int
"""

import os
import time
from typing import Dict, List, Optional, Tuple

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.provision.hosts.plugins.module_utils import docker_apt_lists as lists
from ansible_collections.provision.hosts.plugins.module_utils.docker_plan import Data

ENVIRON = {"LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}
FETCH_TRIES = 5


class Apt:
    """apt-get calls that wait for apt's lock until one shared deadline."""

    def __init__(self, module: AnsibleModule, lock_timeout: int) -> None:
        self.module = module
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
        rc, output = self.run(mode, lists.update_argv(mode, source))
        return rc == 0 and not lists.fetch_failure(output), output


def mtime(path: str) -> Optional[float]:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def read_lists(module: AnsibleModule, source: str, lists_dir: str) -> Optional[lists.Lists]:
    def targets(*options: str) -> Optional[List[lists.Target]]:
        rc, out, _err = module.run_command(
            ["apt-get", "indextargets", "--format", lists.TARGET_FORMAT] + list(options),
            environ_update=ENVIRON,
        )
        return lists.parse_targets(out) if rc == 0 else None

    every, released = targets("--no-release-info"), targets()
    if every is None or released is None:
        return None
    present = {
        t.filename
        for t in released
        if any(os.path.isfile(t.filename + s) for s in lists.LIST_SUFFIXES)
    }
    marks = {p: mtime(p) for p in list(lists.STAMPS) + [lists_dir]}
    age = lists.stamp_age(marks, lists_dir, time.time())
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


def solvable(specs: List[str]) -> bool:
    """apt's solver (python3-apt, which the apt module needs too) can install SPECS with every
    dependency from the lists as they are. In-process it costs the cache build, which the
    install then finds done, and little more (focal: 1.35 s against apt-get install --simulate's
    1.85 s; apt-get only explains a failure)."""
    import apt_pkg  # only on the managed host

    apt_pkg.init()
    cache = apt_pkg.Cache(None)
    deps = apt_pkg.DepCache(cache)
    wanted = []
    for spec in specs:
        name, pattern = lists.split_spec(spec)
        try:
            package = cache[name]
        except KeyError:
            return False
        if pattern is not None:
            versions = {v.ver_str: v for v in package.version_list}
            picked = lists.pick_version(list(versions), pattern, apt_pkg.version_compare)
            if picked is None:
                return False
            deps.set_candidate_ver(package, versions[picked])
        elif deps.get_candidate_ver(package) is None:
            return False
        wanted.append(package)
    with apt_pkg.ActionGroup(deps):
        for package in wanted:
            deps.mark_install(package, True, True)
    if deps.broken_count:
        resolver = apt_pkg.ProblemResolver(deps)
        for package in wanted:
            resolver.protect(package)
        try:
            resolver.resolve(True)
        except SystemError:
            return False
    return bool(deps.broken_count == 0)


def full(apt: Apt, source: str) -> Tuple[bool, str]:
    ok, output = apt.update("full", source)
    for attempt in range(1, FETCH_TRIES):
        if ok:
            break
        apt.module.warn("apt-get update failed (%s); trying again" % lists.errors(output))
        time.sleep(2 ** (attempt - 1))
        ok, output = apt.update("full", source)
    return ok, output


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "mode": {"type": "str", "choices": ["docker", "full"], "required": True},
            "why": {"type": "str", "default": ""},
            "source": {"type": "path", "required": True},
            "specs": {"type": "list", "elements": "str", "required": True},
            "allow_downgrade": {"type": "bool", "default": False},
            "allow_change_held_packages": {"type": "bool", "default": False},
            "lists_max_age": {"type": "int", "default": 86400},
            "lists_dir": {"type": "path", "default": "/var/lib/apt/lists"},
            "lock_timeout": {"type": "int", "default": 600},
        },
        supports_check_mode=True,
    )
    p = module.params
    source, lists_dir = p["source"], p["lists_dir"]
    read = read_lists(module, source, lists_dir) if p["mode"] == "docker" else None
    would, why = lists.choose(p["mode"], read, p["lists_max_age"])
    why = "; ".join(w for w in (p["why"], why) if w)
    apt = Apt(module, p["lock_timeout"])
    result: Data = {"changed": True, "would": would, "why": why}
    if module.check_mode:
        module.exit_json(refreshed="none", seconds={}, lock_waits=0, **result)
    refreshed = would
    if would == "docker":
        marks = Marks(lists_dir)
        ok, output = apt.update("docker", source)
        marks.restore()
        if ok:
            started = time.monotonic()
            ok = solvable(p["specs"])
            apt.seconds["check"] = round(time.monotonic() - started, 3)
            if not ok:  # apt's own words for why not
                _rc, output = apt.run(
                    "explain",
                    lists.check_argv(
                        p["specs"], p["allow_downgrade"], p["allow_change_held_packages"]
                    ),
                )
            failure = "with Docker's lists alone apt cannot install %s: %s"
        else:
            failure = "refreshing Docker's source alone failed: %s"
        if not ok:
            refreshed = "full"
            why += "; " + failure % (" ".join(p["specs"]), lists.errors(output))
    if refreshed == "full":
        ok, output = full(apt, source)
        if not ok:
            module.fail_json(
                msg="apt-get update failed: %s" % lists.errors(output),
                refreshed="none",
                seconds=apt.seconds,
                lock_waits=apt.lock_waits,
                **result,
            )
    result.update(would=refreshed, why=why)
    module.exit_json(refreshed=refreshed, seconds=apt.seconds, lock_waits=apt.lock_waits, **result)


if __name__ == "__main__":
    main()

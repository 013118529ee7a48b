#!/usr/bin/python
# Docker's packages installed in one module call: apt's lists read again first when the plan
# says so (Docker's source alone when the distribution's lists are current, every source
# otherwise), then one apt-get install; an install that fails on Docker's lists alone gets every
# list and one more try. One call instead of a refresh module and the apt module: the apt module
# builds python-apt's cache and then runs apt-get, which builds it again (~1.8 s on focal).
# apt itself (the lock waits, refreshes, readings): module_utils/docker_apt_runner.py; the
# decisions over its output: module_utils/docker_apt_lists.py.
from __future__ import annotations

DOCUMENTATION = r"""
module: docker_apt_install
short_description: Install Docker's packages, reading apt's lists again only as far as needed
version_added: 0.2.0
description:
- With O(refresh=docker), reads whether the distribution's lists are current (every suite's
  Release file and every index file it names present, as C(apt-get indextargets) lists them,
  leaving out O(source); the last full refresh, after apt's periodic stamps or the lists
  directory, at most O(lists_max_age) seconds ago). When they are, refreshes O(source) alone
  (C(apt-get update) with it as the only source list, C(APT::Get::List-Cleanup=0) so that every
  other list stays); when they are not, every source. With O(refresh=full), every source; with
  O(refresh=none), none.
- A refresh of Docker's source alone leaves the marks of the last full refresh (apt's periodic
  stamps, the lists directory's mtime) as they were, so it never makes the next reading think
  the distribution's lists are newer than they are.
- Then installs O(specs) in one C(apt-get install) (no questions; changed configuration files
  kept, as the apt module does). A version with a glob (C(5:27.*)) is resolved to the newest
  version C(apt-cache madison) lists that matches. apt-get resolves and downloads everything
  before dpkg changes anything, so an install that fails on Docker's lists alone (a dependency
  the distribution's lists do not have, an archive the mirror no longer serves) changed nothing;
  every source is then refreshed and the install tried once more.
- When the install fails, C(apt-cache policy) tells whether apt has a candidate for
  O(engine_package) at all; the message says which repository, suite, component and
  architecture have none.
- Waits up to O(lock_timeout) seconds for another apt or dpkg that holds apt's lock, like the
  apt module's C(lock_timeout). A full refresh that cannot fetch an index of Docker's
  repository (C(url) of O(repository)) is tried again (5 tries, waiting 1, 2, 4, 8 s), as the apt
  module does, then fails naming that URL and apt's reason. An index of any other source that
  cannot be fetched (a PPA that went away) is a warning naming it, and the install goes on from
  the lists apt has (C(apt-get update) itself exits 0 then).
- In check mode it reads and reports the refresh it would run and refreshes nothing; with
  O(simulate) it asks apt (C(--simulate)) what the install would change, otherwise it reports
  the install as a change.
options:
  refresh:
    description:
    - C(docker) when only Docker's key or source changed (a narrower refresh may do), C(full)
      when every source must be read again, C(none) when apt's lists serve as they are.
    type: str
    choices: [none, docker, full]
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
    description:
    - The packages to install (C(name) or C(name=version), the version possibly a glob). Empty
      refreshes only.
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
  simulate:
    description:
    - In check mode, ask apt what the install would change (apt's lists must already name
      Docker's packages).
    type: bool
    default: false
  engine_package:
    description: The package whose candidate a failure message reports on.
    type: str
    default: docker-ce
  repository:
    description:
    - Where the failure message says apt looked (keys C(url), C(suite), C(component),
      C(architecture)).
    type: dict
    default: {}
  hint:
    description: What to check, added to the message when apt has no candidate at all.
    type: str
    default: ""
  after_install:
    description:
    - After the install, read what the packages' maintainer scripts left for the role's service
      and users steps (units, daemon.json, the record, users, the docker group; keys C(want),
      C(paths), C(rules) as docker_host_facts takes them, and C(login_user)) and return it with
      the plan for those steps, saving the role a round trip.
    type: dict
  socket:
    description:
    - dockerd's socket, asked once after the install whether the engine answers (only when
      C(docker.service) is active, since a connection would start a socket-activated engine).
    type: path
    default: /var/run/docker.sock
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
- name: Install the Docker packages (reading Docker's source alone when that is enough)
  provision.hosts.docker_apt_install:
    refresh: docker
    source: /etc/apt/sources.list.d/docker.sources
    specs: [docker-ce, docker-ce-cli, containerd.io, docker-buildx-plugin, docker-compose-plugin]
  register: docker__apt_install
"""

RETURN = r"""
unfetched:
  description:
  - Lists of sources other than Docker's that apt-get update could not fetch (each also a
    warning); the install went on from the lists apt has.
  returned: always
  type: list
  elements: str
refreshed:
  description:
  - The first refresh, C(docker) (Docker's source alone), C(full) (every source), or C(none)
    (none asked for, or check mode).
  returned: always
  type: str
  sample: docker
would:
  description: The refresh that runs first (in check mode, the one that would run).
  returned: always
  type: str
  sample: docker
why:
  description: Why this refresh, in one sentence.
  returned: always
  type: str
  sample: only Docker's key or source changed and the distribution's lists are current
retried:
  description:
  - Why the install was tried again after a full refresh (it failed on Docker's lists alone);
    empty when it was not.
  returned: always
  type: str
installed:
  description: The packages apt installed or upgraded (in check mode with O(simulate), would).
  returned: always
  type: list
  elements: str
after_install:
  description:
  - With O(after_install), after an install (or its simulation), the reading (C(host)) and the
    plan of the service and users steps (C(plan), with C(service) and C(users)).
  returned: when an install ran
  type: dict
engine_answers:
  description: dockerd answered on O(socket) right after the install.
  returned: always
  type: bool
seconds:
  description:
  - Seconds per step (C(read), C(docker), C(full), C(resolve), C(install), C(after)), lock
    waits included.
  returned: always
  type: dict
lock_waits:
  description: How many times apt-get found apt's lock held and was started again.
  returned: always
  type: int
"""

import time
from typing import List, Tuple

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.provision.hosts.plugins.module_utils import docker_apt_lists as lists
from ansible_collections.provision.hosts.plugins.module_utils import docker_engine
from ansible_collections.provision.hosts.plugins.module_utils.docker_apt_runner import (
    ENVIRON,
    Apt,
    Marks,
    full,
    read_lists,
    resolve,
)
from ansible_collections.provision.hosts.plugins.module_utils.docker_host_read import (
    hide_credentials,
    read_after_install,
    with_default_users,
)
from ansible_collections.provision.hosts.plugins.module_utils.docker_plan import Data
from ansible_collections.provision.hosts.plugins.module_utils.docker_proxy import secrets


def install(apt: Apt, p: Data) -> Tuple[bool, str, List[str]]:
    """One apt-get install of the specs: (succeeded, apt's output, what it installed)."""
    specs, unmatched = resolve(apt, p["specs"])
    if unmatched:
        return False, "E: no version in apt's lists matches %s" % ", ".join(unmatched), []
    argv = lists.install_argv(
        specs, p["allow_downgrade"], p["allow_change_held_packages"], apt.module.check_mode
    )
    rc, output = apt.run("install", argv)
    return rc == 0, output, lists.installed_by(output)


def failure(apt: Apt, p: Data, output: str) -> str:
    """What went wrong: no candidate at all (the repository, suite, component or architecture
    is wrong), or apt's own error lines."""
    _rc, policy, _err = apt.module.run_command(
        ["apt-cache", "policy", p["engine_package"]], environ_update=ENVIRON
    )
    if not lists.has_candidate(policy):
        repo = p["repository"] or {}
        found = "apt finds no %s in %s (suite %s, component %s, architecture %s)." % (
            p["engine_package"],
            repo.get("url", "its sources"),
            repo.get("suite", "?"),
            repo.get("component", "?"),
            repo.get("architecture", "?"),
        )
        return " ".join(m for m in (found, p["hint"]) if m)
    return "apt-get install %s failed: %s" % (" ".join(p["specs"]), lists.errors(output))


def after_install(apt: Apt, spec: Data, sock: str) -> Data:
    """What the maintainer scripts left, whether dockerd answers already, and the service and
    users steps that follow (docker_host_read.read_after_install)."""
    started, module = time.monotonic(), apt.module
    want = with_default_users(spec["want"], spec.get("login_user"))
    reading = read_after_install(module, want, spec["paths"], spec["rules"], sock)
    apt.seconds["after"] = round(time.monotonic() - started, 3)
    answers = reading.pop("engine_answers")
    return {"after_install": reading, "engine_answers": answers}


ARGUMENTS: Data = {
    "refresh": {"type": "str", "choices": ["none", "docker", "full"], "required": True},
    "why": {"type": "str", "default": ""},
    "source": {"type": "path", "required": True},
    "specs": {"type": "list", "elements": "str", "required": True},
    "allow_downgrade": {"type": "bool", "default": False},
    "allow_change_held_packages": {"type": "bool", "default": False},
    "simulate": {"type": "bool", "default": False},
    "engine_package": {"type": "str", "default": "docker-ce"},
    "repository": {"type": "dict", "default": {}},
    "hint": {"type": "str", "default": ""},
    "after_install": {"type": "dict"},
    "socket": {"type": "path", "default": docker_engine.SOCKET},
    "lists_max_age": {"type": "int", "default": 86400},
    "lists_dir": {"type": "path", "default": "/var/lib/apt/lists"},
    "lock_timeout": {"type": "int", "default": 600},
}


class Run:
    """One run: the refresh chosen, apt, and the result it reports. Its steps return what they
    did; main() alone ends the module."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module, self.p = module, module.params
        started, would, why = time.monotonic(), "none", ""
        if self.p["refresh"] != "none":
            read = None
            if self.p["refresh"] == "docker":
                read = read_lists(module, self.p["source"], self.p["lists_dir"])
            would, why = lists.choose(self.p["refresh"], read, self.p["lists_max_age"])
        self.apt = Apt(module, self.p["lock_timeout"], (self.p["repository"] or {}).get("url", ""))
        if self.p["refresh"] != "none":
            self.apt.seconds["read"] = round(time.monotonic() - started, 3)
        self.result: Data = {
            "would": would,
            "why": "; ".join(w for w in (self.p["why"], why) if w),
            "retried": "",
            "installed": [],
            "engine_answers": False,
            "refreshed": "none",
            "unfetched": [],
        }

    def read_after_install(self) -> None:
        if self.p["after_install"]:
            self.result.update(after_install(self.apt, self.p["after_install"], self.p["socket"]))

    def check(self) -> Data:
        """Check mode: the refresh that would run, and with simulate what apt would install."""
        p, installed = self.p, []
        if p["simulate"] and p["specs"]:
            ok, output, installed = install(self.apt, p)
            if not ok:
                return {"failed": True, "changed": False, "msg": self.failure(output)}
            self.read_after_install()
        would_install = bool(installed) or (not p["simulate"] and bool(p["specs"]))
        return {"changed": self.result["would"] != "none" or would_install, "installed": installed}

    def refresh(self) -> str:
        """The refresh that ran ("none" when every source failed): Docker's source alone, or
        every source when that was chosen or failed."""
        would, source = self.result["would"], self.p["source"]
        if would == "docker":
            marks = Marks(self.p["lists_dir"])
            ok, output = self.apt.update("docker", source)
            marks.restore()
            if not ok:
                would = "full"
                self.result["why"] += "; refreshing Docker's source alone failed: %s" % (
                    lists.errors(output)
                )
        if would == "full":
            ok, output = full(self.apt, source)
            if not ok:
                self.result["msg"] = "apt-get update failed: %s" % lists.update_failure(
                    output, self.apt.repository_url
                )
                return "none"
        self.result.update(refreshed=would, would=would)
        return would

    def apply(self) -> Data:
        """The refresh, the install (again with every list when Docker's alone did not do),
        and the reading after it."""
        p = self.p
        refreshed = self.refresh()
        if "msg" in self.result:
            return {"failed": True, "changed": False}
        if not p["specs"]:
            return {"changed": refreshed != "none"}
        ok, output, installed = install(self.apt, p)
        if not ok and refreshed == "docker":
            # Nothing changed yet (apt-get resolves and downloads before dpkg runs): every list.
            self.result["retried"] = "with Docker's lists alone apt could not install %s: %s" % (
                " ".join(p["specs"]),
                lists.errors(output),
            )
            ok, output = full(self.apt, p["source"])
            if ok:
                ok, output, installed = install(self.apt, p)
        if not ok:
            return {"failed": True, "changed": refreshed != "none", "msg": self.failure(output)}
        self.read_after_install()
        return {"changed": True, "installed": installed}

    def failure(self, output: str) -> str:
        return failure(self.apt, self.p, output)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENTS, supports_check_mode=True)
    if module.params.get("after_install"):
        hide_credentials(module, module.params["after_install"]["want"])
    # docker_proxy's credentials come along in after_install's want: masked in the result
    module.no_log_values.update(
        secrets(((module.params["after_install"] or {}).get("want") or {}).get("proxy"))
    )
    run = Run(module)
    outcome = run.check() if run.module.check_mode else run.apply()
    # Sources other than Docker's that apt could not fetch, from every refresh of the run.
    for url, reason in sorted(run.apt.foreign.items()):
        run.module.warn(lists.foreign_warning(url, reason))
    run.result["unfetched"] = sorted(run.apt.foreign)
    result = dict(run.result, seconds=run.apt.seconds, lock_waits=run.apt.lock_waits)
    result.update(outcome)
    if result.get("failed"):
        run.module.fail_json(**result)
    run.module.exit_json(**result)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# Read, in one module call, everything about a host that the docker role decides on, and return
# the plan the role follows (module_utils/docker_plan.py decides; this module only reads). The
# role's change steps then run only where the host differs from what it should be, so a run on a
# host that is already right costs one round trip instead of one per task.
from __future__ import annotations

DOCUMENTATION = r"""
module: docker_host_facts
short_description: Read the host state the docker role decides on, and plan the changes
version_added: 0.1.0
description:
- >-
  Reads /etc/os-release, the dpkg architecture, the installed state of the packages the role
  deals with, a pending dpkg journal, the repository key (strictly: one armored block, one
  primary key), the files and directories the role manages, apt sources and keys that point at
  Docker's repository, the engine's systemd units, and the users and group.
- Returns the plan of module_utils/docker_plan.py; reads that cost a process or a connection
  (apt's candidate, the engine package's versions apt offers, C(dpkg --audit), the running
  engine's containers and live-restore) are made only when a decision depends on them.
- Fails, changing nothing, with every problem of the plan in one message; shows its warnings.
- Changes nothing; runs in check mode too.
options:
  want:
    description:
    - The role's variables without their C(docker_) prefix (state, repository_url, key_url,
      fingerprint, channel, architecture, packages, version, version_packages,
      remove_conflicting_packages, conflicting_packages, remove_running_engine,
      restart_running_engine, daemon_options, registry_mirrors, insecure_registries,
      live_restore, users, purge_data, service_enabled, service_state).
    - An empty repository_url, key_url or architecture means the host's default.
    type: dict
    required: true
  paths:
    description: The paths the role manages and reads (the role's vars/main.yml C(docker__paths)).
    type: dict
    required: true
  rules:
    description: The role's constants (the role's vars/main.yml C(docker__rules)).
    type: dict
    required: true
  login_user:
    description:
    - The user Ansible connects as, when the inventory names it (C(ansible_user)).
    - Used only when the C(users) of O(want) is null (the role's default), to choose the user
      added to the C(docker) group; without it, the user sudo names on the host (C(SUDO_USER)),
      else the current user. Root is never added by default.
    type: str
  scope:
    description:
    - C(all) reads everything and returns the whole plan.
    - C(after_install) reads only the units, daemon.json, the record, the users and the group,
      and returns the plan's C(service) and C(users) steps (after the packages' maintainer
      scripts have started units and created the group), with C(engine_answers).
    - Deprecated, removed in 1.0.0. M(provision.hosts.docker_apt_install) returns that reading
      and those steps right after the install (its C(after_install) option).
    type: str
    choices: [all, after_install]
    default: all
author:
- provision maintainers (@provision)
"""

EXAMPLES = r"""
- name: Read the host and plan what to change
  provision.hosts.docker_host_facts:
    want: "{{ docker__want }}"
    paths: "{{ docker__paths }}"
    rules: "{{ docker__rules }}"
  register: docker__probe
"""

RETURN = r"""
host:
  description: What was read (os, architecture, packages, dpkg, key, files, dirs, sources,
    legacy_keys, apt_key_fingerprints, units, users, group, and when asked engine, candidate,
    versions).
  returned: always
  type: dict
plan:
  description: What to change, step by step (see module_utils/docker_plan.py); with
    O(scope=after_install) only its C(service) and C(users) steps.
  returned: always
  type: dict
"""

import fnmatch
import hashlib
import json
import os
import platform
import re
import stat
from typing import Dict, List, Optional

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.provision.hosts.plugins.module_utils import docker_engine
from ansible_collections.provision.hosts.plugins.module_utils.docker_apt_lists import (
    candidates,
    has_candidate,
    parse_madison,
)
from ansible_collections.provision.hosts.plugins.module_utils.docker_apt_sources import (
    auth_content,
    normalize_uri,
)
from ansible_collections.provision.hosts.plugins.module_utils.docker_formats import (
    TLS_OPTIONS,
    credentials_in,
)
from ansible_collections.provision.hosts.plugins.module_utils.docker_host_read import (
    cli_configs,
    hide_credentials,
    login_user,
    path_state,
    read_after_install,
    read_bytes,
    read_service_side,
    text_file,
    with_default_users,
)
from ansible_collections.provision.hosts.plugins.module_utils.docker_openpgp import (
    OpenPGPError,
    key_fingerprint,
    primary_fingerprints,
)
from ansible_collections.provision.hosts.plugins.module_utils.docker_plan import (
    Data,
    make_plan,
    resolve,
)
from ansible_collections.provision.hosts.plugins.module_utils.docker_proxy import secrets

# A URL with user information, as a JSON document holds it (up to a quote or a space).
_USERINFO_URL = re.compile(r"""(?i)\b[a-z][a-z0-9+.-]*://[^/?#@\s"']+@[^\s"']*""")


def os_release() -> Dict[str, str]:
    fields = {}
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        if os.path.exists(path):
            with open(path, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    name, sep, value = line.strip().partition("=")
                    if sep and re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                        fields[name] = value.strip().strip("\"'")
            break
    # Ubuntu derivatives carry UBUNTU_CODENAME: they use Docker's Ubuntu packages.
    ubuntu = fields.get("UBUNTU_CODENAME", "")
    return {
        "distribution": "ubuntu" if ubuntu else fields.get("ID", "unknown").lower(),
        "codename": ubuntu or fields.get("VERSION_CODENAME", ""),
        "name": fields.get("PRETTY_NAME") or fields.get("NAME") or "an unknown OS",
    }


def run(module: AnsibleModule, argv: List[str]) -> str:
    _rc, out, _err = module.run_command(argv, environ_update={"LC_ALL": "C"})
    return str(out)


def packages(module: AnsibleModule, names: List[str]) -> Data:
    found: Data = {}
    if not names:
        return found
    # dpkg-query exits 1 when some names are unknown: that only means "not installed".
    out = run(
        module,
        [
            "dpkg-query",
            "--show",
            "--showformat=${Package}\t${db:Status-Want}\t${db:Status-Status}\t${Version}\n",
        ]
        + list(names),
    )
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) != 4:
            continue
        name, want, status, version = parts
        if found.get(name, {}).get("status") == "installed":
            continue  # another architecture's record of an installed package
        found[name] = {"want": want, "status": status, "version": version}
    return found


def candidate(module: AnsibleModule, name: str) -> Optional[bool]:
    """True/False: apt has an install candidate; None: apt could not tell (broken sources)."""
    rc, out, _err = module.run_command(
        ["apt-cache", "policy", name], environ_update={"LC_ALL": "C"}
    )
    return has_candidate(out) if rc == 0 else None


def key_file(path: str) -> Data:
    """The installed repository key, read as strictly as a download (docker_openpgp)."""
    state = path_state(path)
    if state["exists"] and state["is_dir"]:
        state["problem"] = "is a directory"
    elif state["exists"]:
        try:
            state["fingerprint"] = key_fingerprint(read_bytes(path))
        except OpenPGPError as error:
            state["problem"] = str(error)
    return state


def regular_files(directory: str) -> List[str]:
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    paths = (os.path.join(directory, n) for n in names)
    return [p for p in paths if os.path.isfile(p)]


def sources(paths: Data, rules: Data, repository_url: str) -> Data:
    """Contents of the apt source files that may hold Docker's entries: named like Docker's
    legacy files, or mentioning Docker's repository or the configured one (the plan parses
    them precisely)."""
    needles = ["download.docker.com/linux", normalize_uri(repository_url)]
    found = {}
    for path in regular_files(paths["sources_dir"]) + [paths["main_list"]]:
        name = os.path.basename(path)
        try:
            content = read_bytes(path).decode("utf-8", errors="replace")
        except OSError:
            continue
        named = any(fnmatch.fnmatch(name, p) for p in rules["legacy_source_patterns"])
        if named or path == paths["source"] or any(n and n in content for n in needles):
            found[path] = dict(source_file(path), content=content)
    return found


def source_file(path: str) -> Data:
    """Where a source file's content lives and whose it is: for a symlink, its target (the
    link's own lstat mode is 0777 and says nothing), whether that is a root-owned regular file
    under /etc/apt (the plan edits it there only then)."""
    link = os.path.islink(path)
    target = os.path.realpath(path) if link else path
    state = path_state(target)
    return {
        "mode": state.get("mode", "0644"),
        "uid": state.get("uid", 0),
        "link": link,
        "target": target,
        "target_ok": (not link)
        or (target.startswith("/etc/apt/") and os.path.isfile(target) and state.get("uid") == 0),
    }


def legacy_keys(paths: Data, rules: Data) -> List[str]:
    """Key files of earlier install guides: docker* in trusted.gpg.d, and fixed paths."""
    found = [
        p
        for p in regular_files(paths["trusted_dir"])
        if any(
            fnmatch.fnmatch(os.path.basename(p), pat)
            for pat in rules["legacy_trusted_key_patterns"]
        )
    ]
    return found + [p for p in rules["legacy_key_paths"] if os.path.lexists(p)]


def apt_key_fingerprints(module: AnsibleModule, keyring: str) -> List[str]:
    if not os.path.isfile(keyring) or os.path.getsize(keyring) == 0:
        return []
    try:
        return primary_fingerprints(read_bytes(keyring))
    except OpenPGPError as error:
        module.warn(
            "cannot read %s: the key %s; Docker's key in it, if any, stays" % (keyring, error)
        )
        return []


def dpkg_journal(directory: str) -> List[str]:
    """dpkg's pending journal: what an interrupted dpkg run leaves (apt refuses to run)."""
    try:
        return sorted(n for n in os.listdir(directory) if n.isdigit())
    except OSError:
        return []


def md5_hex(data: bytes) -> str:
    """dpkg's conffile checksum (not for security: usedforsecurity where Python has it)."""
    try:
        return hashlib.new("md5", data, usedforsecurity=False).hexdigest()  # type: ignore[call-arg]
    except TypeError:  # Python 3.8
        return hashlib.new("md5", data).hexdigest()  # noqa: S324 (dpkg's checksum, not a secret)


def containerd_users(module: AnsibleModule, paths: Data) -> List[str]:
    """Why containerd may serve more than Docker here: a kubelet, or a containerd configuration
    that is not the one containerd.io installed (its conffile's checksum differs, or no
    package owns it)."""
    found = []
    if os.path.exists(paths["kubelet"]):
        found.append("%s exists" % paths["kubelet"])
    config = paths["containerd_config"]
    if os.path.isfile(config):
        conffiles = run(module, ["dpkg-query", "-W", "-f=${Conffiles}", "containerd.io"])
        shipped = dict(
            (w[0], w[1]) for w in (line.split() for line in conffiles.splitlines()) if len(w) >= 2
        )
        digest = md5_hex(read_bytes(config))
        if shipped.get(config) != digest:
            found.append("%s is not containerd.io's" % config)
    return found


def holds_data(path: str) -> bool:
    """A data directory with something to delete: present, and not an empty mount point (which
    docker_purge_data empties and leaves)."""
    if not os.path.isdir(path):
        return False
    return not os.path.ismount(path) or bool(os.listdir(path))


def tls_files(options: Data) -> Data:
    """The TLS files docker_daemon_options names (the plan checks them for a TCP listener)."""
    found = {}
    for name in TLS_OPTIONS:
        path = options.get(name)
        if not (isinstance(path, str) and path.startswith("/")):
            continue
        try:
            info = os.stat(path)  # what dockerd opens: a link's target
        except OSError:
            found[path] = {"exists": False}
            continue
        found[path] = {
            "exists": True,
            "is_file": stat.S_ISREG(info.st_mode),
            "mode": "%04o" % stat.S_IMODE(info.st_mode),
            "uid": info.st_uid,
        }
    return found


def auth_file(path: str, repository_url: str, marker: str) -> Data:
    """The role's credentials file in auth.conf.d: its attributes, whether the role wrote it and
    whether it holds exactly the login of REPOSITORY_URL. Never its content: that is a secret."""
    state = path_state(path)
    if state["exists"] and not state["is_dir"] and not os.path.islink(path):
        content = read_bytes(path).decode("utf-8", errors="replace")
        state["ours"] = content.startswith(marker)
        state["current"] = content == auth_content(repository_url, marker)
    return state


def read_host(module: AnsibleModule, want: Data, paths: Data, rules: Data) -> Data:
    host = read_service_side(module, want, paths, rules)
    host["os"] = os_release()
    host["architecture"] = run(module, ["dpkg", "--print-architecture"]).strip()
    resolved = resolve(host["os"], host["architecture"], want)
    probed = (
        list(rules["prerequisite_packages"])
        + list(want["packages"])
        + list(want["conflicting_packages"])
        + list(rules["absent_extra_packages"])
    )
    host.update(
        {
            "machine": platform.machine(),
            "login_user": login_user(),
            "packages": packages(module, sorted(set(probed))),
            "dpkg": {"journal": dpkg_journal(paths["dpkg_updates"])},
            "key": key_file(paths["key"]),
            "dirs": {
                p: path_state(p)
                for p in (paths["keyring_dir"], paths["docker_dir"], paths["facts_dir"])
            },
            "sources": sources(paths, rules, resolved["repository_url"]),
            "legacy_keys": legacy_keys(paths, rules),
            "apt_key_fingerprints": apt_key_fingerprints(module, paths["apt_key_keyring"]),
            "data_dirs": [p for p in paths["data_dirs"] if holds_data(p)],
            "tls_files": tls_files(want.get("daemon_options") or {}),
            "containerd_users": (
                containerd_users(module, paths) if want["state"] == "absent" else []
            ),
            "read": [],
        }
    )
    host["files"].update(
        {
            "source": text_file(paths["source"]),
            "daemon_json": text_file(paths["daemon_json"]),
            "auth": auth_file(
                paths["auth"], want.get("repository_url") or "", rules["source_marker"]
            ),
            "apt_proxy": text_file(paths["apt_proxy"]),
        }
    )
    return host


def read_more(module: AnsibleModule, host: Data, plan: Data, paths: Data, rules: Data) -> None:
    """The readings the plan asked for (its needs)."""
    for name in plan["needs"]:
        if name == "engine":
            host["engine"] = docker_engine.state(paths["socket"])
        elif name == "candidate":
            host["candidate"] = candidate(module, rules["engine_package"])
        elif name == "versions":
            host["versions"] = parse_madison(
                run(module, ["apt-cache", "madison", rules["engine_package"]])
            )
        elif name == "dpkg_audit":
            host["dpkg"]["audit"] = run(module, ["dpkg", "--audit"])
        elif name == "prerequisite_candidates":
            policy = run(module, ["apt-cache", "policy"] + plan["prerequisites"]["missing"])
            host["prerequisite_candidates"] = candidates(policy)
        host["read"].append(name)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "want": {"type": "dict", "required": True},
            "paths": {"type": "dict", "required": True},
            "rules": {"type": "dict", "required": True},
            "login_user": {"type": "str"},
            "scope": {
                "type": "str",
                "choices": ["all", "after_install"],
                "default": "all",
                # the role takes that reading from docker_apt_install, which plans it as well
                "removed_in_version": "1.0.0",
                "removed_from_collection": "provision.hosts",
            },
        },
        supports_check_mode=True,
    )
    paths, rules = module.params["paths"], module.params["rules"]
    # docker_proxy's credentials: masked wherever the plan and the reading carry them
    module.no_log_values.update(secrets(module.params["want"].get("proxy")))
    want = with_default_users(module.params["want"], module.params["login_user"])
    hide_credentials(module, want)
    if module.params["scope"] == "after_install":
        reading = read_after_install(module, want, paths, rules, docker_engine.SOCKET)
        module.exit_json(changed=False, **reading)
    host = read_host(module, want, paths, rules)
    # a password in a daemon.json someone else wrote is masked too (docker_daemon_config writes
    # the key back from the file itself)
    module.no_log_values.update(credentials_in(host["files"]["daemon_json"].get("json")))
    host["cli_configs"] = cli_configs(want.get("users") or [], want.get("proxy"))
    host["check_mode"] = module.check_mode  # what the install can ask apt (its candidate)
    plan = make_plan(host, want, paths, rules)
    for _round in range(3):  # each reading may lead to a decision that needs another
        if not plan["needs"]:
            break
        read_more(module, host, plan, paths, rules)
        plan = make_plan(host, want, paths, rules)
    for warning in plan["warnings"]:
        module.warn(warning)
    if plan["problems"]:
        module.fail_json(msg=" ".join(plan["problems"]))
    clash = masking_clash(module, {"host": host, "plan": plan})
    if clash:
        module.fail_json(msg=clash)
    module.exit_json(changed=False, host=host, plan=plan)


def masking_clash(module: AnsibleModule, result: Data) -> str:
    """Ansible masks a secret wherever its text occurs in the result. One that also occurs
    outside the URLs that hold it (a password such as "docker") would be masked in paths, names
    and contents the tasks then use: stop instead, before anything changes, with one line."""
    text = json.dumps(result)
    for url in _USERINFO_URL.findall(text):
        text = text.replace(url, "")
    short = sorted(s for s in module.no_log_values if s and s in text)
    if not short:
        return ""
    return (
        "A password given to the role (in docker_proxy, docker_apt_repository_url or daemon.json)"
        " also occurs elsewhere in what the role reads or plans, where hiding it from the output"
        " would change what the role writes: use a longer, unique password (%d found)." % len(short)
    )


if __name__ == "__main__":
    main()

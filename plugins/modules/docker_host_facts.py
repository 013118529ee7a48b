#!/usr/bin/python
# Read, in one module call, everything about a host that the docker role decides on. The role's
# change tasks then run only where the host differs from what it should be, so a run on a host
# that is already right costs one round trip instead of one per task.
from __future__ import annotations

DOCUMENTATION = r"""
module: docker_host_facts
short_description: Read the host state the docker role decides on (read-only)
description:
- Reads /etc/os-release, the dpkg architecture, the installed state of O(packages), whether apt
  has an install candidate for O(candidate_package), the files and directories the role manages,
  legacy Docker apt sources and keys, the systemd units, and the users and group.
- Changes nothing; runs in check mode too.
options:
  packages:
    description: Packages whose dpkg state is read.
    type: list
    elements: str
    default: []
  candidate_package:
    description: Package whose apt install candidate is looked up.
    type: str
  key_path:
    description: The installed repository key; its fingerprints are read.
    type: path
  files:
    description: Name to path of small text files whose content is read.
    type: dict
    default: {}
  dirs:
    description: Directories whose existence and mode are read.
    type: list
    elements: path
    default: []
  units:
    description: systemd units whose state is read.
    type: list
    elements: str
    default: []
  config_path:
    description: The file whose change time is compared with the engine's start.
    type: path
  engine_unit:
    description: The unit started with O(config_path).
    type: str
    default: docker
  users:
    description: Users whose existence is read.
    type: list
    elements: str
    default: []
  group:
    description: Group whose existence and members are read.
    type: str
    default: docker
  legacy:
    description: Where to look for legacy sources and keys (see the role's vars/main.yml).
    type: dict
    default: {}
"""

RETURN = r"""
host:
  description: What was read; see the role's tasks/probe.yml for how each part is used.
  returned: always
  type: dict
"""

import fnmatch
import grp
import json
import os
import platform
import pwd
import re
import stat
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.provision.hosts.plugins.module_utils.docker_openpgp import (
    OpenPGPError,
    primary_fingerprints,
)

MAX_FILE_BYTES = 1 << 20
CANDIDATE = re.compile(r"^\s*Candidate: (?!\(none\))", re.MULTILINE)


def os_release():
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


def run(module, argv):
    rc, out, _err = module.run_command(argv, environ_update={"LC_ALL": "C"})
    return rc, out


def packages(module, names):
    found = {}
    if not names:
        return found
    # dpkg-query exits 1 when some names are unknown: that only means "not installed".
    _rc, out = run(
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


def candidate(module, name):
    """True/False: apt has an install candidate; None: apt could not tell (broken sources)."""
    if not name:
        return None
    rc, out = run(module, ["apt-cache", "policy", name])
    return bool(CANDIDATE.search(out)) if rc == 0 else None


def path_state(path):
    try:
        info = os.lstat(path)
    except OSError:
        return {"exists": False}
    return {
        "exists": True,
        "is_dir": stat.S_ISDIR(info.st_mode),
        "mode": "%04o" % stat.S_IMODE(info.st_mode),
        "uid": info.st_uid,
        "gid": info.st_gid,
        "mtime": info.st_mtime,
    }


def read_bytes(path):
    with open(path, "rb") as handle:
        return handle.read(MAX_FILE_BYTES)


def text_file(path):
    """State and content of a small text file; a JSON file (.json, .fact) is parsed too."""
    state = path_state(path)
    if state["exists"] and not state["is_dir"]:
        state["content"] = read_bytes(path).decode("utf-8", errors="replace")
        if path.endswith((".json", ".fact")):
            try:
                state["json"] = json.loads(state["content"])
            except ValueError as error:
                state["json_error"] = str(error)
    return state


def key_file(path):
    state = path_state(path)
    state["fingerprints"] = []
    if state["exists"] and not state["is_dir"]:
        try:
            state["fingerprints"] = primary_fingerprints(read_bytes(path))
        except OpenPGPError as error:
            state["error"] = str(error)
    return state


def matches_any_line(path, pattern):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return any(pattern.search(line) for line in handle)
    except OSError:
        return False


def regular_files(directory):
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    return [
        (n, os.path.join(directory, n)) for n in names if os.path.isfile(os.path.join(directory, n))
    ]


def legacy(module, spec):
    """Docker sources and keys that the role did not write (see tasks/legacy.yml)."""
    if not spec:
        return {"files": [], "main_list": False, "apt_key_fingerprints": []}
    pattern = re.compile(spec["source_regex"])
    own_source = spec["own_source_name"]
    files = []
    for name, path in regular_files(spec["sources_dir"]):
        if name == own_source:
            with open(path, encoding="utf-8", errors="replace") as handle:
                if not handle.read().startswith(spec["marker"]):
                    files.append(path)
        elif any(fnmatch.fnmatch(name, p) for p in spec["source_patterns"]) or matches_any_line(
            path, pattern
        ):
            files.append(path)
    for name, path in regular_files(spec["trusted_dir"]):
        if any(fnmatch.fnmatch(name, p) for p in spec["trusted_patterns"]):
            files.append(path)
    files += [p for p in spec["key_paths"] if os.path.lexists(p)]

    docker_keys = []
    keyring = spec["apt_key_keyring"]
    if os.path.isfile(keyring) and os.path.getsize(keyring) > 0:
        try:
            docker_keys = sorted(
                set(primary_fingerprints(read_bytes(keyring))) & set(spec["fingerprints"])
            )
        except OpenPGPError as error:
            module.warn("cannot read %s: %s; Docker's key in it, if any, stays" % (keyring, error))
    return {
        "files": sorted(set(files)),
        "main_list": matches_any_line(spec["main_list"], pattern),
        "apt_key_fingerprints": docker_keys,
    }


def units(module, names):
    found = {}
    if not names or not module.get_bin_path("systemctl"):
        return found
    props = "Id,LoadState,UnitFileState,ActiveState,ActiveEnterTimestampMonotonic"
    rc, out = run(module, ["systemctl", "show", "--property=" + props] + list(names))
    if rc != 0:
        return found
    # One block per unit, in the order asked, separated by an empty line.
    for name, block in zip(names, out.strip().split("\n\n")):
        fields = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        found[name] = {
            "load": fields.get("LoadState", ""),
            "enabled": fields.get("UnitFileState", ""),
            "active": fields.get("ActiveState", ""),
            "started_monotonic": int(fields.get("ActiveEnterTimestampMonotonic", "0") or 0),
        }
    return found


def engine_config_stale(unit, config):
    """The engine runs with an older configuration than the one on disk (a run that failed after
    writing it lost its restart handler)."""
    if (
        not unit
        or unit["active"] != "active"
        or not unit["started_monotonic"]
        or not config["exists"]
    ):
        return False
    # systemd and Python read the same CLOCK_MONOTONIC: convert the start time to wall time.
    started = time.time() - (time.monotonic() - unit["started_monotonic"] / 1e6)
    return int(config["mtime"]) > int(started)


def users(names, group):
    try:
        entry = grp.getgrnam(group)
        group_state = {"exists": True, "members": list(entry.gr_mem)}
    except KeyError:
        group_state = {"exists": False, "members": []}
    known = {}
    for name in names:
        try:
            pwd.getpwnam(name)
            known[name] = True
        except KeyError:
            known[name] = False
    return known, group_state


def login_user():
    # With become, sudo names the user who connected; without it, that is the current user.
    return os.environ.get("SUDO_USER") or pwd.getpwuid(os.getuid()).pw_name


def main():
    module = AnsibleModule(
        argument_spec={
            "packages": {"type": "list", "elements": "str", "default": []},
            "candidate_package": {"type": "str"},
            "key_path": {"type": "path"},
            "files": {"type": "dict", "default": {}},
            "dirs": {"type": "list", "elements": "path", "default": []},
            "units": {"type": "list", "elements": "str", "default": []},
            "config_path": {"type": "path"},
            "engine_unit": {"type": "str", "default": "docker"},
            "users": {"type": "list", "elements": "str", "default": []},
            "group": {"type": "str", "default": "docker"},
            "legacy": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    p = module.params
    _rc, architecture = run(module, ["dpkg", "--print-architecture"])
    unit_states = units(module, p["units"])
    known_users, group_state = users(p["users"], p["group"])
    host = {
        "os": os_release(),
        "architecture": architecture.strip(),
        "machine": platform.machine(),
        "login_user": login_user(),
        "packages": packages(module, p["packages"]),
        "candidate": candidate(module, p["candidate_package"]),
        "key": key_file(p["key_path"]) if p["key_path"] else {},
        "files": {name: text_file(path) for name, path in p["files"].items()},
        "dirs": {path: path_state(path) for path in p["dirs"]},
        "legacy": legacy(module, p["legacy"]),
        "units": unit_states,
        "engine_config_stale": engine_config_stale(
            unit_states.get(p["engine_unit"]),
            path_state(p["config_path"]) if p["config_path"] else {"exists": False},
        ),
        "users": known_users,
        "group": group_state,
    }
    module.exit_json(changed=False, host=host)


if __name__ == "__main__":
    main()

# What the docker role's service and users steps decide on, read from the host: the units, the
# daemon.json and the record of the keys the role owns, the users and the docker group. Read by
# docker_host_facts with everything else, and again by docker_apt_install right after an install
# (the packages' maintainer scripts start units and create the group).
# Python 3.8, standard library only.
from __future__ import annotations

import grp
import json
import os
import pwd
import stat
import time
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.provision.hosts.plugins.module_utils import docker_engine
from ansible_collections.provision.hosts.plugins.module_utils.docker_formats import (
    without_credentials,
)
from ansible_collections.provision.hosts.plugins.module_utils.docker_plan import (
    Data,
    after_install_plan,
    default_users,
)
from ansible_collections.provision.hosts.plugins.module_utils.docker_proxy import configured

MAX_FILE_BYTES = 1 << 20
UNIT_PROPERTIES = "LoadState,UnitFileState,ActiveState,SubState,ActiveEnterTimestampMonotonic"


def path_state(path: str) -> Data:
    try:
        info = os.lstat(path)
    except OSError:
        return {"exists": False, "path": path}
    return {
        "path": path,
        "exists": True,
        "is_dir": stat.S_ISDIR(info.st_mode),
        "mode": "%04o" % stat.S_IMODE(info.st_mode),
        "uid": info.st_uid,
        "gid": info.st_gid,
        "mtime": info.st_mtime,
        "mtime_ns": info.st_mtime_ns,
    }


def read_bytes(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(MAX_FILE_BYTES)


def text_file(path: str) -> Data:
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


def units(module: Any, names: List[str]) -> Data:
    found: Data = {}
    if not names or not module.get_bin_path("systemctl"):
        return found
    rc, out, _err = module.run_command(
        ["systemctl", "show", "--property=" + UNIT_PROPERTIES] + list(names),
        environ_update={"LC_ALL": "C"},
    )
    if rc != 0:
        return found
    # systemd and Python read the same CLOCK_MONOTONIC: start times become wall-clock times.
    offset = time.time() - time.monotonic()
    # One block per unit, in the order asked, separated by an empty line.
    for name, block in zip(names, out.strip().split("\n\n")):
        fields = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        started = int(fields.get("ActiveEnterTimestampMonotonic", "0") or 0)
        found[name] = {
            "load": fields.get("LoadState", ""),
            "enabled": fields.get("UnitFileState", ""),
            "active": fields.get("ActiveState", ""),
            "sub": fields.get("SubState", ""),
            "started_at": offset + started / 1e6 if started else 0,
        }
    return found


def users(names: List[str], group: str) -> Tuple[Dict[str, bool], Data]:
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


def cli_configs(names: List[str], proxy: Optional[Data]) -> Data:
    """Each existing user's ~/.docker/config.json and its directory, when docker_proxy names a
    proxy (the users' proxies are written only then)."""
    if not configured(proxy):
        return {}
    found = {}
    for name in names:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        directory = os.path.join(entry.pw_dir, ".docker")
        found[name] = {
            "uid": entry.pw_uid,
            "gid": entry.pw_gid,
            "dir": path_state(directory),
            "file": cli_config_file(os.path.join(directory, "config.json")),
        }
    return found


def cli_config_file(path: str) -> Data:
    """A user's config.json as the plan needs it: its attributes, whether it holds a JSON object,
    and its proxies.default. Never the rest: its "auths" are the user's registry logins."""
    state = path_state(path)
    if state["exists"] and not state["is_dir"]:
        try:
            document = json.loads(read_bytes(path).decode("utf-8"))
        except ValueError:
            document = None
        state["json_object"] = isinstance(document, dict)
        proxies = document.get("proxies") if isinstance(document, dict) else None
        default = proxies.get("default") if isinstance(proxies, dict) else None
        state["proxies_default"] = default if isinstance(default, dict) else {}
    return state


def login_user() -> str:
    # With become, sudo names the user who connected; without it, that is the current user.
    return os.environ.get("SUDO_USER") or pwd.getpwuid(os.getuid()).pw_name


def read_service_side(module: Any, want: Data, paths: Data, rules: Data) -> Data:
    """What the service and users steps decide on."""
    known, group = users(want.get("users") or [], rules["group"])
    return {
        "units": units(module, rules["units"]),
        "files": {
            "daemon_json": path_state(paths["daemon_json"]),
            "record": text_file(paths["record"]),
            "users_record": text_file(paths["users_record"]),
            "hosts_dropin": text_file(paths["hosts_dropin"]),
        },
        "users": known,
        "group": group,
    }


def hide_credentials(module: Any, want: Data) -> None:
    """WANT's URLs that carry credentials are shown as ******** wherever the module's result or
    invocation would show them (the plan holds them only without their credentials)."""
    for name in ("repository_url", "key_url"):
        url = want.get(name) or ""
        if without_credentials(url) != url:
            module.no_log_values.add(url)


def with_default_users(want: Data, login_hint: Optional[str]) -> Data:
    """WANT with docker_users' default (null) resolved on the host: docker_plan.default_users of
    LOGIN_HINT (ansible_user) or the user sudo names."""
    if want.get("users") is not None:
        return want
    return dict(want, users=default_users(login_hint, login_user()))


def read_after_install(module: Any, want: Data, paths: Data, rules: Data, sock: str) -> Data:
    """What the packages' maintainer scripts left (they start units and create the group), and
    the service and users steps by the plan's rules on that reading, given whether dockerd
    answers on SOCK already: {"host": ..., "plan": {"service": ..., "users": ...}, "engine_answers":
    ...}. Nothing was installed in check mode: dockerd is not asked."""
    host = read_service_side(module, want, paths, rules)
    host["check_mode"] = module.check_mode
    active = (host["units"].get("docker") or {}).get("active") == "active"
    answers = bool(active and not module.check_mode and docker_engine.ping(sock))
    return {
        "host": host,
        "plan": after_install_plan(host, want, rules, answers),
        "engine_answers": answers,
    }

#!/usr/bin/python
# /etc/docker/daemon.json and the record of the keys the role owns in it, in one step. The
# content is decided by the role's plan (module_utils/docker_plan.py); this module validates it
# with dockerd where it can, writes what differs with the documented owner and mode, and, when
# the plan says every changed key is one dockerd reloads, reloads the running engine (SIGHUP) at
# once, recording that it did so.
from __future__ import annotations

DOCUMENTATION = r"""
module: docker_daemon_config
short_description: Write daemon.json (validated), reload dockerd, record the role's keys
version_added: 0.1.0
description:
- Writes O(config) as JSON to O(path) when the file's JSON differs from it (a file that holds
  the same object in another layout is left as it is), and O(record) to O(record_path); both
  root:root 0644, replaced atomically, their owner and mode corrected when only those differ;
  their directories root:root 0755.
- Before daemon.json is replaced, the new content is checked with
  C(dockerd --validate --config-file=...) when the installed dockerd supports it.
- With O(reload), after daemon.json changed, sends SIGHUP to the main process of O(unit)
  (dockerd reloads the keys it can without stopping containers) and records the file's
  modification time in the record (C(reloaded_mtime_ns)), so that the role knows the engine runs
  this file although it started before it.
- With O(state=absent) (the role's C(docker_state=absent)), O(config) is what stays in
  daemon.json once the role's keys are taken out. It is written as above when it holds anything,
  the file is removed when it is empty, left as it is when it already holds exactly that; the record
  is removed. Nothing is reloaded and no directory is created.
- Returns a C(diff) of daemon.json before and after, and of owner/mode changes.
- daemon.json is root:root 0644, or 0600 when it holds the credentials of O(proxy).
- In check mode it writes, removes and reloads nothing.
options:
  path:
    description: daemon.json.
    type: path
    required: true
  config:
    description: The JSON object daemon.json must hold.
    type: dict
    required: true
  record_path:
    description: The local fact recording the keys the role owns.
    type: path
    required: true
  record:
    description:
    - The record's content (C(daemon_keys)); the module adds C(reloaded_mtime_ns).
    - Required with O(state=present).
    type: dict
  dropin_path:
    description:
    - The docker.service drop-in written when daemon.json sets C(hosts) (dockerd refuses a
      listener given both as C(-H) and in the file). Without it, no drop-in is managed.
    type: path
  dropin:
    description:
    - The drop-in's content; empty (or O(state=absent)) removes it. C(systemctl daemon-reload)
      follows a change.
    type: str
    default: ""
  state:
    description: C(present) writes both files; C(absent) takes the role's keys out (see above).
    type: str
    choices: [present, absent]
    default: present
    version_added: 0.2.0
  reload:
    description: Reload O(unit) (SIGHUP to its main process) when daemon.json changed.
    type: bool
    default: false
  unit:
    description: The engine's systemd unit.
    type: str
    default: docker.service
  proxy:
    description:
    - The role's docker_proxy (keys http, https, no_proxy). When O(config) has C(proxies), they
      are written from it; with credentials in its URLs, daemon.json is root:root 0600 and the
      credentials are masked in the module's result and diff.
    type: dict
    default: {}
author:
- provision maintainers (@provision)
"""

EXAMPLES = r"""
- name: Write daemon.json and the record of the keys the role owns
  provision.hosts.docker_daemon_config:
    path: /etc/docker/daemon.json
    config:
      log-driver: json-file
    record_path: /etc/ansible/facts.d/docker.fact
    record:
      daemon_keys: [log-driver]
"""

RETURN = r"""
daemon_json_changed:
  description: daemon.json's content was written (the engine must reload or restart to use it).
  returned: always
  type: bool
changed_keys:
  description: Top-level keys whose value the write changed.
  returned: always
  type: list
  elements: str
reloaded:
  description: dockerd was sent SIGHUP to reload the new daemon.json.
  returned: always
  type: bool
"""

import json
import os
from typing import Any, Dict, List, Tuple

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.provision.hosts.plugins.module_utils.docker_files import (
    ensure_dir,
    json_bytes,
    put,
    read,
    remove,
    set_attributes,
)
from ansible_collections.provision.hosts.plugins.module_utils.docker_formats import (
    credentials_in,
)
from ansible_collections.provision.hosts.plugins.module_utils.docker_proxy import (
    daemon_proxies,
    file_mode,
    secrets,
)

_MISSING = object()
# What Ansible shows in place of a no_log value.
HIDDEN = "********"


def current_json(path: str) -> Any:
    """The JSON value in PATH, or None when it is missing or not JSON."""
    data = read(path)
    if data is None:
        return None
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError:
        return None


def validate(module: AnsibleModule, staged: str) -> None:
    """Fail, leaving daemon.json as it is, when the installed dockerd rejects the new content."""
    dockerd = module.get_bin_path("dockerd")
    if not dockerd:
        return  # before the first install: nothing can validate it yet
    _rc, help_text, _err = module.run_command([dockerd, "--help"])
    if "--validate" not in help_text:
        return
    rc, out, err = module.run_command([dockerd, "--validate", "--config-file=" + staged])
    if rc != 0:  # put() removes the staged file
        module.fail_json(
            msg="dockerd rejects the new daemon.json, which was not written: %s"
            % (err or out).strip()
        )


def changed_keys(before: Any, config: Dict[str, Any]) -> List[str]:
    old = before if isinstance(before, dict) else {}
    return sorted(
        k for k in set(old) | set(config) if old.get(k, _MISSING) != config.get(k, _MISSING)
    )


def write_daemon_json(module: AnsibleModule, diff: List[Dict[str, Any]]) -> bool:
    """daemon.json holds O(config), validated by the installed dockerd before it replaces the
    file."""
    p = module.params
    return put(
        module,
        p["path"],
        json_bytes(p["config"]),
        check=lambda f: validate(module, f),
        diff=diff,
        attributes=daemon_attributes(p),
    )


def daemon_attributes(p: Dict[str, Any]) -> Tuple[int, int, int]:
    """root:root 0644, or 0600 when the file holds the proxy's credentials."""
    return (int(file_mode(p["proxy"]), 8), 0, 0)


def put_dropin(module: AnsibleModule, content: str, diff: List[Dict[str, Any]]) -> bool:
    """docker.service's drop-in as CONTENT (removed when empty), systemd told of a change."""
    path = module.params["dropin_path"]
    if not path:
        return False
    if content:
        ensure_dir(module, os.path.dirname(path), diff)
        changed = put(module, path, content.encode("utf-8"), diff=diff)
    else:
        changed = remove(module, path, diff)
    if changed and not module.check_mode:
        rc, _out, err = module.run_command(["systemctl", "daemon-reload"])
        if rc != 0:
            module.fail_json(
                msg="%s was written, but systemctl daemon-reload failed: %s"
                % (
                    path,
                    err.strip(),
                )
            )
    return changed


def take_out(module: AnsibleModule, diff: List[Dict[str, Any]]) -> Dict[str, Any]:
    """state=absent: daemon.json holds only what is not the role's (or goes), the record goes."""
    p = module.params
    before = current_json(p["path"])
    if not p["config"]:
        daemon_changed = remove(module, p["path"], diff)
    elif before == p["config"]:
        daemon_changed = False  # none of the role's keys in it: not the role's file any more
    else:
        daemon_changed = write_daemon_json(module, diff)
    record_changed = remove(module, p["record_path"], diff)
    dropin_changed = put_dropin(module, "", diff)
    return {
        "changed": daemon_changed or record_changed or dropin_changed,
        "daemon_json_changed": daemon_changed,
        "changed_keys": changed_keys(before, p["config"]) if daemon_changed else [],
        "reloaded": False,
        "diff": diff,
    }


def with_hidden_keys(module: AnsibleModule, config: Dict[str, Any], before: Any) -> Dict[str, Any]:
    """CONFIG with each key the plan passed masked (a password in a daemon.json someone else
    wrote is shown as ********, never passed on) taken back from the file as it is. Such a key is
    not the role's: the role's keys hold no credentials but docker_proxy's, written above."""
    masked_keys = [k for k, v in config.items() if HIDDEN in json.dumps(v)]
    if not masked_keys:
        return config
    current = before if isinstance(before, dict) else {}
    missing = [k for k in masked_keys if k not in current]
    if missing:
        module.fail_json(msg="daemon.json changed while the role ran (%s): run it again." % missing)
    module.no_log_values.update(credentials_in({k: current[k] for k in masked_keys}))
    return dict(config, **{k: current[k] for k in masked_keys})


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "config": {"type": "dict", "required": True},
            "record_path": {"type": "path", "required": True},
            "record": {"type": "dict"},
            "reload": {"type": "bool", "default": False},
            "unit": {"type": "str", "default": "docker.service"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "dropin_path": {"type": "path"},
            "dropin": {"type": "str", "default": ""},
            "proxy": {"type": "dict", "default": {}},
        },
        required_if=[("state", "present", ["record"])],
        supports_check_mode=True,
    )
    p = module.params
    # The proxy's credentials: masked in every result (the plan passed them masked), written
    # from the real docker_proxy, into a daemon.json root's alone.
    module.no_log_values.update(secrets(p["proxy"]))
    proxies = daemon_proxies(p["proxy"])
    if proxies and "proxies" in p["config"]:
        p["config"] = dict(p["config"], proxies=proxies)
    p["config"] = with_hidden_keys(module, p["config"], current_json(p["path"]))
    diff: List[Dict[str, Any]] = []
    if p["state"] == "absent":
        module.exit_json(**take_out(module, diff))
    changed = False
    for directory in sorted({os.path.dirname(p["path"]), os.path.dirname(p["record_path"])}):
        changed = ensure_dir(module, directory, diff) or changed

    before = current_json(p["path"])
    keys = changed_keys(before, p["config"])
    exists, unlinked = os.path.exists(p["path"]), False
    if before == p["config"] and os.path.islink(p["path"]):
        # The same JSON, in a file of its own instead of a link (chmod would follow the link):
        # not a change for the engine, which already runs this content.
        unlinked = changed = put(
            module, p["path"], json_bytes(p["config"]), diff=diff, attributes=daemon_attributes(p)
        )
        daemon_changed = False
    elif before == p["config"] or (not exists and not p["config"]):
        daemon_changed = False
        if exists:
            changed = set_attributes(module, p["path"], daemon_attributes(p), diff) or changed
    else:
        daemon_changed = write_daemon_json(module, diff)

    # before a reload or restart, and before the packages' first start of dockerd
    changed = put_dropin(module, p["dropin"], diff) or changed
    previous = current_json(p["record_path"])
    record = dict(p["record"])
    stamp = previous.get("reloaded_mtime_ns") if isinstance(previous, dict) else None
    reloaded = False
    if daemon_changed and p["reload"] and not module.check_mode:
        rc, _out, err = module.run_command(
            ["systemctl", "kill", "--kill-who=main", "--signal=SIGHUP", p["unit"]]
        )
        if rc != 0:
            module.fail_json(
                msg="daemon.json was written, but reloading %s failed: %s"
                % (p["unit"], err.strip())
            )
        reloaded = True
        stamp = os.stat(p["path"]).st_mtime_ns
    elif daemon_changed:
        stamp = None  # the engine restarts (or first starts) with the new file
    elif unlinked and not module.check_mode:
        stamp = os.stat(p["path"]).st_mtime_ns
    if stamp is not None:
        record["reloaded_mtime_ns"] = stamp
    record_changed = put(module, p["record_path"], json_bytes(record), diff=diff)
    module.exit_json(
        changed=changed or daemon_changed or record_changed,
        daemon_json_changed=daemon_changed,
        changed_keys=keys,
        reloaded=reloaded,
        diff=diff,
    )


if __name__ == "__main__":
    main()

#!/usr/bin/python
# /etc/docker/daemon.json and the record of the keys the role owns in it, in one step. The
# content is worked out by the role (vars/main.yml: docker__daemon_merged); this module only
# validates it with dockerd where it can and writes what differs.
from __future__ import annotations

DOCUMENTATION = r"""
module: docker_daemon_config
short_description: Write daemon.json (validated) and the record of the role's keys
description:
- Writes O(content) to O(path) and O(record_content) to O(record_path) (root:root 0644, atomic),
  each only when it differs, creating their directories (root:root 0755).
- Before daemon.json is replaced, the new content is checked with
  C(dockerd --validate --config-file=...) when the installed dockerd supports it.
- In check mode it writes nothing.
options:
  path:
    description: daemon.json.
    type: path
    required: true
  content:
    description: Its content.
    type: str
    required: true
  record_path:
    description: The local fact recording the keys the role owns.
    type: path
    required: true
  record_content:
    description: Its content.
    type: str
    required: true
"""

RETURN = r"""
daemon_json_changed:
  description: daemon.json was written (the engine needs a restart to use it).
  returned: always
  type: bool
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.provision.hosts.plugins.module_utils.docker_files import ensure_dir, put


def validate(module, staged):
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


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "content": {"type": "str", "required": True},
            "record_path": {"type": "path", "required": True},
            "record_content": {"type": "str", "required": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    changed = False
    for directory in {os.path.dirname(p["path"]), os.path.dirname(p["record_path"])}:
        changed = ensure_dir(module, directory) or changed
    daemon_changed = put(
        module, p["path"], p["content"].encode(), check=lambda f: validate(module, f)
    )
    record_changed = put(module, p["record_path"], p["record_content"].encode())
    module.exit_json(
        changed=changed or daemon_changed or record_changed, daemon_json_changed=daemon_changed
    )


if __name__ == "__main__":
    main()

#!/usr/bin/python
# The docker CLI's proxy for each docker_users entry: ~/.docker/config.json with proxies.default
# from docker_proxy merged in here (every other key of the file stays, and none of it, such as
# the user's registry logins, passes through the plan or the result), written as the user's
# own, 0600, in a ~/.docker of the user's. A root process writing into a user's home must not
# follow the user's symlinks: ~/.docker must be a directory, and the file is replaced, never
# written through.
from __future__ import annotations

DOCUMENTATION = r"""
module: docker_cli_config
short_description: Write docker CLI configuration files owned by their users
version_added: 0.1.0
description:
- For each entry of O(files), creates the file's directory (mode 0700, owned by the entry's
  uid and gid) when it is missing, and sets C(proxies.default) from O(proxy) in the file (a new
  one when it is missing; every other key stays), mode 0600, owned by uid and gid, replaced
  atomically, when its content or attributes differ.
- The diff and the result show only C(proxies.default), never the rest of the file (its
  C(auths) are the user's registry logins).
- Fails, changing nothing for that entry, when the directory is a symlink or not owned by the
  entry's uid.
- Returns a C(diff) and honours check mode.
options:
  files:
    description:
    - The files, each a dict with keys path, uid and gid.
    type: list
    elements: dict
    required: true
  proxy:
    description:
    - The role's docker_proxy; its proxies replace C(proxies.default)'s C(httpProxy),
      C(httpsProxy) and C(noProxy) in each config (credentials masked in the result and diff).
    type: dict
    default: {}
author:
- provision maintainers (@provision)
"""

EXAMPLES = r"""
- name: Give deploy's docker CLI the proxy
  provision.hosts.docker_cli_config:
    files:
      - path: /home/deploy/.docker/config.json
        uid: 1000
        gid: 1000
    proxy:
      https: http://proxy.example.org:3128
"""

RETURN = r"""
written:
  description: The files written or corrected.
  returned: always
  type: list
  elements: str
"""

import json
import os
from typing import Any, Dict, List

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.provision.hosts.plugins.module_utils.docker_files import (
    json_bytes,
    put,
    read,
    set_attributes,
)
from ansible_collections.provision.hosts.plugins.module_utils.docker_proxy import (
    cli_proxies,
    secrets,
)


def ensure_user_dir(module: AnsibleModule, directory: str, uid: int, gid: int) -> bool:
    """DIRECTORY exists, the user's (created 0700 when missing); True when created."""
    if os.path.islink(directory) or (os.path.exists(directory) and not os.path.isdir(directory)):
        module.fail_json(
            msg="%s is not a directory: the role does not write through it." % directory
        )
    if os.path.isdir(directory):
        if os.lstat(directory).st_uid != uid:
            module.fail_json(
                msg="%s belongs to uid %d, not %d: the role does not write into it."
                % (directory, os.lstat(directory).st_uid, uid)
            )
        return False
    if not module.check_mode:
        os.mkdir(directory, 0o700)
        set_attributes(module, directory, (0o700, uid, gid))
    return True


def with_proxy(config: Dict[str, Any], proxy: Dict[str, Any]) -> Dict[str, Any]:
    """CONFIG with proxies.default's keys from PROXY (docker_proxy itself, never the plan)."""
    proxies = dict(config.get("proxies") or {})
    proxies["default"] = dict(proxies.get("default") or {}, **cli_proxies(proxy))
    return dict(config, proxies=proxies)


def current_object(module: AnsibleModule, path: str) -> Dict[str, Any]:
    """The JSON object in PATH ({} when missing); fails when PATH holds something else (the plan
    leaves such a file alone: it changed while the role ran)."""
    data = None if os.path.islink(path) else read(path)
    if data is None:
        return {}
    try:
        document = json.loads(data.decode("utf-8"))
    except ValueError:
        document = None
    if not isinstance(document, dict):
        module.fail_json(msg="%s is no longer a JSON object: the role leaves it alone." % path)
    return document


def default_proxies(config: Dict[str, Any]) -> Any:
    return (config.get("proxies") or {}).get("default") or {}


def json_text(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True) + "\n"


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "files": {"type": "list", "elements": "dict", "required": True},
            "proxy": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    module.no_log_values.update(secrets(module.params["proxy"]))
    diff: List[Dict[str, Any]] = []
    written = []
    for entry in module.params["files"]:
        path, uid, gid = entry["path"], int(entry["uid"]), int(entry["gid"])
        created = ensure_user_dir(module, os.path.dirname(path), uid, gid)
        current = current_object(module, path)
        config = with_proxy(current, module.params["proxy"])
        if created and module.check_mode:
            changed = True
        else:
            attributes = (0o600, uid, gid)
            changed = put(module, path, json_bytes(config), show=False, attributes=attributes)
        if changed:
            diff.append(
                {
                    "before_header": "%s (proxies.default)" % path,
                    "after_header": "%s (proxies.default)" % path,
                    "before": json_text(default_proxies(current)),
                    "after": json_text(default_proxies(config)),
                }
            )
        if changed or created:
            written.append(path)
    module.exit_json(changed=bool(written), written=written, diff=diff)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# Docker's apt repository in one step: the key, verified before anything trusts it, and the
# deb822 source that uses it. Verification is in Python (module_utils/docker_openpgp.py): the
# host needs no gnupg, and an unverified key never reaches the keyring directory.
from __future__ import annotations

DOCUMENTATION = r"""
module: docker_apt_source
short_description: Install a verified apt repository key and the source that uses it
description:
- When O(key_path) does not hold exactly one primary key with O(fingerprint) (or is not root:root
  0644), downloads O(key_url) and fails, changing nothing, unless the download holds exactly that
  key; then installs it (its directory root:root 0755).
- Then writes O(source_content) to O(source_path) (root:root 0644) when it differs.
- In check mode it downloads and verifies the key when needed, and writes nothing.
options:
  key_url:
    description: Where the key is downloaded from.
    type: str
    required: true
  fingerprint:
    description: Expected primary-key fingerprint (40 hex digits; spaces allowed).
    type: str
    required: true
  key_path:
    description: Where the key is installed.
    type: path
    required: true
  source_path:
    description: The deb822 source file.
    type: path
    required: true
  source_content:
    description: The source file's content.
    type: str
    required: true
  timeout:
    description: Download timeout in seconds.
    type: int
    default: 30
"""

RETURN = r"""
key_changed:
  description: The key (or its directory) was installed or corrected.
  returned: always
  type: bool
source_changed:
  description: The source file was written.
  returned: always
  type: bool
fingerprints:
  description: Primary-key fingerprints of the downloaded key.
  returned: when downloaded
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import fetch_url
from ansible_collections.provision.hosts.plugins.module_utils.docker_files import (
    ROOT_FILE,
    ensure_dir,
    ownership,
    put,
    read,
)
from ansible_collections.provision.hosts.plugins.module_utils.docker_openpgp import (
    OpenPGPError,
    primary_fingerprints,
)


def fingerprints_of(data):
    try:
        return primary_fingerprints(data), ""
    except OpenPGPError as error:
        return [], str(error)


def key_in_place(path, expected):
    data = read(path)
    return (
        data is not None and fingerprints_of(data)[0] == [expected] and ownership(path) == ROOT_FILE
    )


def download(module, url, timeout):
    response, info = fetch_url(module, url, timeout=timeout)
    if response is None or info.get("status") != 200:
        module.fail_json(
            msg="Could not download the repository key from %s: %s (HTTP %s). Nothing was changed."
            % (url, info.get("msg", "no answer"), info.get("status", "-"))
        )
    return response.read()


def main():
    module = AnsibleModule(
        argument_spec={
            "key_url": {"type": "str", "required": True},
            "fingerprint": {"type": "str", "required": True},
            "key_path": {"type": "path", "required": True},
            "source_path": {"type": "path", "required": True},
            "source_content": {"type": "str", "required": True},
            "timeout": {"type": "int", "default": 30},
        },
        supports_check_mode=True,
    )
    p = module.params
    expected = p["fingerprint"].replace(" ", "").upper()
    result = {"key_changed": False, "source_changed": False}
    if not key_in_place(p["key_path"], expected):
        data = download(module, p["key_url"], p["timeout"])
        found, problem = fingerprints_of(data)
        result["fingerprints"] = found
        if found != [expected]:
            module.fail_json(
                msg="The key downloaded from %s has the fingerprint %s, but "
                "docker_apt_key_fingerprint expects exactly %s. The key was not installed and "
                "docker.sources was not written: apt does not trust it.%s"
                % (
                    p["key_url"],
                    ", ".join(found) or "(none: not an OpenPGP public key)",
                    expected,
                    " (%s)" % problem if problem else "",
                ),
                **result,
            )
        key_dir = os.path.dirname(p["key_path"])
        dir_changed = ensure_dir(module, key_dir)
        # In check mode a missing directory stays missing: the key would be new.
        missing = module.check_mode and not os.path.isdir(key_dir)
        result["key_changed"] = missing or put(module, p["key_path"], data) or dir_changed
    result["source_changed"] = put(module, p["source_path"], p["source_content"].encode())
    module.exit_json(changed=result["key_changed"] or result["source_changed"], **result)


if __name__ == "__main__":
    main()

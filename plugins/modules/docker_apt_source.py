#!/usr/bin/python
# Docker's apt repository in one step: the key, verified before anything trusts it, and the
# deb822 source that uses it. Verification is in Python (module_utils/docker_openpgp.py): the
# host needs no gnupg, and only the key that was verified, re-armored from its checked packets,
# ever reaches the keyring directory.
from __future__ import annotations

DOCUMENTATION = r"""
module: docker_apt_source
short_description: Install a verified apt repository key and the source that uses it
version_added: 0.1.0
description:
- Keeps O(key_path) when it holds exactly one ASCII-armored public-key block with exactly one
  primary key whose fingerprint is O(fingerprint), only setting its owner and mode (root:root
  0644) when they differ.
- Otherwise downloads O(key_url) and fails, changing nothing, unless the download is exactly one
  armored block holding exactly one primary key with O(fingerprint) (no second block, no second
  key, no data around the block, not binary); then writes that verified key, re-armored from the
  packets it checked, to O(key_path) (root:root 0644; its directory root:root 0755).
- Writes O(source_content) to O(source_path) (root:root 0644) when its content or attributes
  differ.
- >-
  Returns a C(diff): the source's content before and after, the key change by fingerprint, and
  owner/mode changes.
- Writes apt's proxy for the host of O(repository_url) to O(apt_proxy_path) when O(proxy) names
  one for its scheme, and removes O(apt_proxy_path) otherwise. Credentials in O(proxy) are
  masked in the result and diff.
- The key is downloaded through O(proxy) when it names one for the key URL's scheme, and
  otherwise through the proxy apt is configured with for the key's host (C(apt-config dump)).
- Writes the repository's credentials, when O(repository_url) has them, to O(auth_path)
  (root:root 0600); their content never appears in the diff or the result.
- In check mode it downloads and verifies the key when needed, and writes nothing.
options:
  key_url:
    description:
    - Where the key is downloaded from. Credentials in it (or those of O(repository_url) for the
      same scheme, host and port) are sent to that host, and never shown.
    type: str
    required: true
  fingerprint:
    description: Expected primary-key fingerprint (40 hex digits; spaces and lower case allowed).
    type: str
    required: true
  key_path:
    description: Where the key is installed (an ASCII-armored C(.asc) file).
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
  proxy:
    description:
    - The role's docker_proxy (keys http, https, no_proxy); empty follows apt's own proxy.
    type: dict
    default: {}
  apt_proxy_path:
    description: The role's apt.conf.d file with apt's proxy for the repository's host.
    type: path
  repository_url:
    description:
    - Docker's repository as given; with O(proxy) naming a proxy for its scheme,
      O(apt_proxy_path) holds apt's proxy for its host (root:root 0644, 0600 with credentials),
      and is removed otherwise.
    - When it has credentials (V(https://user:token@host/path)), they are written to
      O(auth_path) (root:root 0600, in apt's auth.conf format) and used for the key download
      from the same host; O(source_content) must hold the URL without them. Without
      credentials, a file of the role's at O(auth_path) is removed.
    type: str
    default: ""
  auth_path:
    description: Where apt reads the repository's login (a file in C(/etc/apt/auth.conf.d)).
    type: path
  source_marker:
    description: The comment that marks the role's files.
    type: str
    default: "# Written by the Ansible role docker"
author:
- provision maintainers (@provision)
"""

EXAMPLES = r"""
- name: Install Docker's verified key and apt source
  provision.hosts.docker_apt_source:
    key_url: https://download.docker.com/linux/ubuntu/gpg
    fingerprint: 9DC858229FC7DD38854AE2D88D81803C0EBFCD88
    key_path: /etc/apt/keyrings/docker.asc
    source_path: /etc/apt/sources.list.d/docker.sources
    source_content: |
      Types: deb
      URIs: https://download.docker.com/linux/ubuntu
      Suites: noble
      Components: stable
      Signed-By: /etc/apt/keyrings/docker.asc
"""

RETURN = r"""
key_changed:
  description: The key (its content, owner or mode, or its directory) was installed or corrected.
  returned: always
  type: bool
source_changed:
  description: The source file was written or its owner or mode corrected.
  returned: always
  type: bool
auth_changed:
  description: The credentials file was written, corrected or removed.
  returned: always
  type: bool
apt_proxy_changed:
  description: The apt proxy file was written, corrected or removed.
  returned: always
  type: bool
key_found:
  description: What O(key_path) held before (its fingerprint, or what is wrong with it).
  returned: always
  type: str
fingerprint:
  description: The fingerprint of the downloaded key, when it was downloaded and verified.
  returned: when downloaded
  type: str
"""

import os
from typing import Any, Dict, List, Optional, Tuple
from urllib.error import HTTPError, URLError
from urllib.parse import unquote, urlsplit

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url
from ansible_collections.provision.hosts.plugins.module_utils.docker_apt_sources import (
    auth_content,
)
from ansible_collections.provision.hosts.plugins.module_utils.docker_files import (
    ROOT_FILE,
    SECRET_FILE,
    ensure_dir,
    put,
    read,
    remove,
    set_attributes,
)
from ansible_collections.provision.hosts.plugins.module_utils.docker_formats import (
    masked,
    normalize_fingerprint,
    without_credentials,
)
from ansible_collections.provision.hosts.plugins.module_utils.docker_openpgp import (
    OpenPGPError,
    key_fingerprint,
    verified_key,
)
from ansible_collections.provision.hosts.plugins.module_utils.docker_proxy import (
    apt_conf,
    apt_proxy,
    configured,
    file_mode,
    proxy_for,
    secrets,
)


def installed_key(path: str) -> Tuple[Optional[str], str]:
    """(fingerprint or None, description) of the key at PATH, read strictly."""
    data = read(path)
    if data is None:
        return None, "no key" if not os.path.isdir(path) else "a directory"
    try:
        found = key_fingerprint(data)
    except OpenPGPError as error:
        return None, "a file that " + str(error)
    return found, "the key " + found


def key_proxy(module: AnsibleModule, url: str, proxy: Dict[str, Any]) -> Optional[str]:
    """The proxy the key download goes through: docker_proxy's, else the one apt uses for the
    key's host (a host where apt works only through Acquire::http::Proxy)."""
    if configured(proxy):
        return proxy_for(url, proxy)
    rc, out, _err = module.run_command(["apt-config", "dump"], environ_update={"LC_ALL": "C"})
    return apt_proxy(out, url) if rc == 0 else None


def login_for(key_url: str, repository_url: str) -> Tuple[Optional[str], Optional[str]]:
    """The user and password the key download sends: KEY_URL's own, else REPOSITORY_URL's when
    the key is on the same scheme, host and port (as apt's auth.conf would match it)."""
    key, repository = urlsplit(key_url), urlsplit(repository_url)
    if key.username is None and repository.username is not None:
        same = (key.scheme, key.hostname, key.port) == (
            repository.scheme,
            repository.hostname,
            repository.port,
        )
        key = repository if same else key
    if key.username is None:
        return None, None
    return unquote(key.username), unquote(key.password or "")


def download(
    module: AnsibleModule,
    url: str,
    timeout: int,
    *,
    login: Tuple[Optional[str], Optional[str]],
    proxy: Optional[str],
    direct: bool,
) -> bytes:
    """The key at URL, in memory, through PROXY when given. open_url, not fetch_url: fetch_url
    stages through the module's remote_tmp, which a first run as root creates with a warning on
    every fresh host."""
    if proxy:
        # open_url's proxy is urllib's, read from the environment: this process's own.
        scheme = url.partition(":")[0].lower()
        for name in (scheme.upper() + "_PROXY", "no_proxy", "NO_PROXY"):
            os.environ.pop(name, None)
        os.environ[scheme + "_proxy"] = proxy
    try:
        response = open_url(
            without_credentials(url),
            timeout=timeout,
            url_username=login[0],
            url_password=login[1],
            force_basic_auth=login[0] is not None,
            http_agent="provision.hosts.docker_apt_source",
            # docker_proxy's no_proxy names the key's host: straight there, whatever the
            # environment says. Otherwise the environment's proxy, as before.
            use_proxy=bool(proxy) or not direct,
        )
        return bytes(response.read())
    except HTTPError as error:
        reason, status = str(error.reason), str(error.code)
    except URLError as error:
        reason, status = str(error.reason), "-"
    except (OSError, ValueError) as error:  # timeouts, resets, a malformed URL
        reason, status = str(error) or type(error).__name__, "-"
    module.fail_json(
        msg="Could not download the repository key from %s%s: %s (HTTP %s). Nothing was changed."
        % (
            without_credentials(url),
            " through the proxy %s" % masked(proxy) if proxy else "",
            masked(reason),
            status,
        )
    )
    raise AssertionError("fail_json returned")  # for type checkers: it exits


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "key_url": {"type": "str", "required": True, "no_log": False},
            "fingerprint": {"type": "str", "required": True},
            "key_path": {"type": "path", "required": True},
            "source_path": {"type": "path", "required": True},
            "source_content": {"type": "str", "required": True},
            "timeout": {"type": "int", "default": 30},
            "proxy": {"type": "dict", "default": {}},
            "apt_proxy_path": {"type": "path"},
            # no_log only for a URL with credentials (below): a plain URL is shown as it is
            "repository_url": {"type": "str", "default": ""},
            "auth_path": {"type": "path", "no_log": False},
            "source_marker": {"type": "str", "default": "# Written by the Ansible role docker"},
        },
        supports_check_mode=True,
    )
    p = module.params
    module.no_log_values.update(secrets(p["proxy"]))
    for url in (p["key_url"], p["repository_url"]):
        if without_credentials(url) != url:
            module.no_log_values.add(url)
    key_url = without_credentials(p["key_url"])  # as messages show it
    expected = normalize_fingerprint(p["fingerprint"])
    diff: List[Dict[str, Any]] = []
    found, described = installed_key(p["key_path"])
    result = {"key_changed": False, "source_changed": False, "key_found": described}
    key_dir = os.path.dirname(p["key_path"])
    if found == expected:
        dir_changed = ensure_dir(module, key_dir, diff)
        key_changed = set_attributes(module, p["key_path"], ROOT_FILE, diff)
    else:
        via = key_proxy(module, p["key_url"], p["proxy"])
        login = login_for(p["key_url"], p["repository_url"])
        data = download(
            module,
            p["key_url"],
            p["timeout"],
            login=login,
            proxy=via,
            direct=configured(p["proxy"]),
        )
        try:
            key = verified_key(data, expected)
        except OpenPGPError as error:
            module.fail_json(
                msg="The key downloaded from %s %s; docker_apt_key_fingerprint expects exactly"
                " one armored public key, %s. Nothing was installed and the source was not"
                " written: apt does not trust it." % (key_url, error, expected),
                **result,
            )
        result["fingerprint"] = expected
        diff.append(
            {
                "before_header": p["key_path"],
                "after_header": p["key_path"],
                "before": "%s\n" % described,
                "after": "the key %s (verified, from %s)\n" % (expected, key_url),
            }
        )
        dir_changed = ensure_dir(module, key_dir, diff)
        key_changed = put(module, p["key_path"], key, diff=diff, show=False)
    result["key_changed"] = key_changed or dir_changed
    result["source_changed"] = put(
        module, p["source_path"], p["source_content"].encode("utf-8"), diff=diff
    )
    result["auth_changed"] = bool(p["auth_path"]) and put_auth(module, p["auth_path"], diff)
    result["apt_proxy_changed"] = apt_proxy_file(module, p, diff)
    changed = any(result[k] for k in ("key_changed", "source_changed", "auth_changed"))
    module.exit_json(changed=changed or result["apt_proxy_changed"], diff=diff, **result)


def put_auth(module: AnsibleModule, path: str, diff: List[Dict[str, Any]]) -> bool:
    """apt's login for the repository at PATH (root 0600) when its URL has one; else a file the
    role wrote there goes. The diff says what happened, never what the file holds."""
    p = module.params
    content = auth_content(p["repository_url"], p["source_marker"])
    if content is None:
        current = read(path) if not os.path.islink(path) else None
        if current is None or not current.startswith(p["source_marker"].encode("utf-8")):
            return False
        changed = remove(module, path)
        what = "removed: docker_apt_repository_url has no credentials\n"
    else:
        data = content.encode("utf-8")
        changed = ensure_dir(module, os.path.dirname(path), diff)
        changed = put(module, path, data, show=False, attributes=SECRET_FILE) or changed
        what = "the login for %s (root:root 0600)\n" % without_credentials(p["repository_url"])
    if changed:
        diff.append({"before_header": path, "after_header": path, "before": "", "after": what})
    return changed


def apt_proxy_file(module: AnsibleModule, p: Dict[str, Any], diff: List[Dict[str, Any]]) -> bool:
    """apt's proxy for Docker's host: written when there is content, removed otherwise."""
    if not p["apt_proxy_path"]:
        return False
    content = apt_conf(p["repository_url"], p["proxy"], p["source_marker"])
    if content:
        attributes = (int(file_mode(p["proxy"]), 8), 0, 0)
        data = content.encode("utf-8")
        return put(module, p["apt_proxy_path"], data, diff=diff, attributes=attributes)
    return remove(module, p["apt_proxy_path"], diff)


if __name__ == "__main__":
    main()

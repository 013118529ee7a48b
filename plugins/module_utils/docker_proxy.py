# What docker_proxy ({http, https, no_proxy}) means for each part of the role's work that goes
# out to the network: the key download (proxy_for, or apt's own proxy: apt_proxy), apt for
# Docker's repository (apt_conf: one line scoped to the repository's host, so the distribution's
# apt configuration is untouched) and dockerd (daemon_proxies: daemon.json "proxies", Engine 23+).
# Pure: no I/O. Python 3.8, standard library only.
from __future__ import annotations

import ipaddress
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from ansible_collections.provision.hosts.plugins.module_utils.docker_plan_types import (
    CliConfigStep,
)

# apt-config dump's lines: Acquire::http::Proxy "URL"; or Acquire::http::Proxy::HOST "URL";
_APT_LINE = re.compile(r'^Acquire::(https?)::Proxy(?:::(\S+))? "(.*)";$')
APT_DIRECT = "DIRECT"
# dockerd reads daemon.json "proxies" since Engine 23.0; an older one refuses to start with it.
PROXIES_SINCE = 23
_MAJOR = re.compile(r"^(?:\d+:)?(\d+)\.")


def secrets(proxy: Optional[Mapping[str, Any]]) -> List[str]:
    """What the proxy URLs hold that no output may show: each password (a user name alone, as
    a token is given, too). The modules add them to Ansible's no_log values."""
    found = []
    for key in ("http", "https"):
        parts = urlsplit(str((proxy or {}).get(key) or ""))
        try:
            secret = parts.password or parts.username
        except ValueError:
            secret = None
        if secret:
            found.append(secret)
    return sorted(set(found))


def file_mode(proxy: Optional[Mapping[str, Any]]) -> str:
    """The mode of a root-owned file that holds the proxy: root's alone when it carries
    credentials (dockerd and apt read their files as root)."""
    return "0600" if secrets(proxy) else "0644"


def configured(proxy: Optional[Mapping[str, Any]]) -> bool:
    """docker_proxy names a proxy at all (else the role leaves every proxy setting alone)."""
    return bool(proxy and (proxy.get("http") or proxy.get("https")))


def bypassed(host: str, no_proxy: List[str]) -> bool:
    """HOST is reached directly by NO_PROXY's rules as Docker and curl read them: "*", the host
    itself or a domain it is in (a leading dot optional), an address in a CIDR network."""
    host = host.lower().strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for item in no_proxy:
        entry = item.strip().lower()
        if entry == "*":
            return True
        if address is not None and "/" in entry:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = entry.lstrip(".").rsplit(":", 1)[0] if entry.count(":") == 1 else entry.lstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def proxy_for(url: str, proxy: Optional[Mapping[str, Any]]) -> Optional[str]:
    """The proxy docker_proxy gives URL (by its scheme), or None: none for that scheme, or the
    host is in no_proxy."""
    if not proxy or not configured(proxy):
        return None
    parts = urlsplit(url)
    chosen = proxy.get(parts.scheme) or None
    if chosen and bypassed(parts.hostname or "", list(proxy.get("no_proxy") or [])):
        return None
    return chosen


def apt_proxy(dump: str, url: str) -> Optional[str]:
    """The proxy apt itself uses for URL, from `apt-config dump`: the one for URL's host before
    the general one; for https, http's when https has none (as apt's https method does). None
    for no proxy or DIRECT."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    found: Dict[Tuple[str, str], str] = {}
    for line in dump.splitlines():
        match = _APT_LINE.match(line.strip())
        if match:
            scheme, for_host, value = match.groups()
            found[(scheme, (for_host or "").lower())] = value
    schemes = ["https", "http"] if parts.scheme == "https" else ["http"]
    for key in [(s, host) for s in schemes] + [(s, "") for s in schemes]:
        if key in found:
            value = found[key]
            return None if not value or value.upper() == APT_DIRECT else value
    return None


def apt_conf(repository_url: str, proxy: Optional[Mapping[str, Any]], marker: str) -> str:
    """The role's apt.conf.d file for Docker's repository: its host's proxy (DIRECT when
    no_proxy names it). Empty when docker_proxy names no proxy for the repository's scheme: then
    the role has no such file and apt uses its own configuration."""
    if not proxy or not configured(proxy):
        return ""
    parts = urlsplit(repository_url)
    if not proxy.get(parts.scheme):
        return ""
    value = proxy_for(repository_url, proxy) or APT_DIRECT
    return '// %s; local changes are overwritten.\nAcquire::%s::Proxy::%s "%s";\n' % (
        marker,
        parts.scheme,
        parts.hostname,
        value,
    )


def cli_proxies(proxy: Optional[Mapping[str, Any]]) -> Dict[str, str]:
    """config.json's proxies.default keys (the docker CLI passes them to builds and containers
    as HTTP_PROXY and the like)."""
    keys = (
        ("httpProxy", (proxy or {}).get("http")),
        ("httpsProxy", (proxy or {}).get("https")),
        ("noProxy", ",".join((proxy or {}).get("no_proxy") or [])),
    )
    return {k: str(v) for k, v in keys if v}


def cli_config_step(
    users: List[str], cli_configs: Mapping[str, Any], proxy: Any
) -> Tuple[CliConfigStep, List[str]]:
    """Each docker_users entry's ~/.docker/config.json with docker_proxy's proxies.default keys
    set (everything else in the file stays), the user's own and 0600, in ~/.docker (the user's);
    only when docker_proxy names a proxy. A config.json that is not a JSON object is left alone,
    with a warning."""
    step: CliConfigStep = {"needed": False, "write": []}
    warnings: List[str] = []
    if not configured(proxy):
        return step, warnings
    wanted = cli_proxies(proxy)
    for user in users:
        found = cli_configs.get(user)
        if not found:
            continue
        state = found["file"]
        if state.get("exists") and not state.get("json_object"):
            warnings.append(
                "%s is not a JSON object: the role leaves it alone and %s's docker CLI gets no"
                " proxy." % (state.get("path"), user)
            )
            continue
        current = state.get("proxies_default") or {}
        owner = (found["uid"], found["gid"])
        file_ok = (
            state.get("exists")
            and dict(current, **wanted) == current
            and (
                state.get("mode"),
                state.get("uid"),
                state.get("gid"),
            )
            == ("0600",) + owner
        )
        directory = found["dir"]
        dir_ok = directory.get("is_dir") and directory.get("uid") == found["uid"]
        if not (file_ok and dir_ok):
            step["write"].append(
                {
                    "user": user,
                    "path": state["path"],
                    "uid": found["uid"],
                    "gid": found["gid"],
                }
            )
    step["needed"] = bool(step["write"])
    return step, warnings


def engine_major(version: str) -> Optional[int]:
    """The major version in a Docker version string as dpkg or docker_version has it
    (5:26.1.3-1~ubuntu.20.04~focal, 20.10.24+dfsg1-1, 5:27.*), or None."""
    match = _MAJOR.match(version.strip())
    return int(match.group(1)) if match else None


def engine_problem(proxy: Any, pinned: str, installed: str) -> Optional[str]:
    """docker_proxy with an engine older than 23 (PINNED by docker_version, else the INSTALLED
    docker-ce, which the role keeps): dockerd would refuse daemon.json "proxies" and not start.
    Docker's systemd drop-in for older engines is not written by the role."""
    version = pinned or installed
    major = engine_major(version)
    if not configured(proxy) or major is None or major >= PROXIES_SINCE:
        return None
    return (
        'docker_proxy needs Docker Engine %d or later (dockerd reads daemon.json "proxies"'
        " since 23.0, an older one does not start with it); %s is %s. Set docker_version to"
        " 23 or later, or give dockerd the proxy in a systemd drop-in yourself."
        % (PROXIES_SINCE, "docker_version" if pinned else "the installed docker-ce", version)
    )


def daemon_proxies(proxy: Optional[Mapping[str, Any]]) -> Optional[Dict[str, str]]:
    """daemon.json "proxies" (dockerd's pulls and pushes), or None without docker_proxy."""
    if not proxy or not configured(proxy):
        return None
    keys = (("http-proxy", proxy.get("http")), ("https-proxy", proxy.get("https")))
    found = {k: str(v) for k, v in keys if v}
    if proxy.get("no_proxy"):
        found["no-proxy"] = ",".join(proxy["no_proxy"])
    return found

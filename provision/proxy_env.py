"""The laptop's own proxy for the VM: on a company network the machine that runs ``provision up``
reaches the internet only through HTTP(S)_PROXY, and so does the VM it creates. Unless
``[docker] proxy`` (``docker_proxy``) is set, ``up`` passes that proxy to the VM's role."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from provision.role_options import docker_formats

# Lower case first: curl and most tools prefer it (and ignore an upper-case HTTP_PROXY in CGI).
_NAMES = {
    "http": ("http_proxy", "HTTP_PROXY"),
    "https": ("https_proxy", "HTTPS_PROXY"),
    "no_proxy": ("no_proxy", "NO_PROXY"),
}


@dataclass(frozen=True)
class EnvProxy:
    """What the environment's proxy gives the VM: docker_proxy, or None and why not."""

    proxy: dict[str, Any] | None
    line: str


def _first(env: Mapping[str, str], names: tuple[str, ...]) -> str:
    return next((env[n].strip() for n in names if env.get(n, "").strip()), "")


def _loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def from_environment(env: Mapping[str, str]) -> EnvProxy | None:
    """docker_proxy from ENV's http(s)_proxy and no_proxy, or None when neither proxy is set. A
    proxy the VM cannot reach (this machine's loopback) or that is malformed is not passed, and
    the line says why."""
    urls = {key: _first(env, _NAMES[key]) for key in ("http", "https")}
    if not any(urls.values()):
        return None
    formats = docker_formats()
    names = " / ".join(n for key in urls if urls[key] for n in _NAMES[key][1:])
    for url in urls.values():
        if url and _loopback(url):
            return EnvProxy(
                None,
                f"{names} points at this machine's loopback ({formats.masked(url)}), which the VM"
                " cannot reach: not passed to the VM (set [docker] proxy to an address it reaches)",
            )
    no_proxy = [h.strip() for h in _first(env, _NAMES["no_proxy"]).split(",") if h.strip()]
    proxy = {"http": urls["http"], "https": urls["https"], "no_proxy": no_proxy}
    problem = formats.option_problem("docker_proxy", proxy)
    if problem:
        return EnvProxy(None, f"{names} from the environment: {problem}; not passed to the VM")
    shown = ", ".join(f"{k}={formats.masked(v)}" for k, v in urls.items() if v)
    return EnvProxy(proxy, f"passing this machine's proxy to the VM's role: docker_proxy {shown}")

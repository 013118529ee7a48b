# The formats of the docker role's options that meta/argument_specs.yml cannot express, defined
# once: the role's preflight (on the managed host, Python 3.8+) and the `provision` CLI (before
# anything runs) both use this file. Standard library only; no syntax newer than Python 3.8.
#
# API (stable):
#   fingerprint_problem(value), url_problem(value), registry_mirror_problem(value),
#   insecure_registry_problem(value), architecture_problem(value) -> str | None
#       None when VALUE is well formed, else one sentence: what is wrong and what is accepted.
#       It names no variable: the caller says where the value came from.
#   option_problem(name, value) -> str | None
#       The check that applies to role variable NAME (None for variables without a format
#       rule); a list's problem names the offending item.
#   daemon_options_problem(value) -> str | None
#       docker_daemon_options: the keys that decide the daemon's exposure and trust (hosts with
#       TLS, registry-mirrors, insecure-registries) follow the same rules as everywhere else.
#   masked(text) -> str
#       TEXT with the user information of every URL in it (user:password@) replaced by ***@.
#   credentials_in(value) -> list[str]
#       The passwords (a user name alone, as a token is given) of the URLs in VALUE's strings,
#       at any depth: what no output may show.
#   without_credentials(url) -> str, apt_auth_entry(url) -> str | None
#       URL without its user information; the line of apt's auth.conf(5) that gives apt URL's
#       credentials (None when it has none): a repository's credentials live there, 0600, never
#       in a source file.
#   normalize_fingerprint(value) -> str, SUPPORTED_ARCHITECTURES, CHECKED_OPTIONS, TLS_OPTIONS
from __future__ import annotations

import ipaddress
import re
from typing import Callable
from urllib.parse import unquote, urlsplit, urlunsplit

# Debian architecture names Docker publishes packages for and the role supports.
SUPPORTED_ARCHITECTURES = ("amd64", "arm64")

_FINGERPRINT_DIGITS = 40
_HEX = re.compile(r"^[0-9A-F]*$")
# One DNS label (RFC 1123).
_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_URL = "an http:// or https:// URL"
_MIRROR = "an http:// or https:// mirror URL"
_PROXY = "an http:// or https:// proxy URL"
_REGISTRY = "host[:port] (e.g. registry.internal:5000) or a CIDR network (e.g. 10.0.0.0/8)"
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s]+@")
_CREDENTIALS = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://([^/?#@\s]+)@")
# daemon.json keys that must name the host's files for a listener other than the unix socket.
TLS_OPTIONS = ("tlscacert", "tlscert", "tlskey")
# Listeners of dockerd that stay on the host: its unix socket, the socket systemd passes it.
_LOCAL_HOSTS = ("unix://", "fd://")


def masked(text: str) -> str:
    """TEXT with every URL's user information (a user name, a password, a token) shown as ***."""
    return _USERINFO.sub(r"\1***@", str(text))


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(k) + _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for item in value for s in _strings(item)]
    return []


def credentials_in(value: object) -> list[str]:
    """The secret of every URL with user information in VALUE (a string, or JSON-like data):
    its password, or its user name when it has no password (a token)."""
    found: set[str] = set()
    for text in _strings(value):
        for match in _CREDENTIALS.finditer(text):
            user, _colon, password = match.group(1).partition(":")
            secret = password or user
            # as the text holds it, and decoded (as a file the role writes may hold it)
            found.update(s for s in (secret, unquote(secret)) if s)
    return sorted(found)


def without_credentials(url: str) -> str:
    """URL without its user information (user:password@)."""
    parts = urlsplit(url)
    if parts.username is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def apt_auth_entry(url: str) -> str | None:
    """The auth.conf(5) line that gives apt URL's user and password for URL's scheme, host, port
    and path, or None when URL has no credentials. apt matches a machine without a scheme only
    for https, so the scheme is always written."""
    parts = urlsplit(url)
    if parts.username is None:
        return None
    machine = without_credentials(url).rstrip("/")
    return "machine %s login %s password %s\n" % (
        machine,
        unquote(parts.username),
        unquote(parts.password or ""),
    )


def normalize_fingerprint(value: str) -> str:
    """The fingerprint as the role compares it: no spaces, upper case."""
    return "".join(str(value).split()).upper()


def fingerprint_problem(value: object) -> str | None:
    """An OpenPGP fingerprint: 40 hexadecimal digits, spaces allowed, any case."""
    accepted = "must be 40 hexadecimal digits (spaces and lower case allowed)"
    if not isinstance(value, str):
        return accepted
    digits = normalize_fingerprint(value)
    if not _HEX.match(digits):
        return accepted + ", found characters other than 0-9 and A-F"
    if len(digits) != _FINGERPRINT_DIGITS:
        return f"{accepted}, found {len(digits)}"
    return None


def _host_problem(host: str) -> str | None:
    """A host name (dot-separated labels) or an IP address; None when well formed."""
    if not host:
        return "it has no host"
    try:
        ipaddress.ip_address(host.strip("[]"))
        return None
    except ValueError:
        pass
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        return f"{host!r} is not a host name"
    return None


def url_problem(value: object) -> str | None:
    """An http:// or https:// URL with a host (a path is allowed), and credentials apt can use."""
    problem = _url_shape_problem(value)
    if problem:
        return problem
    parts = urlsplit(str(value))
    return _credentials_problem(parts.username, parts.password)


def _url_shape_problem(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return f"must be {_URL}"
    if any(ch.isspace() for ch in value):
        return f"must be {_URL} without spaces"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        return f"must be {_URL} ({exc})"
    if parts.scheme not in ("http", "https"):
        return f"must be {_URL}, e.g. https://download.docker.com/linux/ubuntu"
    problem = _host_problem(parts.hostname or "")
    if problem:
        return f"must be {_URL} with a host: {problem}"
    if port == 0:
        return f"must be {_URL}: port 0 is not a port (1-65535)"
    return None


def _credentials_problem(user: str | None, password: str | None) -> str | None:
    """User information apt's auth.conf can hold: a user and a password (a token is the password),
    neither with spaces once decoded."""
    if user is None:
        return None
    if not password:
        return f"must be {_URL} with user:password@ (a token as the password), not a user alone"
    if any(ch.isspace() for ch in unquote(user) + unquote(password)):
        return f"must be {_URL} whose user and password have no spaces (apt's auth.conf)"
    return None


def registry_mirror_problem(value: object) -> str | None:
    """A registry mirror as dockerd accepts it: an http(s) URL without query, fragment or
    credentials."""
    problem = _url_shape_problem(value)
    if problem:
        return problem.replace(_URL, _MIRROR, 1)
    parts = urlsplit(str(value))
    if parts.query or parts.fragment:
        return f"must be {_MIRROR} without ?query or #fragment"
    if parts.username is not None:
        return f"must be {_MIRROR} without a user name or password"
    return None


def insecure_registry_problem(value: object) -> str | None:
    """An insecure registry as dockerd accepts it: host[:port] without a scheme, or a CIDR
    network."""
    if not isinstance(value, str) or not value:
        return f"must be {_REGISTRY}"
    if "://" in value:
        return f"must be {_REGISTRY}, without a scheme such as http://"
    if "/" in value:
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            return f"must be {_REGISTRY}"
        if network.prefixlen == 0:
            return (
                f"must be {_REGISTRY}, not every address: that turns off TLS verification for"
                " every registry; name the registries or their networks"
            )
        return None
    host, port = value, ""
    if value.startswith("[") and "]:" in value:  # [IPv6]:port
        host, _colon, port = value.rpartition(":")
    elif value.count(":") == 1:  # host:port (more colons: a bare IPv6 address)
        host, _colon, port = value.partition(":")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        return f"must be {_REGISTRY}: {port!r} is not a port (1-65535)"
    problem = _host_problem(host)
    if problem:
        return f"must be {_REGISTRY}: {problem}"
    return None


def architecture_problem(value: object) -> str | None:
    """A Debian architecture name the role supports."""
    if value not in SUPPORTED_ARCHITECTURES:
        names = ", ".join(SUPPORTED_ARCHITECTURES)
        return f"must be one of {names} (Debian architecture names)"
    return None


def _items_problem(function: Callable[[object], str | None], values: object) -> str | None:
    if not isinstance(values, (list, tuple)):
        return None
    for index, item in enumerate(values):
        problem = function(item)
        if problem:
            return f"item {index + 1} ({masked(repr(item))}) {problem}"
    return None


def _listener_problem(host: object) -> str | None:
    if not isinstance(host, str) or not host:
        return "must be a listener such as unix:///var/run/docker.sock or tcp://ADDRESS:2376"
    if host.startswith(_LOCAL_HOSTS):
        return None
    if not host.startswith("tcp://"):
        return "must be unix://, fd:// or tcp:// (with TLS)"
    problem = _host_problem(urlsplit(host).hostname or "")
    return f"must be tcp://ADDRESS[:PORT]: {problem}" if problem else None


def daemon_options_problem(value: object) -> str | None:
    """docker_daemon_options: a listener other than the unix socket only with TLS client
    verification (an unauthenticated TCP socket is root on the host for anyone who reaches it),
    and registry-mirrors / insecure-registries as their own variables take them."""
    if not isinstance(value, dict):
        return None  # the argument spec's job
    for key, check in (
        ("registry-mirrors", registry_mirror_problem),
        ("insecure-registries", insecure_registry_problem),
    ):
        problem = _items_problem(check, value.get(key))
        if problem:
            return f"{key} {problem}"
    # ("hosts" has its own rule: an ssh://user@ listener is refused there)
    holding = sorted(k for k, v in value.items() if k != "hosts" and credentials_in(v))
    if holding:
        return (
            "%s must hold no credentials (user:password@ in a URL): give a proxy as docker_proxy,"
            " whose credentials the role keeps out of every output and file others can read"
            % ", ".join(holding)
        )
    hosts = value.get("hosts")
    if hosts is None:
        return None
    if not isinstance(hosts, list):
        return "hosts must be a list of listeners"
    problem = _items_problem(_listener_problem, hosts)
    if problem:
        return f"hosts {problem}"
    remote = [h for h in hosts if not str(h).startswith(_LOCAL_HOSTS)]
    if not remote:
        return None
    missing = [k for k in TLS_OPTIONS if not str(value.get(k) or "").startswith("/")]
    if value.get("tlsverify") is not True or missing:
        return (
            "hosts %s opens the daemon to the network: that needs TLS with client verification"
            ' ("tlsverify": true and "tlscacert", "tlscert", "tlskey" as absolute paths of'
            " files on the host)%s"
            % (", ".join(remote), "; missing: " + ", ".join(missing) if missing else "")
        )
    return None


def proxy_url_problem(value: object) -> str | None:
    """A proxy as docker_proxy takes it: an http(s) URL of the proxy itself, user information
    allowed (the role keeps it out of output and of files others can read), without a path,
    query or fragment."""
    problem = url_problem(value)
    if problem:
        return problem.replace(_URL, _PROXY, 1)
    parts = urlsplit(str(value))
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return f"must be {_PROXY} without a path, ?query or #fragment"
    return None


def _no_proxy_problem(value: object) -> str | None:
    if not isinstance(value, str) or not value or any(c.isspace() or c == "," for c in value):
        return "must be a host, .domain, address or CIDR network (one per item, no commas)"
    return None


def proxy_problem(value: object) -> str | None:
    """docker_proxy: {http, https, no_proxy}; the URLs may be empty (no proxy for that
    scheme)."""
    if not isinstance(value, dict):
        return None  # the argument spec's job
    for key in ("http", "https"):
        if value.get(key):
            problem = proxy_url_problem(value[key])
            if problem:
                return f"{key} {masked(repr(value[key]))} {problem}"
    problem = _items_problem(_no_proxy_problem, value.get("no_proxy"))
    return f"no_proxy {problem}" if problem else None


# Role variable -> (its check, whether the variable is a list of such values).
_CHECKS = {
    "docker_apt_key_fingerprint": (fingerprint_problem, False),
    "docker_apt_repository_url": (url_problem, False),
    "docker_apt_key_url": (url_problem, False),
    "docker_apt_architecture": (architecture_problem, False),
    "docker_registry_mirrors": (registry_mirror_problem, True),
    "docker_insecure_registries": (insecure_registry_problem, True),
    "docker_daemon_options": (daemon_options_problem, False),
    "docker_proxy": (proxy_problem, False),
}
CHECKED_OPTIONS = tuple(sorted(_CHECKS))


def option_problem(name: str, value: object) -> str | None:
    """The format problem of role variable NAME's VALUE, or None (also for a variable without a
    format rule). Types are the argument spec's job: a list variable whose value is not a list
    is left to it."""
    check = _CHECKS.get(name)
    if check is None:
        return None
    function, is_list = check
    if not is_list:
        return function(value)
    return _items_problem(function, value)

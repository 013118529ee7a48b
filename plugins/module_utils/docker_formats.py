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
#   normalize_fingerprint(value) -> str, SUPPORTED_ARCHITECTURES, CHECKED_OPTIONS
from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

# Debian architecture names Docker publishes packages for and the role supports.
SUPPORTED_ARCHITECTURES = ("amd64", "arm64")

_FINGERPRINT_DIGITS = 40
_HEX = re.compile(r"^[0-9A-F]*$")
# One DNS label (RFC 1123).
_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_URL = "an http:// or https:// URL"
_MIRROR = "an http:// or https:// mirror URL"
_REGISTRY = "host[:port] (e.g. registry.internal:5000) or a CIDR network (e.g. 10.0.0.0/8)"


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
    """An http:// or https:// URL with a host (a path is allowed)."""
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


def registry_mirror_problem(value: object) -> str | None:
    """A registry mirror as dockerd accepts it: an http(s) URL without query, fragment or
    credentials."""
    problem = url_problem(value)
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
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            return f"must be {_REGISTRY}"
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


# Role variable -> (its check, whether the variable is a list of such values).
_CHECKS = {
    "docker_apt_key_fingerprint": (fingerprint_problem, False),
    "docker_apt_repository_url": (url_problem, False),
    "docker_apt_key_url": (url_problem, False),
    "docker_apt_architecture": (architecture_problem, False),
    "docker_registry_mirrors": (registry_mirror_problem, True),
    "docker_insecure_registries": (insecure_registry_problem, True),
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
    if not isinstance(value, (list, tuple)):
        return None
    for index, item in enumerate(value):
        problem = function(item)
        if problem:
            return f"item {index + 1} ({item!r}) {problem}"
    return None

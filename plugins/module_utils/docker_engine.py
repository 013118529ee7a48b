# Questions to a running dockerd over its unix socket (the Engine API, unversioned paths that
# every engine since 1.x answers): does it answer, which containers run, is live-restore on.
# The role asks only when a decision depends on it, and never connects to a socket whose
# service is not active (a connection would start a socket-activated engine).
# Python 3.8, standard library only.
from __future__ import annotations

import json
import socket
from http.client import HTTPConnection
from typing import Any, Dict, Tuple

SOCKET = "/var/run/docker.sock"


class _UnixConnection(HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        HTTPConnection.__init__(self, "localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def get(path: str, sock: str = SOCKET, timeout: float = 5.0) -> Tuple[int, bytes]:
    """(HTTP status, body bytes) of GET PATH on the engine's socket; OSError when it does not
    answer."""
    connection = _UnixConnection(sock, timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def ping(sock: str = SOCKET, timeout: float = 5.0) -> bool:
    """True when dockerd answers /_ping with OK."""
    try:
        status, body = get("/_ping", sock, timeout)
    except OSError:
        return False
    return status == 200 and body.strip() == b"OK"


def state(sock: str = SOCKET, timeout: float = 5.0) -> Dict[str, Any]:
    """{"containers": [names of running containers], "live_restore": bool}, or {"error": why}."""
    try:
        status, body = get("/containers/json", sock, timeout)
        info_status, info = get("/info", sock, timeout)
        if status != 200 or info_status != 200:
            return {"error": "the engine answered HTTP %d/%d" % (status, info_status)}
        containers = json.loads(body.decode("utf-8"))
        details = json.loads(info.decode("utf-8"))
    except (OSError, ValueError) as error:
        return {"error": "%s does not answer: %s" % (sock, error)}
    names = []
    for container in containers:
        found = [n.lstrip("/") for n in container.get("Names") or []]
        names.append(found[0] if found else str(container.get("Id", "?"))[:12])
    return {"containers": sorted(names), "live_restore": bool(details.get("LiveRestoreEnabled"))}

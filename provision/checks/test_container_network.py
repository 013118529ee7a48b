"""Container networking with the engine's default configuration: what users rely on right after
the install. A container on the default bridge reaches a URL (``network_url``), and a port
published with ``-p`` answers on the host. Both run ``network_image`` (busybox: ``wget`` and
``httpd``) as the docker user, and remove the image again if they pulled it.
"""

from __future__ import annotations

import secrets
import shlex
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .expectations import Expectations

if TYPE_CHECKING:
    from testinfra.host import Host

PAGE = "provision-published-port-ok"
# Bounded waits: a pull through a mirror, httpd starting in its container.
FETCH_TIMEOUT_S = 20
PORT_ATTEMPTS = 20
# Reads a URL on the host itself with the Python every Ansible target has.
URL_READER = (
    "import sys, urllib.request; "
    "print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"
)

Docker = Callable[..., Any]


@pytest.fixture(scope="module")
def docker(host: Host, expect: Expectations) -> Docker:
    """Runs ``docker ARGS`` on the host as the first docker user (else the connecting user)."""
    login = str(host.user().name)
    user = expect.users[0] if expect.users else login

    def run(*args: str) -> Any:
        command = shlex.join(["docker", *args])
        if user == login:
            return host.run(command)
        with host.sudo(user):
            return host.run(command)

    return run


@pytest.fixture(scope="module")
def network_image(docker: Docker, expect: Expectations) -> Iterator[str]:
    """The checks' image, pulled if missing and removed afterwards in that case."""
    image = expect.network_image
    had_it = docker("image", "inspect", image).rc == 0
    if not had_it:
        pulled = docker("pull", "--quiet", image)
        assert pulled.rc == 0, f"docker pull {image}: {pulled.stderr}"
    yield image
    if not had_it:
        docker("rmi", image)


def test_container_on_default_bridge_reaches_the_network(
    docker: Docker, network_image: str, expect: Expectations
) -> None:
    # `timeout`, not wget's -T: Debian's static busybox crashes on -T.
    fetched = docker(
        "run", "--rm", network_image,
        "timeout", str(FETCH_TIMEOUT_S), "wget", "-q", "-O", "/dev/null", expect.network_url,
    )  # fmt: skip
    assert fetched.rc == 0, (
        f"a container on the default bridge cannot fetch {expect.network_url}: "
        f"{fetched.stderr.strip() or fetched.stdout.strip()}"
    )


def test_published_port_answers_on_the_host(host: Host, docker: Docker, network_image: str) -> None:
    name = f"provision-check-port-{secrets.token_hex(3)}"
    serve = f"mkdir -p /www && echo {PAGE} > /www/index.html && exec httpd -f -p 80 -h /www"
    started = docker("run", "-d", "--name", name, "-p", "80", network_image, "sh", "-c", serve)
    assert started.rc == 0, f"docker run -p 80: {started.stderr}"
    try:
        mapping = docker("port", name, "80/tcp")
        assert mapping.rc == 0, mapping.stderr
        port = mapping.stdout.split()[0].rsplit(":", 1)[1]
        url = f"http://127.0.0.1:{port}/"
        answer = None
        for _ in range(PORT_ATTEMPTS):
            answer = host.run(shlex.join(["python3", "-c", URL_READER, url]))
            if answer.rc == 0:
                break
            time.sleep(0.5)
        assert answer is not None
        assert answer.rc == 0, f"{url} (published from {name}) did not answer: {answer.stderr}"
        assert PAGE in answer.stdout
    finally:
        docker("rm", "--force", name)

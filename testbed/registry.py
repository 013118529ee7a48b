"""A Docker Hub mirror on the test bed's network: a registry holding images the test bed builds.

Two registry processes share one storage root. The machine's own dockerd pushes into one on
127.0.0.1, which it trusts over plain HTTP by default (no daemon.json change on the machine); it
runs only while pushing. The hosts pull from a read-only one on the network's gateway address,
which they list in `docker_registry_mirrors` and `docker_insecure_registries`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from testbed import network, servers
from testbed.util import (
    TestbedError,
    fingerprint_of,
    free_port,
    port_open,
    run,
    spawn,
    state_dir,
    wait_until,
)

HELLO_C = r"""
/* The test bed's hello-world: what Docker Hub's image prints, proven without Docker Hub. */
#include <unistd.h>

static const char message[] =
    "\nHello from Docker!\n"
    "This message shows that your installation appears to be working correctly.\n"
    "(provision test bed: this image came through your registry mirror.)\n\n";

int main(void) {
    return write(1, message, sizeof message - 1) == (ssize_t)(sizeof message - 1) ? 0 : 1;
}
"""

HELLO_DOCKERFILE = 'FROM scratch\nCOPY hello /hello\nCMD ["/hello"]\n'

BUSYBOX_DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["sh"]
"""

CONFIG = """version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}
  maintenance:
    readonly:
      enabled: {readonly}
http:
  addr: {address}:{port}
"""

IMAGES = ("hello-world", "busybox")
# Also kept in the machine's image store under this name: the machine check runs it (no pull).
LOCAL_BUSYBOX = "provision-testbed/busybox:latest"


def storage() -> Path:
    return state_dir() / "registry" / "data"


def start_registry(name: str, address: str, port: int, *, readonly: bool) -> int:
    config = state_dir() / f"{name}.yml"
    config.write_text(
        CONFIG.format(root=storage(), readonly=str(readonly).lower(), address=address, port=port)
    )
    pid = spawn(["docker-registry", "serve", str(config)], log_file=state_dir() / f"{name}.log")
    wait_until(lambda: port_open(port, address), timeout=30, what=f"the registry {name}")
    return pid


@contextmanager
def push_registry() -> Iterator[int]:
    """A writable registry on 127.0.0.1 for as long as the machine's dockerd pushes."""
    port = free_port()
    pid = start_registry("registry-push", "127.0.0.1", port, readonly=False)
    try:
        yield port
    finally:
        os.kill(pid, 15)


def recipe() -> str:
    return fingerprint_of(HELLO_C, HELLO_DOCKERFILE, BUSYBOX_DOCKERFILE)


def build_context(name: str, context: Path) -> None:
    if name == "hello-world":
        (context / "hello.c").write_text(HELLO_C)
        run(["gcc", "-static", "-Os", "-s", "-o", str(context / "hello"), str(context / "hello.c")])
        (context / "Dockerfile").write_text(HELLO_DOCKERFILE)
    else:
        shutil.copy("/bin/busybox", context / "busybox")
        (context / "Dockerfile").write_text(BUSYBOX_DOCKERFILE)


def has_image(address: str, port: int, name: str) -> bool:
    url = f"http://{address}:{port}/v2/library/{name}/tags/list"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return "latest" in (json.load(response).get("tags") or [])
    except OSError:
        return False


def push_images() -> None:
    with push_registry() as port:
        for name in IMAGES:
            tag = f"127.0.0.1:{port}/library/{name}:latest"
            with tempfile.TemporaryDirectory() as context:
                build_context(name, Path(context))
                run(["docker", "build", "--network", "host", "-q", "-t", tag, context])
            # 127.0.0.0/8 registries are insecure-allowed by default: plain HTTP works here.
            run(["docker", "push", "-q", tag])
            if name == "busybox":
                run(["docker", "tag", tag, LOCAL_BUSYBOX], capture=True)
            run(["docker", "image", "rm", tag], capture=True, check=False)


def serve(state: dict[str, Any]) -> int:
    """The read-only mirror on the gateway address (see servers.py)."""

    def start(address: str, port: int) -> int:
        storage().mkdir(parents=True, exist_ok=True)
        return start_registry("registry", address, port, readonly=True)

    return servers.ensure(state, "registry", start)


def ensure(state: dict[str, Any]) -> None:
    port = serve(state)
    address = network.gateway(state)
    fresh = state.get("registry_recipe") == recipe()
    local = image_present(LOCAL_BUSYBOX)
    if not (fresh and local and all(has_image(address, port, name) for name in IMAGES)):
        push_images()
        state["registry_recipe"] = recipe()
    if not all(has_image(address, port, name) for name in IMAGES):
        raise TestbedError(f"the mirror at {address}:{port} does not serve {', '.join(IMAGES)}")


def image_present(tag: str) -> bool:
    return run(["docker", "image", "inspect", tag], capture=True, check=False).returncode == 0


def stop(state: dict[str, Any]) -> None:
    servers.stop(state, "registry")

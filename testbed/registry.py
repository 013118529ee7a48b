"""A Docker Hub mirror on 127.0.0.1: a registry holding images the test bed builds itself."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from testbed.util import (
    fingerprint_of,
    free_port,
    pid_alive,
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
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""

IMAGES = ("hello-world", "busybox")


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


def has_image(port: int, name: str) -> bool:
    url = f"http://127.0.0.1:{port}/v2/library/{name}/tags/list"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return "latest" in (json.load(response).get("tags") or [])
    except OSError:
        return False


def push_images(port: int) -> None:
    for name in IMAGES:
        tag = f"127.0.0.1:{port}/library/{name}:latest"
        with tempfile.TemporaryDirectory() as context:
            build_context(name, Path(context))
            run(["docker", "build", "--network", "host", "-q", "-t", tag, context])
        # 127.0.0.0/8 registries are insecure-allowed by default: plain HTTP works here.
        run(["docker", "push", "-q", tag])


def serve(state: dict[str, Any]) -> int:
    port = state.get("registry_port")
    if not (port and pid_alive(state.get("registry_pid")) and port_open(port)):
        port = free_port()
        root = state_dir() / "registry"
        root.mkdir(exist_ok=True)
        config = state_dir() / "registry.yml"
        config.write_text(CONFIG.format(root=root / "data", port=port))
        pid = spawn(
            ["docker-registry", "serve", str(config)], log_file=state_dir() / "registry.log"
        )
        wait_until(lambda: port_open(port), timeout=30, what="the registry")
        state.update(registry_port=port, registry_pid=pid)
    return int(port)


def ensure(state: dict[str, Any]) -> None:
    port = serve(state)
    fresh = state.get("registry_recipe") == recipe()
    if not (fresh and all(has_image(port, name) for name in IMAGES)):
        push_images(port)
        state["registry_recipe"] = recipe()


def stop(state: dict[str, Any]) -> None:
    pid = state.pop("registry_pid", None)
    if pid_alive(pid):
        os.kill(pid, 15)
    state.pop("registry_port", None)

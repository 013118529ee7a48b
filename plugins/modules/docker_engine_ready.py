#!/usr/bin/python
# Proof that the engine the role installed, started, restarted or reloaded answers: systemd
# reporting a started unit is not enough (a `systemctl start` merges into a pending auto-restart
# job and succeeds while dockerd crash-loops). Waits, bounded, for dockerd's /_ping on its socket;
# otherwise fails with the unit's state and its last journal lines.
from __future__ import annotations

DOCUMENTATION = r"""
module: docker_engine_ready
short_description: Wait until dockerd answers on its socket, or fail with why it does not
version_added: 0.1.0
description:
- Asks dockerd C(GET /_ping) on O(socket) until it answers C(OK), for at most O(timeout) seconds.
- Stops waiting early when O(unit) stays C(failed) or C(inactive) for 3 seconds (a crash loop
  that hit systemd's start limit, a unit that cannot start).
- Fails with the unit's state (ActiveState, SubState, Result, ExecMainStatus) and the last
  O(journal_lines) lines of its journal, in one message.
- Changes nothing; returns C(version), the engine's version.
options:
  socket:
    description: dockerd's unix socket.
    type: path
    default: /var/run/docker.sock
  unit:
    description: The engine's systemd unit.
    type: str
    default: docker.service
  timeout:
    description: Seconds to wait at most.
    type: int
    default: 60
  journal_lines:
    description: Journal lines of O(unit) shown when it does not answer.
    type: int
    default: 8
author:
- provision maintainers (@provision)
"""

EXAMPLES = r"""
- name: Wait until dockerd answers on its socket
  provision.hosts.docker_engine_ready:
    timeout: 60
"""

RETURN = r"""
version:
  description: The engine's version (from C(GET /version)).
  returned: success
  type: str
waited:
  description: Seconds waited.
  returned: always
  type: float
"""

import json
import time
from typing import Dict, Optional

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.provision.hosts.plugins.module_utils import docker_engine

PROPERTIES = "ActiveState,SubState,Result,ExecMainStatus"
DOWN = ("failed", "inactive")
SETTLED = 3.0  # seconds a unit must stay down before waiting stops


def unit_state(module: AnsibleModule, unit: str) -> Dict[str, str]:
    _rc, out, _err = module.run_command(
        ["systemctl", "show", "--property=" + PROPERTIES, unit], environ_update={"LC_ALL": "C"}
    )
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def journal(module: AnsibleModule, unit: str, lines: int) -> str:
    _rc, out, _err = module.run_command(
        ["journalctl", "--unit", unit, "--lines", str(lines), "--no-pager", "--output", "cat"],
        environ_update={"LC_ALL": "C"},
    )
    return " | ".join(line.strip() for line in out.splitlines() if line.strip())


def version(sock: str) -> str:
    try:
        status, body = docker_engine.get("/version", sock)
        return str(json.loads(body.decode("utf-8")).get("Version", "")) if status == 200 else ""
    except (OSError, ValueError):
        return ""


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "socket": {"type": "path", "default": docker_engine.SOCKET},
            "unit": {"type": "str", "default": "docker.service"},
            "timeout": {"type": "int", "default": 60},
            "journal_lines": {"type": "int", "default": 8},
        },
        supports_check_mode=True,
    )
    p = module.params
    started = time.monotonic()
    down_since: Optional[float] = None
    state: Dict[str, str] = {}
    while True:
        if docker_engine.ping(p["socket"], timeout=5.0):
            module.exit_json(
                changed=False,
                version=version(p["socket"]),
                waited=round(time.monotonic() - started, 1),
            )
        now = time.monotonic()
        state = unit_state(module, p["unit"])
        if state.get("ActiveState") in DOWN:
            down_since = down_since if down_since is not None else now
        else:
            down_since = None
        if now - started >= p["timeout"] or (
            down_since is not None and now - down_since >= SETTLED
        ):
            break
        time.sleep(0.5)
    waited = round(time.monotonic() - started, 1)
    module.fail_json(
        msg="dockerd does not answer on %s after %s s: %s is %s (%s, result %s, exit status %s)."
        " Last journal lines: %s"
        % (
            p["socket"],
            waited,
            p["unit"],
            state.get("ActiveState", "?"),
            state.get("SubState", "?"),
            state.get("Result", "?"),
            state.get("ExecMainStatus", "?"),
            journal(module, p["unit"], p["journal_lines"]) or "(none)",
        ),
        waited=waited,
    )


if __name__ == "__main__":
    main()

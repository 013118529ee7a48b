"""What the machine's own Docker looks like: recorded when the test bed starts, compared after
the suite (tests/machine). The test bed must leave docker0, its address and its rules alone."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from testbed.util import log, state_dir

BRIDGE = "docker0"


def snapshot_file() -> Path:
    return state_dir() / "machine-docker.json"


def bridge_addresses() -> list[str]:
    """docker0's IPv4 addresses with their prefix length ([] when the link is missing)."""
    probe = subprocess.run(
        ["ip", "-j", "-4", "addr", "show", "dev", BRIDGE],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0 or not probe.stdout.strip():
        return []
    return sorted(
        f"{info['local']}/{info['prefixlen']}"
        for link in json.loads(probe.stdout)
        for info in link.get("addr_info", [])
    )


def bridge_rules() -> list[str]:
    """The machine's iptables rules (every table) that name docker0, in order."""
    dump = subprocess.run(
        ["iptables-save"], capture_output=True, text=True, check=False, timeout=60
    ).stdout
    return [line for line in dump.splitlines() if line.startswith("-A ") and BRIDGE in line]


def snapshot() -> dict[str, Any]:
    return {"addresses": bridge_addresses(), "rules": bridge_rules()}


def record(*, replace: bool) -> None:
    """Write the snapshot (the first time, or when the test bed has just started dockerd)."""
    target = snapshot_file()
    if target.exists() and not replace:
        return
    taken = snapshot()
    target.write_text(json.dumps(taken, indent=2) + "\n")
    log(f"recorded the machine's {BRIDGE}: {', '.join(taken['addresses']) or 'missing'}")


def recorded() -> dict[str, Any] | None:
    target = snapshot_file()
    return dict(json.loads(target.read_text())) if target.exists() else None

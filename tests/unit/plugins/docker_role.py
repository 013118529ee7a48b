"""What the plugins' unit tests start from: the role's own constants and defaults (read from
roles/docker/vars/main.yml and defaults/main.yml, not copied), and the reading docker_host_facts
returns for a focal host that the role has converged."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml
from ansible_collections.provision.hosts.plugins.module_utils import docker_plan

ROLE = Path(__file__).resolve().parents[3] / "roles" / "docker"
VARS: dict[str, Any] = yaml.safe_load((ROLE / "vars" / "main.yml").read_text(encoding="utf-8"))
DEFAULTS: dict[str, Any] = yaml.safe_load(
    (ROLE / "defaults" / "main.yml").read_text(encoding="utf-8")
)
TEST_KEY = "93438B4689AB4A1AB710DB6C3A11C6C5A91AECE4"
SECOND_KEY = "1F7DB1A6C4ED070DABC01477C596657E594A77F9"
REPOSITORY = "http://10.213.7.1:38581/linux/ubuntu"
STARTED_AT = 1_800_000_000.0  # dockerd's start, wall clock
VERSION = "5:26.1.3-1~ubuntu.20.04~focal"


def role_want(**overrides: Any) -> dict[str, Any]:
    """The plan's `want` as vars/main.yml wires it from the role's defaults (docker_users,
    whose default needs facts, is `ops`), with OVERRIDES."""
    want: dict[str, Any] = {}
    for key, template in VARS["docker__want"].items():
        match = re.fullmatch(r"\{\{ (docker_\w+) \}\}", template)
        assert match, f"docker__want.{key} is not plain wiring: {template}"
        want[key] = copy.deepcopy(DEFAULTS.get(match.group(1)))
    want.update(users=["ops"], repository_url=REPOSITORY, fingerprint=TEST_KEY)
    want.update(overrides)
    return want


def state(mode: str, *, is_dir: bool = False, uid: int = 0, gid: int = 0, **extra: Any) -> Any:
    return {"exists": True, "is_dir": is_dir, "mode": mode, "uid": uid, "gid": gid, **extra}


def converged_host(want: dict[str, Any] | None = None) -> dict[str, Any]:
    """What docker_host_facts reads on a focal host the role converged with WANT."""
    want = want or role_want()
    paths, rules = VARS["docker__paths"], VARS["docker__rules"]
    os_release = {"distribution": "ubuntu", "codename": "focal", "name": "Ubuntu 20.04.6 LTS"}
    resolved = docker_plan.resolve(os_release, "amd64", want)
    config = docker_plan.daemon_desired(want)
    daemon_json = docker_plan.to_json(config)
    mtime = STARTED_AT - 100
    packages = {
        name: {"want": "install", "status": "installed", "version": VERSION}
        for name in [*want["packages"], *rules["prerequisite_packages"]]
    }
    unit = {"load": "loaded", "enabled": "enabled", "active": "active", "sub": "running"}
    return {
        "os": os_release,
        "architecture": "amd64",
        "machine": "x86_64",
        "packages": packages,
        "dpkg": {"journal": []},
        "key": state("0644", path=paths["key"], fingerprint=TEST_KEY),
        "files": {
            "source": state(
                "0644",
                content=docker_plan.source_content(resolved, want, paths, rules),
            ),
            "daemon_json": state(
                "0644",
                path=paths["daemon_json"],
                content=daemon_json,
                json=config,
                mtime=mtime,
                mtime_ns=int(mtime * 1e9),
            ),
            "record": state("0644", json={"daemon_keys": sorted(config)}),
            "users_record": state("0644", json={"users": sorted(want["users"])}),
        },
        "dirs": {
            paths[d]: state("0755", is_dir=True) for d in ("keyring_dir", "docker_dir", "facts_dir")
        },
        "sources": {
            paths["source"]: {
                "content": docker_plan.source_content(resolved, want, paths, rules),
                "mode": "0644",
            }
        },
        "legacy_keys": [],
        "apt_key_fingerprints": [],
        "units": {
            "containerd": {**unit, "started_at": STARTED_AT - 1},
            "docker.socket": {**unit, "sub": "running", "started_at": STARTED_AT - 1},
            "docker": {**unit, "started_at": STARTED_AT},
        },
        "users": {u: True for u in want["users"]},
        "group": {"exists": True, "members": list(want["users"])},
        "data_dirs": list(paths["data_dirs"]),
        "read": [],
    }

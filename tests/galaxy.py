"""What the tests share to build the collection and install it the way ops teams and AWX do:
the release tarball (scripts/collection), then ``ansible-galaxy collection install -r
requirements.yml`` into a collections path of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
NAMESPACE, NAME = "provision", "hosts"
GALAXY = REPO / "galaxy.yml"
BIN = Path(sys.executable).parent
# No Galaxy server may be contacted: a refused loopback port makes any attempt fail at once.
DEAD_SERVER = "http://127.0.0.1:9/"


def galaxy_metadata() -> dict[str, Any]:
    document = yaml.safe_load(GALAXY.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def ansible_env(collections_path: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of an Ansible command: no project ansible.cfg or ANSIBLE_* settings, no
    Galaxy server, and with COLLECTIONS_PATH only the collections there (no user or system
    ones)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["ANSIBLE_GALAXY_SERVER"] = DEAD_SERVER
    if collections_path is not None:
        env["ANSIBLE_COLLECTIONS_PATH"] = str(collections_path)
    env.update(extra)
    return env


def call(
    argv: Sequence[str | Path],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run ARGV (by default in ansible_env()), capturing its output as text."""
    return subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=dict(env) if env is not None else ansible_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run(
    argv: Sequence[str | Path],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """call(ARGV); fail the test with its output unless it exits 0."""
    proc = call(argv, cwd=cwd, env=env, timeout=timeout)
    assert proc.returncode == 0, (
        f"{' '.join(map(str, argv))} exited {proc.returncode}:\n"
        f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    return proc


def build(output_dir: Path) -> Path:
    """The release tarball of the checkout (scripts/collection: ansible-galaxy's build, with the
    collection's README at its root); its path."""
    output_dir.mkdir(parents=True, exist_ok=True)
    run([sys.executable, REPO / "scripts" / "collection", output_dir], cwd=output_dir)
    version = galaxy_metadata()["version"]
    tarball = output_dir / f"{NAMESPACE}-{NAME}-{version}.tar.gz"
    assert tarball.is_file(), f"scripts/collection did not write {tarball}"
    return tarball


def build_plain(output_dir: Path) -> Path:
    """``ansible-galaxy collection build`` of the checkout as it stands (what a git install
    builds: no collection README at the root); the tarball's path."""
    output_dir.mkdir(parents=True, exist_ok=True)
    run(
        [BIN / "ansible-galaxy", "collection", "build", "--output-path", output_dir, REPO],
        cwd=output_dir,
    )
    (tarball,) = output_dir.glob(f"{NAMESPACE}-{NAME}-*.tar.gz")
    return tarball


def install(requirement: Mapping[str, str], collections_path: Path, workdir: Path) -> Path:
    """Install one ``collections/requirements.yml`` entry offline into COLLECTIONS_PATH, which
    must not hold the collection yet; the installed collection's directory."""
    installed = collections_path / "ansible_collections" / NAMESPACE / NAME
    assert not installed.exists(), f"{installed} is not an empty collections path"
    requirements = workdir / "requirements.yml"
    requirements.write_text(yaml.safe_dump({"collections": [dict(requirement)]}), "utf-8")
    env = ansible_env(collections_path)
    galaxy = BIN / "ansible-galaxy"
    run(
        [galaxy, "collection", "install", "--offline", "-r", requirements, "-p", collections_path],
        cwd=workdir,
        env=env,
    )
    assert (installed / "MANIFEST.json").is_file(), f"nothing installed at {installed}"
    # Every installed file matches the checksums the artifact's FILES.json records.
    run([galaxy, "collection", "verify", "--offline", f"{NAMESPACE}.{NAME}"], cwd=workdir, env=env)
    return installed


def git_requirement(repo: Path = REPO) -> dict[str, str]:
    """The requirements.yml entry an AWX project uses for a git source, pinned to the checkout's
    commit (what was committed is what a git install gets)."""
    commit = run(["git", "rev-parse", "HEAD"], cwd=repo, env=os.environ).stdout.strip()
    return {"name": f"git+file://{repo}", "type": "git", "version": commit}


# The playbook an ops team writes: the role by its fully qualified name, nothing else.
PLAYBOOK = """\
- hosts: all
  become: true
  roles: [provision.hosts.docker]
"""


@dataclass(frozen=True)
class PlayResult:
    """One run, read from ansible-runner's artifacts (status, job events), never from stdout."""

    status: str
    stats: dict[str, dict[str, int]]
    # The files the tasks that ran came from (playbook, role tasks, handlers).
    task_files: frozenset[str]
    stdout: str

    def count(self, key: str, host: str) -> int:
        return self.stats.get(key, {}).get(host, 0)

    def role_files(self) -> set[str]:
        return {f for f in self.task_files if "/roles/docker/" in f}


def play_result(artifacts: Path) -> PlayResult:
    """What ansible-runner recorded in ARTIFACTS (``<private_data_dir>/artifacts/<ident>``)."""
    stats: dict[str, dict[str, int]] = {}
    files: set[str] = set()
    for path in sorted((artifacts / "job_events").glob("*.json")):
        event = json.loads(path.read_text(encoding="utf-8"))
        data = event.get("event_data", {})
        if event.get("event") == "playbook_on_stats":
            stats = {k: v for k, v in data.items() if isinstance(v, dict)}
        task_path = data.get("task_path")
        if task_path:
            files.add(task_path.rsplit(":", 1)[0])
    stdout_file = artifacts / "stdout"
    return PlayResult(
        status=(artifacts / "status").read_text(encoding="utf-8").strip(),
        stats=stats,
        task_files=frozenset(files),
        stdout=stdout_file.read_text(encoding="utf-8", errors="replace")
        if stdout_file.exists()
        else "",
    )


def run_playbook(workdir: Path, inventory: Mapping[str, Any], collections_path: Path) -> PlayResult:
    """PLAYBOOK against INVENTORY through ansible-runner (a fresh private data dir in WORKDIR),
    seeing only the collections in COLLECTIONS_PATH."""
    workdir.mkdir(parents=True)
    (workdir / "project").mkdir()
    (workdir / "project" / "site.yml").write_text(PLAYBOOK, encoding="utf-8")
    (workdir / "inventory").mkdir()
    (workdir / "inventory" / "hosts.yml").write_text(yaml.safe_dump(dict(inventory)), "utf-8")
    call(
        [BIN / "ansible-runner", "run", workdir, "--playbook", "site.yml", "--ident", "run"],
        cwd=workdir,
        env=ansible_env(collections_path),
        timeout=1800,
    )
    return play_result(workdir / "artifacts" / "run")

"""The collection provision.hosts the ways ops teams get it, each converging a fresh test-bed host
with the three-line playbook (galaxy.PLAYBOOK), then re-running it with ``changed=0``:

- the built tarball, installed offline into an empty collections path;
- the git checkout (``git+file://``, as an AWX project's collections/requirements.yml names a git
  source), installed into another empty collections path;
- the execution environment of execution-environment.yml, built here on the test bed's Debian 12
  userland (Docker Hub is not reachable) and run by ``ansible-navigator --eei``;
- and ``provision`` from its wheel (not the editable checkout): it runs the collection the wheel
  ships, the only copy of the role it has.

Every run proves where the role came from: the role's task files of each run lie in the
collection it installed. Needs the test bed (``python -m testbed up``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests import galaxy
from tests.bed import bed_role_vars, ready_status, run_testbed

pytestmark = pytest.mark.integration

EE_IMAGE = "provision-hosts-ee:test"
# Where ansible-builder installs collections in the image.
EE_COLLECTION = "/usr/share/ansible/collections/ansible_collections/provision/hosts"


@pytest.fixture(scope="module")
def bed() -> dict[str, Any]:
    return {"status": ready_status(), "role_vars": bed_role_vars()}


@contextmanager
def fresh_host(name: str, role_vars: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """A new focal host; its name and an inventory with the test bed's role variables."""
    started = run_testbed("hosts", "start", f"{name}=focal")
    try:
        assert started.returncode == 0, started.stderr[-2000:]
        listed = run_testbed("hosts", "inventory", name, timeout=120)
        assert listed.returncode == 0, listed.stderr
        inventory = json.loads(listed.stdout)
        inventory["all"]["vars"] = role_vars
        yield name, inventory
    finally:
        run_testbed("hosts", "stop", name, timeout=300)


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return galaxy.build(tmp_path_factory.mktemp("artifact"))


def converged_twice(
    run: Callable[[str], galaxy.PlayResult], host: str, collection: Path | str
) -> None:
    """RUN(label) twice: the first converges HOST, the second changes nothing; both ran the
    role from COLLECTION."""
    first = run("converge")
    assert first.status == "successful", first.stdout[-3000:]
    assert first.count("changed", host) > 0
    second = run("again")
    assert second.status == "successful", second.stdout[-3000:]
    assert second.count("changed", host) == 0, second.stdout[-3000:]
    for result in (first, second):
        role_files = result.role_files()
        assert role_files, "no task of the role ran"
        assert all(f.startswith(f"{collection}/") for f in role_files), sorted(role_files)


@pytest.mark.parametrize("source", ["tarball", "git"])
def test_installed_collection_converges_a_fresh_host(
    source: str, bed: dict[str, Any], tarball: Path, tmp_path: Path
) -> None:
    requirement = (
        {"name": str(tarball), "type": "file"} if source == "tarball" else galaxy.git_requirement()
    )
    collections = tmp_path / "collections"
    installed = galaxy.install(requirement, collections, tmp_path)
    with fresh_host(f"coll{source}{os.getpid() % 100000}", bed["role_vars"]) as (host, inv):
        converged_twice(
            lambda label: galaxy.run_playbook(tmp_path / label, inv, collections),
            host,
            installed,
        )


def test_provision_wheel_runs_the_collection_it_ships(bed: dict[str, Any], tmp_path: Path) -> None:
    """A non-editable install: the wheel, unpacked into a directory of its own on PYTHONPATH (its
    dependencies from this environment), run from an empty directory."""
    galaxy.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", tmp_path / "wheel", galaxy.REPO],
        cwd=tmp_path,
        env=os.environ,
    )
    (wheel,) = (tmp_path / "wheel").glob("provision-*.whl")
    site = tmp_path / "site"
    galaxy.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", site, wheel],
        cwd=tmp_path,
        env=os.environ,
    )
    shipped = site / "provision" / "_data" / "collections" / "ansible_collections"
    # One copy of the role in the installed package: the collection's.
    assert list(site.rglob("roles/docker/tasks/main.yml")) == [
        shipped / "provision" / "hosts" / "roles" / "docker" / "tasks" / "main.yml"
    ]

    workdir = tmp_path / "work"
    workdir.mkdir()
    env = galaxy.ansible_env(PYTHONPATH=str(site), TMPDIR=str(workdir))
    where = galaxy.run(
        [sys.executable, "-c", "import provision; print(provision.__file__)"], cwd=workdir, env=env
    )
    assert Path(where.stdout.strip()).is_relative_to(site)

    with fresh_host(f"collwheel{os.getpid() % 100000}", bed["role_vars"]) as (_, inv):
        inventory = workdir / "inventory.yml"
        inventory.write_text(json.dumps(inv), encoding="utf-8")
        # --debug keeps ansible-runner's private data dir (in TMPDIR) for the events read below.
        applied = galaxy.call(
            [sys.executable, "-m", "provision", "--debug", "--json", "apply", "-i", inventory],
            cwd=workdir,
            env=env,
            timeout=1800,
        )
        assert applied.returncode == 0, applied.stderr[-3000:]
        assert json.loads(applied.stdout)["apply"]["changed"] > 0
    (artifacts,) = workdir.glob("provision-ansible-*/artifacts/*")
    role_files = galaxy.play_result(artifacts).role_files()
    assert role_files
    assert all(Path(f).is_relative_to(shipped) for f in role_files), sorted(role_files)


def image_id(tag: str) -> str | None:
    proc = galaxy.call(["docker", "image", "inspect", "--format", "{{.Id}}", tag], cwd=galaxy.REPO)
    return proc.stdout.strip() if proc.returncode == 0 else None


@pytest.fixture(scope="module")
def ee_image(bed: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> str:
    """The execution environment, built on the test bed's bookworm image (a debootstrap of
    Debian 12, the userland the definition's base image has)."""
    base = bed["status"]["images"]["bookworm"]
    env = galaxy.ansible_env(EE_DIR=str(tmp_path_factory.mktemp("ee")))
    previous = image_id(EE_IMAGE)
    galaxy.run(
        [
            galaxy.REPO / "scripts" / "ee",
            "build",
            "--tag",
            EE_IMAGE,
            "--build-arg",
            f"EE_BASE_IMAGE={base}",
            # The build's apt and pip traffic goes to the package archives as this machine's does.
            "--extra-build-cli-args=--network=host",
        ],
        cwd=galaxy.REPO,
        env=env,
        timeout=1800,
    )
    # The image the tag named before, unless the build reused it (its layers stay as the cache).
    if previous and previous != image_id(EE_IMAGE):
        galaxy.call(["docker", "image", "rm", previous], cwd=galaxy.REPO)
    return EE_IMAGE


def test_execution_environment_holds_ansible_core_and_the_collection(ee_image: str) -> None:
    def in_image(*argv: str) -> str:
        return galaxy.run(["docker", "run", "--rm", ee_image, *argv], cwd=galaxy.REPO).stdout

    listed = json.loads(in_image("ansible-galaxy", "collection", "list", "--format", "json"))
    found = {name: info["version"] for where in listed.values() for name, info in where.items()}
    assert found["provision.hosts"] == galaxy.galaxy_metadata()["version"]
    version = in_image("python3", "-c", "import ansible; print(ansible.__version__)").strip()
    assert version.startswith("2.19."), version


def test_navigator_runs_the_role_from_the_execution_environment(
    ee_image: str, bed: dict[str, Any], tmp_path: Path
) -> None:
    network = bed["status"]["network"]["name"]
    with fresh_host(f"collee{os.getpid() % 100000}", bed["role_vars"]) as (host, inv):
        # The job's files are mounted into the container: the key goes along, as AWX injects a
        # machine credential.
        key = tmp_path / "id_ed25519"
        shutil.copyfile(inv["all"]["hosts"][host]["ansible_ssh_private_key_file"], key)
        key.chmod(0o600)
        inv["all"]["hosts"][host]["ansible_ssh_private_key_file"] = str(key)
        (tmp_path / "inventory.yml").write_text(json.dumps(inv), encoding="utf-8")
        (tmp_path / "site.yml").write_text(galaxy.PLAYBOOK, encoding="utf-8")

        def navigator(label: str) -> galaxy.PlayResult:
            runner_dir = tmp_path / label
            runner_dir.mkdir()
            argv: list[str | Path] = [
                galaxy.BIN / "ansible-navigator",
                *("run", "site.yml", "-i", "inventory.yml", "--mode", "stdout"),
                *("--eei", ee_image, "--ce", "docker", "--pull-policy", "never"),
                # The job container joins the hosts' network, as a job pod reaches its hosts.
                f"--container-options=--network={network}",
                # ansible-runner's artifacts with the job events, read below; no navigator files.
                *("--rad", runner_dir, "--rwje", "--pae", "false"),
                *("--lf", tmp_path / f"{label}.log", "--cdcp", tmp_path / "doc-cache.db"),
            ]
            proc = galaxy.call(argv, cwd=tmp_path, timeout=1800)
            (artifacts,) = (runner_dir / "artifacts").iterdir()
            result = galaxy.play_result(artifacts)
            # navigator's exit status agrees with the run's.
            assert (proc.returncode == 0) == (result.status == "successful"), proc.stderr[-2000:]
            return result

        converged_twice(navigator, host, EE_COLLECTION)

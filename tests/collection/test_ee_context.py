"""``scripts/ee create`` (ansible-builder create over execution-environment.yml) produces a build
context holding the collection as the artifact ansible-galaxy builds and the one ansible-core line
the project supports. The image itself is built and run in
tests/integration/test_execution_environment.py."""

from __future__ import annotations

import tarfile
import tomllib
from pathlib import Path

import pytest
import yaml

from tests import galaxy
from tests.collection.test_artifact import artifact_files


@pytest.fixture(scope="module")
def ee_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ee_dir = tmp_path_factory.mktemp("ee")
    env = galaxy.ansible_env(EE_DIR=str(ee_dir))
    galaxy.run([galaxy.REPO / "scripts" / "ee", "create"], cwd=galaxy.REPO, env=env)
    return ee_dir


def test_context_installs_the_built_collection(ee_dir: Path, tarball: Path) -> None:
    build = ee_dir / "context" / "_build"
    requirements = yaml.safe_load((build / "requirements.yml").read_text(encoding="utf-8"))
    (entry,) = requirements["collections"]
    assert entry == {"name": "collection/provision-hosts.tar.gz", "type": "file"}
    shipped = build / entry["name"]
    assert artifact_files(shipped) == artifact_files(tarball)
    with tarfile.open(shipped) as archive:
        member = archive.extractfile("MANIFEST.json")
        assert member is not None
        assert (
            yaml.safe_load(member)["collection_info"]["version"]
            == (galaxy.galaxy_metadata()["version"])
        )
    containerfile = (ee_dir / "context" / "Dockerfile").read_text(encoding="utf-8")
    assert "ansible-galaxy collection install" in containerfile
    assert "-r requirements.yml" in containerfile
    assert (build / "certs").is_dir()


def test_one_ansible_core_line_everywhere(ee_dir: Path) -> None:
    """The image's ansible-core is the line the package depends on and the collection requires."""
    definition = yaml.safe_load((ee_dir / "execution-environment.yml").read_text("utf-8"))
    ee_core = definition["dependencies"]["ansible_core"]["package_pip"]
    project = tomllib.loads((galaxy.REPO / "pyproject.toml").read_text(encoding="utf-8"))
    (package_core,) = (
        d for d in project["project"]["dependencies"] if d.startswith("ansible-core")
    )
    runtime = yaml.safe_load((galaxy.REPO / "meta" / "runtime.yml").read_text("utf-8"))
    assert ee_core == package_core == "ansible-core" + runtime["requires_ansible"]
    containerfile = (ee_dir / "context" / "Dockerfile").read_text(encoding="utf-8")
    assert f'ARG ANSIBLE_INSTALL_REFS="{ee_core} ' in containerfile

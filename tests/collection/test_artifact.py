"""The built artifact is exactly the collection: galaxy.yml's build_ignore leaves out the Python
package, its tests, the test bed, benchmarks, docs and tooling, and keeps every file of the
collection's own parts."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

from tests import galaxy

# What the collection is, at the top of the repository (all else is the `provision` project).
COLLECTION_PARTS = (
    "LICENSE",
    "CHANGELOG.md",
    "changelogs",
    "meta",
    "playbooks",
    "plugins",
    "roles",
)
# What ansible-galaxy writes into every artifact.
GENERATED = {"MANIFEST.json", "FILES.json"}
# What must never ship (a sample of the project around the collection).
PROJECT_ONLY = (
    "provision",
    "tests",
    "testbed",
    "bench",
    "molecule",
    "docs",
    "scripts",
    "pyproject.toml",
    "execution-environment.yml",
    "ansible.cfg",
    "Vagrantfile",
    "README.md",
    "galaxy.yml",
)


def artifact_files(tarball: Path) -> set[str]:
    with tarfile.open(tarball) as archive:
        return {m.name.removeprefix("./") for m in archive.getmembers() if m.isfile()}


def checkout_files() -> set[str]:
    """Files under the collection's parts that git tracks or would track (not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *COLLECTION_PARTS],
        cwd=galaxy.REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    # Deleted but not yet committed files are still listed by --cached.
    return {name for name in listed if (galaxy.REPO / name).is_file()}


def test_artifact_holds_exactly_the_collection(tarball: Path) -> None:
    files = artifact_files(tarball)
    expected = checkout_files()
    assert files >= GENERATED
    assert files - GENERATED == expected, (
        f"in the artifact but not the collection: {sorted(files - GENERATED - expected)}; "
        f"in the collection but not the artifact: {sorted(expected - files)}"
    )
    tops = {name.split("/", 1)[0] for name in files}
    assert tops == set(COLLECTION_PARTS) | GENERATED
    assert not tops & set(PROJECT_ONLY)


def test_manifest_describes_the_collection(tarball: Path) -> None:
    with tarfile.open(tarball) as archive:
        member = archive.extractfile("MANIFEST.json")
        assert member is not None
        info = json.load(member)["collection_info"]
    metadata = galaxy.galaxy_metadata()
    assert (info["namespace"], info["name"], info["version"]) == (
        galaxy.NAMESPACE,
        galaxy.NAME,
        metadata["version"],
    )
    assert info["license"] == ["MIT"]
    assert info["readme"] == "roles/docker/README.md"
    assert "MIT License" in (galaxy.REPO / "LICENSE").read_text(encoding="utf-8")

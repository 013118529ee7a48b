"""The built artifact is exactly the collection: galaxy.yml's build_ignore leaves out the Python
package, its tests, the test bed, benchmarks, docs and tooling, and keeps every file of the
collection's own parts; the collection's README (not provision's) stands at its root."""

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
# What ansible-galaxy writes into every artifact, and the README scripts/collection puts there.
GENERATED = {"MANIFEST.json", "FILES.json"}
README = "README.md"
README_SOURCE = galaxy.REPO / "docs" / "COLLECTION_README.md"
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
    assert files >= GENERATED | {README}
    shipped = files - GENERATED - {README}
    assert shipped == expected, (
        f"in the artifact but not the collection: {sorted(shipped - expected)}; "
        f"in the collection but not the artifact: {sorted(expected - files)}"
    )
    tops = {name.split("/", 1)[0] for name in files}
    assert tops == set(COLLECTION_PARTS) | GENERATED | {README}
    assert not tops & set(PROJECT_ONLY)


def test_readme_at_the_root_is_the_collections(tarball: Path) -> None:
    with tarfile.open(tarball) as archive:
        member = archive.extractfile(README)
        assert member is not None
        shipped = member.read().decode("utf-8")
    assert shipped == README_SOURCE.read_text(encoding="utf-8")
    # Not provision's README (its first lines are the project's two commands).
    assert "make test" not in shipped
    assert "provision.hosts.docker" in shipped


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
    assert info["readme"] == README
    # What Galaxy's UI links to.
    for key in ("repository", "documentation", "issues"):
        assert info[key] == metadata[key], key
        assert info[key].startswith("https://"), key
    assert info["tags"]
    assert info["tags"] == metadata["tags"]
    assert "MIT License" in (galaxy.REPO / "LICENSE").read_text(encoding="utf-8")

"""The test bed repository's engine versions: which numbers, and a re-versioned .deb that dpkg
reads as the same package under another version (real dpkg-deb, dpkg --compare-versions)."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest

from testbed import debs
from testbed.releases import RELEASES


@pytest.mark.parametrize(
    ("upstream", "expected"),
    [
        ("26.1.3", ["26.0.0", "26.0.1", "26.1.3"]),
        ("20.10.24", ["20.9.0", "20.9.1", "20.10.24"]),
        ("27.0.3", ["26.9.0", "26.9.1", "27.0.3"]),
    ],
)
def test_two_patches_of_an_older_series_then_the_built_version(
    upstream: str, expected: list[str]
) -> None:
    assert debs.engine_versions(upstream) == expected


def test_the_versions_sort_in_dpkgs_order_with_the_built_one_newest() -> None:
    release = RELEASES["focal"]
    for upstream in ("26.1.3", "20.10.24", "27.0.3"):
        chain = [debs.docker_version(release, v) for v in debs.engine_versions(upstream)]
        for older, newer in itertools.pairwise(chain):
            proc = subprocess.run(["dpkg", "--compare-versions", older, "lt", newer], check=False)
            assert proc.returncode == 0, (older, newer)


def build_demo(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "usr/bin").mkdir(parents=True)
    (tree / "usr/bin/demo").write_text("payload\n")
    (tree / "DEBIAN/control").write_text(
        "Package: demo\nVersion: 5:26.1.3-1~ubuntu.20.04~focal\nArchitecture: amd64\n"
        "Maintainer: t <t@provision.invalid>\nDepends: libc6\nDescription: demo\n"
    )
    postinst = tree / "DEBIAN/postinst"
    postinst.write_text("#!/bin/sh\nsystemctl restart docker.service || true\n")
    postinst.chmod(0o755)
    deb = tmp_path / "demo.deb"
    subprocess.run(
        ["dpkg-deb", "-Zgzip", "--root-owner-group", "--build", str(tree), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb


def test_a_reversioned_deb_has_the_new_version_and_the_same_payload_and_scripts(
    tmp_path: Path,
) -> None:
    deb = build_demo(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    again = debs.reversion(deb, "5:26.0.1-1~ubuntu.20.04~focal", out)
    assert again.name == "demo_26.0.1-1~ubuntu.20.04~focal_amd64.deb"
    assert debs.field_of(again, "Version") == "5:26.0.1-1~ubuntu.20.04~focal"
    assert debs.field_of(again, "Depends") == "libc6"
    original = dict(debs.read_ar(deb))
    rebuilt = dict(debs.read_ar(again))
    data = next(n for n in original if n.startswith("data.tar"))
    assert rebuilt[data] == original[data]
    listing = subprocess.run(
        ["dpkg-deb", "--info", str(again), "postinst"], check=True, capture_output=True, text=True
    )
    assert "systemctl restart docker.service" in listing.stdout
    contents = subprocess.run(
        ["dpkg-deb", "--contents", str(again)], check=True, capture_output=True, text=True
    )
    assert "./usr/bin/demo" in contents.stdout

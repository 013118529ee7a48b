"""A signed apt repository in Docker's layout, served on the test bed network's gateway address."""

from __future__ import annotations

import gzip
import shutil
import sys
from pathlib import Path
from typing import Any

from testbed import debs, servers
from testbed.releases import Release
from testbed.util import (
    TestbedError,
    fingerprint_of,
    log,
    output,
    spawn,
    state_dir,
)

CHANNEL = "stable"
KEY_UID = "provision test bed repository <testbed@provision.invalid>"
IMPOSTOR_UID = "someone else <impostor@provision.invalid>"


def repo_root() -> Path:
    return state_dir() / "repo"


def gnupg_home(name: str) -> Path:
    home = state_dir() / name
    home.mkdir(mode=0o700, exist_ok=True)
    return home


def gpg(home: Path, *args: str) -> str:
    return output(["gpg", "--batch", "--quiet", "--homedir", str(home), *args])


def ensure_key(name: str, uid: str) -> tuple[Path, str]:
    """A throwaway signing key; returns its GnuPG home and fingerprint."""
    home = gnupg_home(name)
    listing = gpg(home, "--with-colons", "--list-secret-keys")
    if "fpr:" not in listing:
        gpg(home, "--passphrase", "", "--quick-generate-key", uid, "rsa3072", "sign", "never")
        listing = gpg(home, "--with-colons", "--list-secret-keys")
    fingerprint = next(
        line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")
    )
    return home, fingerprint


def write_index(dist_dir: Path, distro_root: Path, release: Release) -> None:
    binary = dist_dir / CHANNEL / "binary-amd64"
    binary.mkdir(parents=True, exist_ok=True)
    pool = dist_dir.relative_to(distro_root) / "pool" / CHANNEL / "amd64"
    packages = output(
        ["dpkg-scanpackages", "--multiversion", str(pool), "/dev/null"], cwd=distro_root
    )
    (binary / "Packages").write_text(packages + "\n")
    with gzip.open(binary / "Packages.gz", "wt") as stream:
        stream.write(packages + "\n")
    options = {
        "Origin": "Docker",
        "Label": "Docker CE",
        "Suite": release.codename,
        "Codename": release.codename,
        "Architectures": "amd64",
        "Components": CHANNEL,
        "Description": "Docker CE (provision test bed)",
    }
    argv = ["apt-ftparchive"]
    for key, value in options.items():
        argv += ["-o", f"APT::FTPArchive::Release::{key}={value}"]
    release_text = output([*argv, "release", "."], cwd=dist_dir)
    for stale in ("Release", "InRelease", "Release.gpg"):
        (dist_dir / stale).unlink(missing_ok=True)
    (dist_dir / "Release").write_text(release_text + "\n")


def sign(dist_dir: Path, home: Path, target: Path | None = None) -> None:
    target = target or dist_dir
    target.mkdir(parents=True, exist_ok=True)
    for name in ("InRelease", "Release.gpg"):
        (target / name).unlink(missing_ok=True)
    release = str(dist_dir / "Release")
    gpg(home, "--digest-algo", "SHA512", "--clearsign", "-o", str(target / "InRelease"), release)
    gpg(home, "--digest-algo", "SHA512", "-abs", "-o", str(target / "Release.gpg"), release)


def impostor_copy(release: Release, impostor_home: Path) -> None:
    """The same repository signed by another key: apt must refuse it."""
    real = repo_root() / "linux" / release.distro / "dists" / release.codename
    fake = repo_root() / "impostor" / "linux" / release.distro / "dists" / release.codename
    fake.mkdir(parents=True, exist_ok=True)
    for name in (CHANNEL, "pool"):
        link = fake / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(real / name)
    shutil.copy(real / "Release", fake / "Release")
    sign(fake, impostor_home)


def fetch(release: Release, image: str) -> Path:
    """The distribution's packages of a release, downloaded once with its own apt."""
    source = state_dir() / "debs" / release.codename
    if not debs.has(source, "docker.io"):
        debs.download(image, source)
    return source


def recipe(release: Release) -> str:
    return fingerprint_of(
        Path(debs.__file__).read_bytes(), Path(__file__).read_bytes(), repr(release)
    )


def build_release(release: Release, image: str, plugin_debs: Path, state: dict[str, Any]) -> None:
    built = state.setdefault("repo_built", {})
    dist_dir = repo_root() / "linux" / release.distro / "dists" / release.codename
    if built.get(release.codename) == recipe(release) and (dist_dir / "InRelease").exists():
        return
    source = fetch(release, image)
    log(f"building Docker's packages for {release.codename}")
    debs.build_all(
        release,
        source,
        plugin_debs,
        state_dir() / "work" / release.codename,
        dist_dir / "pool" / CHANNEL / "amd64",
    )
    write_index(dist_dir, repo_root() / "linux" / release.distro, release)
    home, _ = ensure_key("gnupg", KEY_UID)
    sign(dist_dir, home)
    impostor_home, _ = ensure_key("gnupg-impostor", IMPOSTOR_UID)
    impostor_copy(release, impostor_home)
    built[release.codename] = recipe(release)


def publish_keys() -> str:
    home, fingerprint = ensure_key("gnupg", KEY_UID)
    armored = gpg(home, "--armor", "--export", fingerprint) + "\n"
    impostor_home, impostor_fpr = ensure_key("gnupg-impostor", IMPOSTOR_UID)
    for distro in ("ubuntu", "debian"):
        target = repo_root() / "linux" / distro
        target.mkdir(parents=True, exist_ok=True)
        (target / "gpg").write_text(armored)
        fake = repo_root() / "impostor" / "linux" / distro
        fake.mkdir(parents=True, exist_ok=True)
        (fake / "gpg").write_text(gpg(impostor_home, "--armor", "--export", impostor_fpr) + "\n")
    return fingerprint


def plugin_source(releases: list[Release], image_of: dict[str, str]) -> Path:
    """Debs of a release that has docker-buildx and docker-compose-v2 (noble or jammy)."""
    for candidate in ("noble", "jammy", "focal", "resolute", "trixie"):
        source = state_dir() / "debs" / candidate
        if debs.has(source, "docker-buildx") and debs.has(source, "docker-compose-v2"):
            return source
    for release in releases:
        source = fetch(release, image_of[release.codename])
        if debs.has(source, "docker-buildx") and debs.has(source, "docker-compose-v2"):
            return source
    raise TestbedError("no release in the test bed offers docker-buildx and docker-compose-v2")


def serve(state: dict[str, Any]) -> int:
    """Serve the repository over HTTP on the gateway address (see servers.py)."""

    def start(address: str, port: int) -> int:
        argv = [sys.executable, "-m", "http.server", str(port), "--bind", address,
                "--directory", str(repo_root())]  # fmt: skip
        return spawn(argv, log_file=state_dir() / "repo-http.log")

    return servers.ensure(state, "repo", start)


def ensure(releases: list[Release], image_of: dict[str, str], state: dict[str, Any]) -> None:
    state["key_fingerprint"] = publish_keys()
    plugins = plugin_source(releases, image_of)
    for release in releases:
        build_release(release, image_of[release.codename], plugins, state)
    serve(state)


def stop(state: dict[str, Any]) -> None:
    servers.stop(state, "repo")

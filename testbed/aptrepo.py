"""A signed apt repository in Docker's layout, served on the test bed network's gateway address."""

from __future__ import annotations

import functools
import gzip
import hashlib
import shutil
import subprocess
import sys
import time
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


HASHES = {"MD5Sum": "md5", "SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}


def by_hash(binary: Path, body: bytes) -> None:
    """Keep ``body`` (an index) under by-hash/ names too: a client that read the previous
    InRelease still finds the indexes it names while a rebuild swaps them (Acquire-By-Hash)."""
    for label, algorithm in HASHES.items():
        target = binary / "by-hash" / label / hashlib.new(algorithm, body).hexdigest()
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_bytes(body)
            tmp.replace(target)


def write_index(dist_dir: Path, distro_root: Path, release: Release, pool: Path) -> None:
    """Packages, Release and their signatures for ``pool``, written beside the live ones and then
    swapped in (each file by rename), so apt never reads a half-written repository."""
    staging = dist_dir.parent / f".{dist_dir.name}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    binary = staging / CHANNEL / "binary-amd64"
    binary.mkdir(parents=True)
    packages = output(
        ["dpkg-scanpackages", "--multiversion", str(pool.relative_to(distro_root)), "/dev/null"],
        cwd=distro_root,
    )
    plain = (packages + "\n").encode()
    compressed = gzip.compress(plain, mtime=0)
    (binary / "Packages").write_bytes(plain)
    (binary / "Packages.gz").write_bytes(compressed)
    live_binary = dist_dir / CHANNEL / "binary-amd64"
    for body in (plain, compressed):
        by_hash(live_binary, body)
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
    release_text = output([*argv, "release", "."], cwd=staging)
    release_text = release_text.replace("\nMD5Sum:", "\nAcquire-By-Hash: yes\nMD5Sum:", 1)
    (staging / "Release").write_text(release_text + "\n")
    home, _ = ensure_key("gnupg", KEY_UID)
    sign(staging, home)
    for name in ("Packages", "Packages.gz"):
        (binary / name).replace(live_binary / name)
    for name in ("Release", "Release.gpg", "InRelease"):
        (staging / name).replace(dist_dir / name)
    shutil.rmtree(staging, ignore_errors=True)


def sign(dist_dir: Path, home: Path, target: Path | None = None) -> None:
    """InRelease and Release.gpg of dist_dir's Release, each swapped in by rename."""
    target = target or dist_dir
    target.mkdir(parents=True, exist_ok=True)
    release = str(dist_dir / "Release")
    for name, how in (("InRelease", "--clearsign"), ("Release.gpg", "-abs")):
        tmp = target / f".{name}.tmp"
        tmp.unlink(missing_ok=True)
        gpg(home, "--digest-algo", "SHA512", how, "-o", str(tmp), release)
        tmp.replace(target / name)


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
    tmp = fake / ".Release.tmp"
    shutil.copy(real / "Release", tmp)
    tmp.replace(fake / "Release")
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


def pool_dir(dist_dir: Path, release: Release) -> Path:
    """Each build gets its own pool directory: the previous build's packages stay where the
    previous indexes say until the new indexes are in place."""
    return dist_dir / "pool" / f"{CHANNEL}-{recipe(release)[:12]}" / "amd64"


def prune_pools(dist_dir: Path, keep: set[Path]) -> None:
    """Pool directories of builds older than the previous one."""
    pools = sorted(
        (p for p in (dist_dir / "pool").iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime
    )
    for old in pools[:-2]:
        if old not in keep:
            shutil.rmtree(old, ignore_errors=True)


def published(release: Release, package: str) -> list[tuple[str, Path]]:
    """The versions of ``package`` the live index of ``release`` offers, oldest first (dpkg's
    order), each with its .deb in the pool."""
    distro_root = repo_root() / "linux" / release.distro
    index = distro_root / "dists" / release.codename / CHANNEL / "binary-amd64" / "Packages"
    found = []
    for stanza in index.read_text().split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " "
        )
        if fields.get("Package") == package:
            found.append((fields["Version"], distro_root / fields["Filename"]))
    return sorted(found, key=functools.cmp_to_key(lambda a, b: dpkg_compare(a[0], b[0])))


def dpkg_compare(a: str, b: str) -> int:
    if a == b:
        return 0
    lower = subprocess.run(["dpkg", "--compare-versions", a, "lt", b], check=False)
    return -1 if lower.returncode == 0 else 1


def build_release(release: Release, image: str, plugin_debs: Path, state: dict[str, Any]) -> None:
    built = state.setdefault("repo_built", {})
    dist_dir = repo_root() / "linux" / release.distro / "dists" / release.codename
    if built.get(release.codename) == recipe(release) and (dist_dir / "InRelease").exists():
        return
    source = fetch(release, image)
    started = time.monotonic()
    log(f"building Docker's packages for {release.codename}")
    pool = pool_dir(dist_dir, release)
    debs.build_all(release, source, plugin_debs, state_dir() / "work" / release.codename, pool)
    added = debs.add_engine_versions(release, pool)
    log(
        f"{release.codename}: {len(added)} more engine package versions"
        f" ({time.monotonic() - started:.0f}s with the build)"
    )
    write_index(dist_dir, repo_root() / "linux" / release.distro, release, pool)
    impostor_home, _ = ensure_key("gnupg-impostor", IMPOSTOR_UID)
    impostor_copy(release, impostor_home)
    prune_pools(dist_dir, {pool.parent})
    built[release.codename] = recipe(release)


def replace_text(path: Path, text: str) -> None:
    """Write ``path`` by rename: a host fetching it meanwhile reads the old or the new file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def publish_keys() -> str:
    home, fingerprint = ensure_key("gnupg", KEY_UID)
    armored = gpg(home, "--armor", "--export", fingerprint) + "\n"
    impostor_home, impostor_fpr = ensure_key("gnupg-impostor", IMPOSTOR_UID)
    for distro in ("ubuntu", "debian"):
        target = repo_root() / "linux" / distro
        target.mkdir(parents=True, exist_ok=True)
        replace_text(target / "gpg", armored)
        fake = repo_root() / "impostor" / "linux" / distro
        fake.mkdir(parents=True, exist_ok=True)
        replace_text(fake / "gpg", gpg(impostor_home, "--armor", "--export", impostor_fpr) + "\n")
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

"""Rebuild the distribution's own Docker binaries as packages in Docker's names and layout.

Docker's packages (docker-ce, docker-ce-cli, containerd.io, docker-buildx-plugin,
docker-compose-plugin) carry the same programs as the distribution's docker.io, containerd,
runc, docker-buildx and docker-compose-v2, split differently and with Conflicts/Replaces against
the distribution's names. The test bed rebuilds them from the distribution's binaries so that
installing docker-ce really removes docker.io, as it does from Docker's repository.
"""

from __future__ import annotations

import io
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from testbed.releases import Release
from testbed.util import TestbedError, output, run

SOURCE_PACKAGES = ["docker.io", "containerd", "runc"]
# Debian 13 ships the CLI apart from the engine; releases without it do not fail the download.
OPTIONAL_PACKAGES = ["docker-cli", "docker-buildx", "docker-compose-v2"]
MAINTAINER = "provision test bed <testbed@provision.invalid>"

# Files of docker.io that belong to the CLI package.
CLI_PATHS = [
    "usr/bin/docker",
    "usr/share/bash-completion/completions/docker",
    "usr/share/zsh/vendor-completions/_docker",
    "usr/share/fish/vendor_completions.d/docker.fish",
]
# Engine helpers that Docker installs in /usr/bin; Debian puts some in /usr/sbin.
ENGINE_BINARIES = ["dockerd", "docker-proxy", "docker-init"]
RUNC_TOOLS = ["runc"]
# Docker's docker.service starts its daemon like this on every release, whatever the
# distribution's unit said.
DOCKER_EXEC_START = (
    "ExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock"
)
UNIT_DIRS = ["lib/systemd/system", "usr/lib/systemd/system"]
# Docker's names that the distribution's packages replace or conflict with.
LEGACY_NAMES = ["docker (<< 1.5~)", "docker-engine", "docker.io", "docker-cli", "lxc-docker"]

CONTAINERD_CONFIG = """# As in Docker's containerd.io: containerd serves Docker, not Kubernetes.
disabled_plugins = ["cri"]
"""

POSTINST_SERVICE = """#!/bin/sh
set -e
{pre}if [ "$1" = configure ]; then
  for unit in {units}; do
    # The distribution's package masks these units when it is removed: lift that, as
    # Docker's own packages do, or the replacement would never start.
    deb-systemd-helper unmask "$unit" >/dev/null 2>&1 || true
  done
  systemctl enable {units} >/dev/null 2>&1 || true
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
    systemctl restart {units} || true
  fi
fi
"""

PRERM_SERVICE = """#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
  systemctl stop {units} || true
fi
"""

POSTRM_SERVICE = """#!/bin/sh
set -e
if [ "$1" = purge ]; then
  for unit in {units}; do
    rm -f /etc/systemd/system/*.wants/"$unit"
  done
fi
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
fi
"""

DOCKER_GROUP = """if [ "$1" = configure ] && ! getent group docker >/dev/null; then
  groupadd --system docker
fi
"""


@dataclass
class Package:
    name: str
    version: str
    description: str
    depends: list[str] = field(default_factory=list)
    recommends: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    replaces: list[str] = field(default_factory=list)
    provides: list[str] = field(default_factory=list)
    scripts: dict[str, str] = field(default_factory=dict)


def upstream_version(version: str) -> str:
    """'5:26.1.3-0ubuntu1~20.04.1' → '26.1.3'; '1.6.20~ds1-1' → '1.6.20'."""
    match = re.match(r"^(?:\d+:)?(\d+(?:\.\d+)*)", version)
    if not match:
        raise TestbedError(f"cannot read an upstream version from {version!r}")
    return match.group(1)


def docker_version(release: Release, upstream: str) -> str:
    """Docker's own version scheme, e.g. '5:26.1.3-1~ubuntu.20.04~focal'."""
    return f"5:{upstream}-1~{release.distro}.{release.version}~{release.codename}"


def field_of(deb: Path, name: str) -> str:
    return output(["dpkg-deb", "-f", str(deb), name])


def split_relations(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def without(relations: list[str], names: set[str]) -> list[str]:
    """Drop relations (and alternatives) that name one of ``names``."""
    kept = []
    for relation in relations:
        alternatives = [alt.strip() for alt in relation.split("|")]
        if any(re.split(r"[\s(]", alt, maxsplit=1)[0] in names for alt in alternatives):
            continue
        kept.append(relation)
    return kept


def move(src_root: Path, relative: str, dst_root: Path, dst_relative: str | None = None) -> bool:
    src = src_root / relative
    if not (src.exists() or src.is_symlink()):
        return False
    dst = dst_root / (dst_relative or relative)
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(src), str(dst))
    return True


def build(pkg: Package, tree: Path, out_dir: Path) -> Path:
    debian = tree / "DEBIAN"
    debian.mkdir(parents=True, exist_ok=True)
    size_kb = sum(p.lstat().st_size for p in tree.rglob("*") if p.is_file()) // 1024
    lines = [
        f"Package: {pkg.name}",
        f"Version: {pkg.version}",
        "Architecture: amd64",
        f"Maintainer: {MAINTAINER}",
        f"Installed-Size: {size_kb}",
    ]
    for label, values in (
        ("Depends", pkg.depends),
        ("Recommends", pkg.recommends),
        ("Conflicts", pkg.conflicts),
        ("Replaces", pkg.replaces),
        ("Provides", pkg.provides),
    ):
        if values:
            lines.append(f"{label}: {', '.join(values)}")
    lines += ["Section: admin", "Priority: optional", f"Description: {pkg.description}"]
    (debian / "control").write_text("\n".join(lines) + "\n")
    etc = tree / "etc"
    conffiles = sorted("/" + str(p.relative_to(tree)) for p in etc.rglob("*") if p.is_file())
    if conffiles:
        (debian / "conffiles").write_text("\n".join(conffiles) + "\n")
    for name, body in pkg.scripts.items():
        script = debian / name
        script.write_text(body)
        script.chmod(0o755)
    out_dir.mkdir(parents=True, exist_ok=True)
    deb = out_dir / f"{pkg.name}_{pkg.version.split(':')[-1]}_amd64.deb"
    run(
        ["dpkg-deb", "-Zgzip", "-z1", "--root-owner-group", "--build", str(tree), str(deb)],
        capture=True,
    )
    return deb


def unpack(deb: Path, dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    run(["dpkg-deb", "-x", str(deb), str(dest)])
    # The distribution's docs name the distribution's package; ours get their own.
    shutil.rmtree(dest / "usr/share/doc", ignore_errors=True)
    shutil.rmtree(dest / "usr/share/lintian", ignore_errors=True)
    return dest


def service_scripts(units: str, pre: str = "") -> dict[str, str]:
    return {
        "postinst": POSTINST_SERVICE.format(units=units, pre=pre),
        "prerm": PRERM_SERVICE.format(units=units),
        "postrm": POSTRM_SERVICE.format(units=units),
    }


def find_deb(debs: Path, name: str) -> Path | None:
    found = sorted(debs.glob(f"{name}_*.deb"))
    return found[-1] if found else None


def require_deb(debs: Path, name: str) -> Path:
    deb = find_deb(debs, name)
    if deb is None:
        raise TestbedError(f"{name} was not downloaded into {debs}")
    return deb


def build_containerd_io(debs: Path, work: Path, out: Path) -> tuple[Path, str]:
    containerd = require_deb(debs, "containerd")
    runc = require_deb(debs, "runc")
    tree = unpack(containerd, work / "containerd.io")
    runc_tree = unpack(runc, work / "runc")
    for tool in RUNC_TOOLS:
        # Docker installs runc as /usr/bin/runc; the distributions use either directory.
        if not move(runc_tree, f"usr/sbin/{tool}", tree, f"usr/bin/{tool}"):
            move(runc_tree, f"usr/bin/{tool}", tree)
    config = tree / "etc/containerd/config.toml"
    if not config.exists():
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(CONTAINERD_CONFIG)
    upstream = upstream_version(field_of(containerd, "Version"))
    depends = without(
        split_relations(field_of(containerd, "Depends"))
        + split_relations(field_of(runc, "Depends")),
        {"runc", "containerd"},
    )
    pkg = Package(
        name="containerd.io",
        version=f"{upstream}-1",
        description="An open and reliable container runtime (test-bed rebuild)",
        depends=sorted(set(depends)),
        conflicts=["containerd", "runc"],
        replaces=["containerd", "runc"],
        provides=["containerd", "runc"],
        scripts=service_scripts("containerd.service"),
    )
    return build(pkg, tree, out), upstream


def docker_service(unit: str) -> str:
    """The distribution's docker.service in Docker's form: Docker's ExecStart, no environment
    file, and ordered after containerd (its socket is on the command line)."""
    lines = []
    for line in unit.splitlines():
        if line.startswith("ExecStart=") and "dockerd" in line:
            lines.append(DOCKER_EXEC_START)
        elif line.startswith(("After=", "Wants=")) and "containerd.service" not in line:
            lines.append(line + " containerd.service")
        elif not line.startswith("EnvironmentFile="):
            lines.append(line)
    text = "\n".join(lines) + "\n"
    if "containerd.service" not in text:
        text = text.replace(
            "[Unit]\n", "[Unit]\nAfter=containerd.service\nWants=containerd.service\n"
        )
    return text


def to_docker_layout(engine: Path) -> None:
    """Docker's file layout: engine binaries in /usr/bin, Docker's docker.service."""
    for binary in ENGINE_BINARIES:
        move(engine, f"usr/sbin/{binary}", engine, f"usr/bin/{binary}")
    if not (engine / "usr/bin/dockerd").exists():
        raise TestbedError(f"no dockerd in {engine}")
    units = [
        engine / d / "docker.service" for d in UNIT_DIRS if (engine / d / "docker.service").exists()
    ]
    if not units:
        raise TestbedError(f"no docker.service in {engine}")
    for unit in units:
        unit.write_text(docker_service(unit.read_text()))


def cli_tree(debs: Path, engine: Path, work: Path) -> Path:
    """/usr/bin/docker and its completions, from docker.io or (Debian 13) docker-cli."""
    cli = work / "docker-ce-cli"
    if cli.exists():
        shutil.rmtree(cli)
    cli.mkdir()
    source = engine
    if not (engine / "usr/bin/docker").exists():
        separate = find_deb(debs, "docker-cli")
        if separate is None:
            raise TestbedError(f"docker.io in {debs} has no /usr/bin/docker and no docker-cli")
        source = unpack(separate, work / "docker-cli")
    for path in CLI_PATHS:
        move(source, path, cli)
    if not (cli / "usr/bin/docker").exists():
        raise TestbedError(f"no /usr/bin/docker for docker-ce-cli in {debs}")
    return cli


def build_engine(
    release: Release, debs: Path, work: Path, out: Path, containerd_upstream: str
) -> list[Path]:
    docker_io = require_deb(debs, "docker.io")
    engine = unpack(docker_io, work / "docker-ce")
    cli = cli_tree(debs, engine, work)
    to_docker_layout(engine)
    shutil.rmtree(engine / "usr/share/docker.io", ignore_errors=True)
    upstream = upstream_version(field_of(docker_io, "Version"))
    version = docker_version(release, upstream)
    not_ours = {"containerd", "runc", "docker-cli", "debconf", "debconf-2.0"}
    engine_depends = without(split_relations(field_of(docker_io, "Depends")), not_ours)
    # The engine creates iptables rules: Docker's docker-ce depends on iptables.
    if without(engine_depends, {"iptables"}) == engine_depends:
        engine_depends.append("iptables")
    engine_pkg = Package(
        name="docker-ce",
        version=version,
        description="Docker: the open-source application container engine (test-bed rebuild)",
        depends=[f"containerd.io (>= {containerd_upstream})", "docker-ce-cli", *engine_depends],
        recommends=["ca-certificates", "git", "pigz", "procps", "xz-utils"],
        conflicts=LEGACY_NAMES,
        replaces=["docker-engine", "docker.io", "docker-cli"],
        scripts=service_scripts("docker.socket docker.service", pre=DOCKER_GROUP),
    )
    cli_pkg = Package(
        name="docker-ce-cli",
        version=version,
        description="Docker CLI: the open-source application container engine (test-bed rebuild)",
        depends=["libc6"],
        recommends=["docker-buildx-plugin", "docker-compose-plugin"],
        conflicts=LEGACY_NAMES,
        replaces=["docker-ce (<< 5:0)", "docker.io", "docker-cli"],
    )
    return [build(engine_pkg, engine, out), build(cli_pkg, cli, out)]


def build_plugin(release: Release, source: Path, name: str, work: Path, out: Path) -> Path:
    tree = unpack(source, work / name)
    pkg = Package(
        name=name,
        version=docker_version(release, upstream_version(field_of(source, "Version"))),
        description=f"Docker CLI plugin {name} (test-bed rebuild)",
        depends=["libc6"],
        conflicts=[field_of(source, "Package")],
        replaces=[field_of(source, "Package")],
    )
    return build(pkg, tree, out)


def build_all(release: Release, debs: Path, plugin_debs: Path, work: Path, out: Path) -> list[Path]:
    """Build the five packages for one release into ``out``."""
    if out.exists():
        shutil.rmtree(out)
    containerd_io, containerd_upstream = build_containerd_io(debs, work, out)
    built = [containerd_io, *build_engine(release, debs, work, out, containerd_upstream)]
    for source_name, name in (
        ("docker-buildx", "docker-buildx-plugin"),
        ("docker-compose-v2", "docker-compose-plugin"),
    ):
        # Releases without the plugin reuse another release's build: both are static Go programs.
        source = find_deb(debs, source_name) or require_deb(plugin_debs, source_name)
        built.append(build_plugin(release, source, name, work, out))
    shutil.rmtree(work, ignore_errors=True)
    return built


def download(image: str, dest: Path) -> None:
    """Fetch the distribution's packages with the release's own apt, inside its image."""
    dest.mkdir(parents=True, exist_ok=True)
    script = (
        "set -e; apt-get update -qq -o Acquire::Languages=none; cd /out; "
        f"apt-get download -qq {' '.join(SOURCE_PACKAGES)}; "
        + "".join(f"apt-get download -qq {p} 2>/dev/null || true; " for p in OPTIONAL_PACKAGES)
        + "chmod 0644 /out/*.deb"
    )
    run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "host",
            "--entrypoint",
            "/bin/sh",
            "-v",
            f"{dest}:/out",
            image,
            "-c",
            script,
        ],
        timeout=900,
    )


def has(debs: Path, name: str) -> bool:
    return find_deb(debs, name) is not None


# --- more engine versions: the same payload under Docker's version numbers ----------------------

# The packages that carry Docker's engine version (the role pins and holds them together).
VERSIONED_PACKAGES = ["docker-ce", "docker-ce-cli"]
AR_MAGIC = b"!<arch>\n"


def engine_versions(upstream: str) -> list[str]:
    """The upstream versions the repository carries for an engine built from ``upstream``
    (X.Y.Z), oldest first: two patch releases of the series before X.Y, then X.Y.Z itself, so
    the newest stays what the distribution ships. Before X.0 comes (X-1).9."""
    parts = [int(p) for p in re.findall(r"\d+", upstream)[:3]]
    if len(parts) < 2:
        raise TestbedError(f"cannot derive older versions from {upstream!r}")
    major, minor = parts[0], parts[1]
    older = (major, minor - 1) if minor > 0 else (major - 1, 9)
    return [f"{older[0]}.{older[1]}.0", f"{older[0]}.{older[1]}.1", upstream]


def read_ar(deb: Path) -> list[tuple[str, bytes]]:
    """The members of an ar archive (a .deb), in order."""
    data = deb.read_bytes()
    if not data.startswith(AR_MAGIC):
        raise TestbedError(f"{deb} is not an ar archive")
    members, offset = [], len(AR_MAGIC)
    while offset < len(data):
        header = data[offset : offset + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        start = offset + 60
        members.append((name, data[start : start + size]))
        offset = start + size + (size % 2)
    return members


def write_ar(path: Path, members: list[tuple[str, bytes]]) -> None:
    with path.open("wb") as stream:
        stream.write(AR_MAGIC)
        for name, body in members:
            header = f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(body):<10}`\n"
            stream.write(header.encode())
            stream.write(body)
            if len(body) % 2:
                stream.write(b"\n")


def control_member(control_dir: Path) -> bytes:
    """control.tar.gz of the files in ``control_dir`` (control, maintainer scripts, conffiles)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
        root = tarfile.TarInfo("./")
        root.type, root.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(root)
        for path in sorted(control_dir.iterdir()):
            info = tarfile.TarInfo(f"./{path.name}")
            body = path.read_bytes()
            info.size, info.mode = len(body), path.stat().st_mode & 0o777
            tar.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


def reversion(deb: Path, version: str, out_dir: Path) -> Path:
    """The package ``deb`` again under ``version``: only its control member is rewritten (the
    payload and the maintainer scripts are the same bytes), so this costs a copy, not a build."""
    members = read_ar(deb)
    with tempfile.TemporaryDirectory() as tmp:
        control_dir = Path(tmp)
        run(["dpkg-deb", "--control", str(deb), str(control_dir)])
        control = control_dir / "control"
        text = re.sub(r"^Version: .*$", f"Version: {version}", control.read_text(), flags=re.M)
        control.write_text(text)
        control_tar = control_member(control_dir)
    rebuilt = [
        ("control.tar.gz", control_tar) if name.startswith("control.") else (name, body)
        for name, body in members
    ]
    name = field_of(deb, "Package")
    target = out_dir / f"{name}_{version.rsplit(':', maxsplit=1)[-1]}_amd64.deb"
    write_ar(target, rebuilt)
    return target


def add_engine_versions(release: Release, pool: Path) -> list[Path]:
    """Older engine versions beside the built ones in ``pool`` (engine_versions)."""
    engine = require_deb(pool, "docker-ce")
    upstream = upstream_version(field_of(engine, "Version"))
    added = []
    for name in VERSIONED_PACKAGES:
        deb = require_deb(pool, name)
        for older in engine_versions(upstream)[:-1]:
            added.append(reversion(deb, docker_version(release, older), pool))
    return added

"""Host images: systemd-as-PID-1 images of real distribution userlands, built with debootstrap."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path

from testbed.releases import UBUNTU_MIRROR, Release
from testbed.util import TestbedError, fingerprint_of, log, run, state_dir

LOGIN_USER = "ops"
LOGIN_UID = 1000
IMAGE_REPO = "provision-testbed"

PACKAGES = [
    "systemd",
    "systemd-sysv",
    "dbus",
    "python3",
    "python3-apt",
    "sudo",
    "openssh-server",
    "ca-certificates",
    "gnupg",
    "curl",
    "iproute2",
    "procps",
]

# Docker configures the container's network and DNS, and it has no consoles: these units would
# only fight that. apt's timers are masked so container runs are repeatable (the VM image keeps
# them, as real hosts do).
MASKED_UNITS = [
    "systemd-resolved.service",
    "systemd-networkd.service",
    "systemd-networkd.socket",
    "systemd-networkd-wait-online.service",
    "systemd-timesyncd.service",
    "getty@tty1.service",
    "console-getty.service",
    "getty.target",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "motd-news.timer",
    "systemd-logind.service",
]

# Docker mounts the v1 cgroup controllers read-only inside a private cgroup namespace; making
# them writable lets the inner engine nest its cgroups inside the container's own.
INIT_SHIM = """#!/bin/sh
{cgroup2}while read -r _ mnt fstype _; do
  if [ "$fstype" = cgroup ] || [ "$fstype" = cgroup2 ]; then
    mount -o remount,bind,rw "$mnt" 2>/dev/null || true
  fi
done < /proc/self/mounts
exec /lib/systemd/systemd "$@"
"""

# systemd 258+ has no cgroup v1 support: on a machine that mounts v1, give it a private cgroup2
# hierarchy. It has no controllers (they stay bound to the machine's v1 hierarchies), so memory
# and CPU limits are unavailable on such a host.
CGROUP2_ONLY = """if [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ]; then
  umount -l /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup
fi
"""

DOCKERFILE = """FROM {base}
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/sbin/testbed-init"]
"""


def image_tag(release: Release) -> str:
    recipe = fingerprint_of(Path(__file__).read_bytes(), repr(release))
    return f"{IMAGE_REPO}/{release.codename}:{recipe}"


def image_exists(tag: str) -> bool:
    probe = ["docker", "image", "inspect", tag]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def ubuntu_keyring() -> Path:
    """Ubuntu's archive key, taken from the ubuntu-keyring package in the Ubuntu archive."""
    target = state_dir() / "keyrings" / "ubuntu-archive-keyring.gpg"
    if target.exists():
        return target
    index_url = f"{UBUNTU_MIRROR}/dists/noble/main/binary-amd64/Packages.gz"
    log(f"fetching Ubuntu's archive keyring via {index_url}")
    with urllib.request.urlopen(index_url, timeout=60) as response:
        index = gzip.decompress(response.read()).decode()
    filename = next(
        (
            line.split(": ", 1)[1]
            for stanza in index.split("\n\n")
            if stanza.startswith("Package: ubuntu-keyring\n")
            for line in stanza.splitlines()
            if line.startswith("Filename: ")
        ),
        None,
    )
    if filename is None:
        raise TestbedError("ubuntu-keyring is not in the Ubuntu archive's index")
    with tempfile.TemporaryDirectory() as tmp:
        deb = Path(tmp) / "ubuntu-keyring.deb"
        with urllib.request.urlopen(f"{UBUNTU_MIRROR}/{filename}", timeout=60) as response:
            deb.write_bytes(response.read())
        run(["dpkg-deb", "-x", str(deb), f"{tmp}/x"])
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f"{tmp}/x/usr/share/keyrings/ubuntu-archive-keyring.gpg", target)
    return target


def keyring_for(release: Release) -> Path:
    if release.distro == "ubuntu":
        return ubuntu_keyring()
    return Path("/usr/share/keyrings/debian-archive-keyring.gpg")


def debootstrap(release: Release, rootfs: Path) -> None:
    script = Path("/usr/share/debootstrap/scripts") / release.script
    run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--components={','.join(release.components)}",
            f"--include={','.join(PACKAGES)}",
            f"--keyring={keyring_for(release)}",
            release.codename,
            str(rootfs),
            release.mirror,
            str(script),
        ],
        timeout=1800,
    )


def configure(release: Release, rootfs: Path) -> None:
    (rootfs / "etc/apt/sources.list").write_text(release.sources_list())
    (rootfs / "etc/machine-id").write_text("")
    systemd_dir = rootfs / "etc/systemd/system"
    for unit in MASKED_UNITS:
        link = systemd_dir / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    shim = rootfs / "usr/local/sbin/testbed-init"
    shim.write_text(INIT_SHIM.format(cgroup2=CGROUP2_ONLY if release.cgroup2_only else ""))
    shim.chmod(0o755)
    run(["chroot", str(rootfs), "systemctl", "enable", "ssh.service"])
    run(
        [
            "chroot",
            str(rootfs),
            "useradd",
            "--uid",
            str(LOGIN_UID),
            "--create-home",
            "--shell",
            "/bin/bash",
            LOGIN_USER,
        ]
    )
    sudoers = rootfs / f"etc/sudoers.d/{LOGIN_USER}"
    sudoers.write_text(f"{LOGIN_USER} ALL=(ALL) NOPASSWD:ALL\n")
    sudoers.chmod(0o440)
    # The containers lack CAP_SYS_RESOURCE: stop sudo from warning on every call that it
    # cannot lower the core-dump limit.
    (rootfs / "etc/sudo.conf").write_text("Set disable_coredump false\n")
    sshd_config = rootfs / "etc/ssh/sshd_config"
    include = "Include /etc/ssh/sshd_config.d/*.conf\n"
    if include.strip() not in sshd_config.read_text():
        sshd_config.write_text(include + sshd_config.read_text())
    (rootfs / "etc/ssh/sshd_config.d").mkdir(exist_ok=True)
    # debootstrap leaves its cache behind; the image does not need it.
    for deb in (rootfs / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()


def import_image(rootfs: Path, tag: str) -> None:
    base = f"{tag}-rootfs"
    log(f"importing {rootfs} as {base}")
    with subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE) as tar:
        imported = subprocess.run(
            ["docker", "import", "-", base], stdin=tar.stdout, capture_output=True, check=False
        )
    if tar.returncode != 0 or imported.returncode != 0:
        raise TestbedError(f"docker import of {rootfs} failed: {imported.stderr.decode().strip()}")
    with tempfile.TemporaryDirectory() as context:
        (Path(context) / "Dockerfile").write_text(DOCKERFILE.format(base=base))
        run(["docker", "build", "--network", "host", "-q", "-t", tag, context])
    run(["docker", "image", "rm", base], capture=True, check=False)


def ensure_image(release: Release) -> str:
    tag = image_tag(release)
    if image_exists(tag):
        return tag
    rootfs = state_dir() / "rootfs" / release.codename
    if rootfs.exists():
        shutil.rmtree(rootfs)
    rootfs.parent.mkdir(parents=True, exist_ok=True)
    log(f"building the {release.codename} host image (debootstrap, about a minute)")
    try:
        debootstrap(release, rootfs)
        configure(release, rootfs)
        import_image(rootfs, tag)
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    return tag

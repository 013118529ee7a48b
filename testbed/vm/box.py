"""The `provision-testbed/focal` Vagrant box: Ubuntu 20.04 built offline from debootstrap.

Recipe (TESTBED.md, "Vagrant and VMs"):

1. debootstrap focal (minbase, main+universe) with the kernel, grub-pc, systemd, openssh-server,
   python3, python3-apt and sudo;
2. configure it in a chroot as a Vagrant base box: apt sources (focal, -updates, -security),
   systemd-networkd DHCP on en*/eth*, a `vagrant` user with Vagrant's insecure public key and
   passwordless sudo, SSH host keys made at first boot, `UseDNS no`, an empty machine-id, fstab by
   label; apt's timers stay on, as on a real host;
3. a 10 GiB sparse disk without loop devices: `sfdisk` on a sparse file, `mkfs.ext4 -d` of the
   root file system into a file, `dd conv=sparse` into the partition;
4. grub installed by one software-emulated boot of the disk with the box's own kernel and an init
   script that runs grub-install and update-grub, then powers off;
5. `qemu-img convert` to qcow2 (10 GiB virtual, a few hundred MiB real), packed as a libvirt box
   with its own Vagrantfile (the test-bed specifics: Vagrantfile.box beside this module).

The box file is cached under $PROVISION_TESTBED_DIR/vm by a hash of its recipe (this module, the
box's Vagrantfile, Vagrant's public key) and added to Vagrant with `vagrant box add --force`
when the box Vagrant has was built from another recipe.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from testbed import releases
from testbed.images import ubuntu_keyring
from testbed.util import TestbedError, fingerprint_of, log, run, state_dir
from testbed.vm import libvirt

BOX_NAME = "provision-testbed/focal"
RELEASE = releases.get("focal")
DISK_GIB = 10
PARTITION_START_MIB = 1
ROOT_LABEL = "rootfs"
VAGRANT_USER = "vagrant"
VAGRANT_UID = 1000
RECIPE_FILE = "testbed-recipe"
# 2020-04-23, Ubuntu 20.04's release day (the box's kernel and packages are from that pocket).
BOX_LISTS_MTIME = 1587600000
VAGRANTFILE = Path(__file__).with_name("Vagrantfile.box")

PACKAGES = [
    "systemd",
    "systemd-sysv",
    "udev",
    "dbus",
    "kmod",
    "iproute2",
    "openssh-server",
    "sudo",
    "python3",
    "python3-apt",
    "ca-certificates",
    "gnupg",
    "curl",
    "lsb-release",
    "initramfs-tools",
    "linux-image-virtual",
    "grub-pc",
]

# Places where Vagrant keeps its well-known insecure key pair (Debian's package, upstream's).
VAGRANT_KEY_DIRS = [
    Path("/usr/share/vagrant/keys"),
    *sorted(Path("/usr/share/rubygems-integration/all/gems").glob("vagrant-*/keys")),
    Path("/opt/vagrant/embedded/gems/gems").joinpath("keys"),
]

NETWORK_UNIT = """[Match]
Name=en* eth*

[Network]
DHCP=yes
"""

SSHD_CONFIG = """# provision test bed: a Vagrant base box
UseDNS no
"""

HOST_KEYS_UNIT = """[Unit]
Description=Generate the SSH host keys of this machine (first boot)
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=ssh.service
"""

GRUB_DEFAULTS = """# provision test bed: boot at once, kernel and grub on the serial console too
GRUB_TIMEOUT=0
GRUB_TIMEOUT_STYLE=hidden
GRUB_RECORDFAIL_TIMEOUT=0
GRUB_DISABLE_OS_PROBER=true
GRUB_CMDLINE_LINUX_DEFAULT="console=tty0 console=ttyS0,115200n8"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
"""

# As on Ubuntu's cloud images: apt-daily refreshes the package lists (and so holds apt's lock
# now and then); nothing is upgraded unattended (unattended-upgrades is not installed).
APT_PERIODIC = """APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "0";
"""

# Units that would send traffic to hosts other than the package archive (time servers, news).
MASKED_UNITS = ["systemd-timesyncd.service", "motd-news.timer"]

GRUB_INSTALL_SCRIPT = "/usr/local/sbin/testbed-install-grub"
GRUB_INSTALL_INIT = f"""#!/bin/sh
# PID 1 of the one boot that installs grub on the box's disk; removes itself.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sysfs /sys
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
mountpoint -q /run || mount -t tmpfs tmpfs /run
if grub-install --target=i386-pc /dev/vda && update-grub; then
  echo TESTBED-GRUB-INSTALLED
fi
rm -f {GRUB_INSTALL_SCRIPT}
sync
mount -o remount,ro /
echo o > /proc/sysrq-trigger
sleep 30
"""


# --------------------------------------------------------------------------------------------
# Recipe and cache


def vagrant_public_key() -> str:
    for directory in VAGRANT_KEY_DIRS:
        key = directory / "vagrant.pub"
        if key.is_file():
            return key.read_text().strip() + "\n"
    raise TestbedError(
        "Vagrant's insecure public key (keys/vagrant.pub) was not found: install vagrant "
        "(python -m testbed.vm libvirt)"
    )


def recipe_hash() -> str:
    return fingerprint_of(
        Path(__file__).read_bytes(), VAGRANTFILE.read_bytes(), vagrant_public_key(), repr(RELEASE)
    )


def vm_dir() -> Path:
    path = state_dir() / "vm"
    path.mkdir(parents=True, exist_ok=True)
    return path


def box_path(recipe: str) -> Path:
    return vm_dir() / f"{BOX_NAME.replace('/', '-')}-{recipe}.box"


def boot_files(recipe: str) -> tuple[Path, Path]:
    """The box's kernel and initrd, kept beside the box for the KVM probe."""
    return vm_dir() / f"vmlinuz-{recipe}", vm_dir() / f"initrd-{recipe}"


def vagrant_home() -> Path:
    return Path(os.environ.get("VAGRANT_HOME", str(Path.home() / ".vagrant.d")))


def installed_box_dir() -> Path:
    return vagrant_home() / "boxes" / BOX_NAME.replace("/", "-VAGRANTSLASH-") / "0" / "libvirt"


def installed_recipe() -> str | None:
    try:
        return (installed_box_dir() / RECIPE_FILE).read_text().strip()
    except OSError:
        return None


# --------------------------------------------------------------------------------------------
# Building


def debootstrap(rootfs: Path) -> None:
    run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--components={','.join(RELEASE.components)}",
            f"--include={','.join(PACKAGES)}",
            f"--keyring={ubuntu_keyring()}",
            RELEASE.codename,
            str(rootfs),
            RELEASE.mirror,
        ],
        env={"DEBIAN_FRONTEND": "noninteractive"},
        timeout=1800,
    )


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _chroot(rootfs: Path, *argv: str, input_text: str | None = None) -> None:
    run(
        ["chroot", str(rootfs), *argv],
        input_text=input_text,
        env={"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"},
    )


def configure(rootfs: Path) -> None:
    _write(rootfs / "etc/apt/sources.list", RELEASE.sources_list())
    _write(rootfs / "etc/apt/apt.conf.d/20auto-upgrades", APT_PERIODIC)
    _write(rootfs / "etc/hostname", "ubuntu-focal\n")
    _write(
        rootfs / "etc/hosts",
        "127.0.0.1 localhost\n127.0.1.1 ubuntu-focal\n\n::1 localhost ip6-localhost ip6-loopback\n",
    )
    _write(rootfs / "etc/fstab", f"LABEL={ROOT_LABEL} / ext4 defaults,errors=remount-ro 0 1\n")

    # Network: DHCP from qemu's user-mode network (or any other) on the first NIC.
    _write(rootfs / "etc/systemd/network/20-wired.network", NETWORK_UNIT)
    _chroot(rootfs, "systemctl", "enable", "systemd-networkd.service", "systemd-resolved.service")
    resolv = rootfs / "etc/resolv.conf"
    resolv.unlink(missing_ok=True)
    resolv.symlink_to("../run/systemd/resolve/stub-resolv.conf")
    for unit in MASKED_UNITS:
        link = rootfs / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")

    # sshd: host keys are made at first boot, so every VM from the box has its own.
    for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    _write(rootfs / "etc/ssh/sshd_config.d/10-testbed.conf", SSHD_CONFIG)
    _write(rootfs / "etc/systemd/system/testbed-ssh-host-keys.service", HOST_KEYS_UNIT)
    _chroot(rootfs, "systemctl", "enable", "ssh.service", "testbed-ssh-host-keys.service")

    # The vagrant user: Vagrant's insecure key (Vagrant swaps it for its own on first up).
    _chroot(
        rootfs,
        "useradd",
        "--uid",
        str(VAGRANT_UID),
        "--user-group",
        "--create-home",
        "--shell",
        "/bin/bash",
        VAGRANT_USER,
    )
    ssh_dir = rootfs / "home" / VAGRANT_USER / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    _write(ssh_dir / "authorized_keys", vagrant_public_key(), 0o600)
    for path in (ssh_dir, ssh_dir / "authorized_keys"):
        os.chown(path, VAGRANT_UID, VAGRANT_UID)
    _write(
        rootfs / f"etc/sudoers.d/{VAGRANT_USER}", f"{VAGRANT_USER} ALL=(ALL) NOPASSWD:ALL\n", 0o440
    )

    # Bootloader settings (installed later, from inside the VM) and its debconf answer, so a
    # grub-pc upgrade inside the VM installs to the right disk without asking.
    _write(rootfs / "etc/default/grub.d/50-testbed.cfg", GRUB_DEFAULTS)
    _chroot(
        rootfs,
        "debconf-set-selections",
        input_text="grub-pc grub-pc/install_devices multiselect /dev/vda\n",
    )
    _write(rootfs / GRUB_INSTALL_SCRIPT.lstrip("/"), GRUB_INSTALL_INIT, 0o755)

    # Every VM gets its own identity at first boot; no caches or lists from the build.
    _write(rootfs / "etc/machine-id", "", 0o444)
    (rootfs / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    for pattern in ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin"):
        for path in rootfs.glob(pattern):
            path.unlink()
    lists = rootfs / "var/lib/apt/lists"
    for path in lists.iterdir():
        if path.is_file() and path.name != "lock":
            path.unlink()
    # A box is built long before it is used: the package lists it was cleaned of are old, not
    # minutes old (apt's `cache_valid_time` looks at this directory's mtime, and a box built
    # just before a test would otherwise pass for one with a fresh cache). mkfs.ext4 -d keeps it.
    os.utime(lists, (BOX_LISTS_MTIME, BOX_LISTS_MTIME))


def check_rootfs(rootfs: Path) -> None:
    """What the box promises, checked before it is packed."""
    wants = rootfs / "etc/systemd/system/timers.target.wants"
    missing = [
        t for t in ("apt-daily.timer", "apt-daily-upgrade.timer") if not (wants / t).exists()
    ]
    if missing:
        raise TestbedError(f"apt timers {missing} are not enabled in the box")
    for path in ("boot/vmlinuz", "boot/initrd.img", "usr/sbin/grub-install", "usr/sbin/sshd"):
        if not (rootfs / path).exists():
            raise TestbedError(f"the box's root file system has no /{path}")


def make_disk(rootfs: Path, raw: Path) -> None:
    """A sparse raw disk with one bootable ext4 partition, built without loop devices."""
    size = DISK_GIB * 1024**3
    start = PARTITION_START_MIB * 1024**2
    raw.unlink(missing_ok=True)
    with raw.open("wb") as disk:
        disk.truncate(size)
    run(
        ["sfdisk", "--quiet", str(raw)],
        input_text=f"label: dos\nstart={start // 512}, type=83, bootable\n",
    )
    part = raw.with_suffix(".ext4")
    part.unlink(missing_ok=True)
    with part.open("wb") as fs:
        fs.truncate(size - start)
    # Ubuntu 20.04's grub (2.04) and e2fsck (1.45) know neither of these newer features.
    run(
        [
            "mkfs.ext4",
            "-q",
            "-F",
            "-L",
            ROOT_LABEL,
            "-O",
            "^metadata_csum_seed,^orphan_file",
            "-d",
            str(rootfs),
            str(part),
        ]
    )
    run(
        [
            "dd",
            f"if={part}",
            f"of={raw}",
            "bs=1M",
            f"seek={PARTITION_START_MIB}",
            "conv=notrunc,sparse",
            "status=none",
        ]
    )
    part.unlink()


def qemu_boot(
    *,
    disk: Path,
    disk_format: str,
    kernel: Path,
    initrd: Path,
    append: str,
    console_log: Path,
    accel: str,
    timeout: float,
    snapshot: bool = False,
) -> bool:
    """Boot a disk with a given kernel until the guest powers off; False on timeout."""
    drive = f"file={disk},format={disk_format},if=virtio,cache=unsafe"
    if snapshot:
        drive += ",snapshot=on"
    argv = [
        "qemu-system-x86_64",
        "-accel",
        accel,
        "-cpu",
        "max" if accel == "tcg" else "host",
        "-m",
        "1024",
        "-smp",
        "1",
        "-nodefaults",
        "-display",
        "none",
        "-no-reboot",
        "-serial",
        f"file:{console_log}",
        "-drive",
        drive,
        "-kernel",
        str(kernel),
        "-initrd",
        str(initrd),
        "-append",
        append,
    ]
    log("$ " + " ".join(argv))
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return False
    if proc.returncode != 0:
        raise TestbedError(f"qemu failed (exit {proc.returncode}): {err.strip()[-300:]}")
    return True


def install_grub(raw: Path, kernel: Path, initrd: Path, work: Path) -> None:
    console = work / "grub-install-console.log"
    finished = qemu_boot(
        disk=raw,
        disk_format="raw",
        kernel=kernel,
        initrd=initrd,
        append=f"root=/dev/vda1 rw console=ttyS0 panic=-1 init={GRUB_INSTALL_SCRIPT}",
        console_log=console,
        accel="tcg",
        timeout=900,
    )
    text = console.read_text(errors="replace") if console.exists() else ""
    if not finished or "TESTBED-GRUB-INSTALLED" not in text:
        tail = "\n".join(text.strip().splitlines()[-15:])
        raise TestbedError(
            "installing grub in the box's disk failed "
            f"({'timed out' if not finished else 'see the console'}):\n{tail}"
        )


def pack(raw: Path, target: Path, recipe: str, work: Path) -> None:
    image = work / "box.img"
    run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(image)])
    metadata = work / "metadata.json"
    metadata.write_text(
        json.dumps({"provider": "libvirt", "format": "qcow2", "virtual_size": DISK_GIB}) + "\n"
    )
    recipe_file = work / RECIPE_FILE
    recipe_file.write_text(recipe + "\n")
    partial = target.with_suffix(".partial")
    with tarfile.open(partial, "w") as tar:
        tar.add(metadata, arcname="metadata.json")
        tar.add(VAGRANTFILE, arcname="Vagrantfile")
        tar.add(recipe_file, arcname=RECIPE_FILE)
        tar.add(image, arcname="box.img")
    partial.replace(target)


def build(recipe: str) -> Path:
    target = box_path(recipe)
    work = vm_dir() / f"build-{recipe}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    rootfs = work / "rootfs"
    started = time.monotonic()
    log(f"building the {BOX_NAME} box (debootstrap, disk, one emulated boot: a few minutes)")
    try:
        debootstrap(rootfs)
        log(f"  debootstrap done in {time.monotonic() - started:.0f}s")
        configure(rootfs)
        check_rootfs(rootfs)
        kernel, initrd = boot_files(recipe)
        shutil.copy((rootfs / "boot/vmlinuz").resolve(), kernel)
        shutil.copy((rootfs / "boot/initrd.img").resolve(), initrd)
        raw = work / "disk.raw"
        make_disk(rootfs, raw)
        shutil.rmtree(rootfs)
        log(f"  disk made at {time.monotonic() - started:.0f}s; installing grub (emulated boot)")
        install_grub(raw, kernel, initrd, work)
        log(f"  grub installed at {time.monotonic() - started:.0f}s")
        pack(raw, target, recipe, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(
        f"built {target} ({target.stat().st_size / 2**20:.0f} MiB) in "
        f"{time.monotonic() - started:.0f}s"
    )
    return target


def remove_stale_builds(keep: str) -> None:
    prefix = BOX_NAME.replace("/", "-")
    for path in vm_dir().iterdir():
        stale_box = path.name.startswith(prefix) and keep not in path.name
        stale_boot = path.name.startswith(("vmlinuz-", "initrd-")) and not path.name.endswith(keep)
        if stale_box or stale_boot:
            log(f"removing the stale {path}")
            path.unlink()


# --------------------------------------------------------------------------------------------
# Vagrant and libvirt


def _pool_volumes() -> list[tuple[str, str]]:
    """(name, path) of every volume in the storage pool."""
    listing = libvirt.virsh("vol-list", libvirt.POOL_NAME, check=False)
    volumes = []
    for line in listing.stdout.splitlines()[2:]:
        fields = line.split(None, 1)
        if len(fields) == 2:
            volumes.append((fields[0], fields[1].strip()))
    return volumes


def _backing_paths(volumes: list[tuple[str, str]]) -> set[str]:
    """Paths that some volume (a VM's disk) is an overlay of."""
    paths: set[str] = set()
    for name, _ in volumes:
        xml = libvirt.virsh("vol-dumpxml", "--pool", libvirt.POOL_NAME, name, check=False).stdout
        try:
            root = ElementTree.fromstring(xml)  # noqa: S314 - libvirt's own XML
        except ElementTree.ParseError:
            continue
        paths.update(p.text.strip() for p in root.iterfind("./backingStore/path") if p.text)
    return paths


def remove_box_volumes() -> None:
    """vagrant-libvirt copies each box version into the pool and never removes the copy: remove
    the copies of this box that no VM's disk is an overlay of."""
    volumes = _pool_volumes()
    in_use = _backing_paths(volumes)
    prefix = BOX_NAME.replace("/", "-VAGRANTSLASH-") + "_vagrant_box_image_"
    for name, path in volumes:
        if name.startswith(prefix) and path not in in_use:
            libvirt.virsh("vol-delete", "--pool", libvirt.POOL_NAME, name, check=False)


def add_to_vagrant(path: Path) -> None:
    run(["vagrant", "box", "add", "--force", "--name", BOX_NAME, str(path)], timeout=900)
    remove_box_volumes()


def ensure() -> dict[str, Any]:
    """Build the box unless a box of this recipe is cached; add it to Vagrant unless there."""
    libvirt.require_root()
    recipe = recipe_hash()
    path = box_path(recipe)
    started = time.monotonic()
    built = False
    if not path.exists():
        build(recipe)
        built = True
    remove_stale_builds(recipe)
    added = False
    if installed_recipe() != recipe:
        add_to_vagrant(path)
        added = True
    return {
        "box": BOX_NAME,
        "recipe": recipe,
        "file": str(path),
        "built": built,
        "added": added,
        "seconds": round(time.monotonic() - started, 1),
    }


def status() -> dict[str, Any]:
    recipe = recipe_hash()
    return {
        "box": BOX_NAME,
        "recipe": recipe,
        "cached": box_path(recipe).exists(),
        "installed_recipe": installed_recipe(),
        "current": installed_recipe() == recipe,
        "kvm_runs_ubuntu": cached_kvm_probe(recipe),
    }


def clean() -> None:
    """Remove the box from Vagrant, its volumes from the pool and the cached box files."""
    if installed_box_dir().exists():
        run(["vagrant", "box", "remove", "--force", "--all", BOX_NAME], check=False)
    if libvirt.libvirt_answers():
        remove_box_volumes()
    for path in vm_dir().iterdir():
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


# --------------------------------------------------------------------------------------------
# KVM


def _kvm_probe_file(recipe: str) -> Path:
    return vm_dir() / f"kvm-probe-{recipe}.json"


def cached_kvm_probe(recipe: str) -> bool | None:
    try:
        return bool(json.loads(_kvm_probe_file(recipe).read_text())["kvm_runs_ubuntu"])
    except (OSError, ValueError, KeyError):
        return None


def probe_kvm(timeout: float = 45) -> bool:
    """Whether KVM can boot the box's Ubuntu kernel to user space (cached per recipe).

    A nested paravirtual KVM (kvm-pvm) opens /dev/kvm fine and then dies on an instruction it
    cannot emulate, with qemu hanging: so boot for real, briefly, with `init=/bin/true` (the
    kernel then panics "Attempted to kill init", which proves user space ran).
    """
    recipe = recipe_hash()
    cached = cached_kvm_probe(recipe)
    if cached is not None:
        return cached
    if libvirt.kvm_usable() is False:
        result = False
    else:
        kernel, initrd = boot_files(recipe)
        path = box_path(recipe)
        if not (kernel.exists() and initrd.exists() and path.exists()):
            raise TestbedError("build the box first: python -m testbed.vm box")
        work = vm_dir() / "kvm-probe"
        work.mkdir(exist_ok=True)
        try:
            with tarfile.open(path) as tar, (work / "box.img").open("wb") as image:
                member = tar.extractfile("box.img")
                if member is None:
                    raise TestbedError(f"{path} has no box.img")
                shutil.copyfileobj(member, image, 1 << 20)
            console = work / "console.log"
            finished = qemu_boot(
                disk=work / "box.img",
                disk_format="qcow2",
                kernel=kernel,
                initrd=initrd,
                append="root=/dev/vda1 ro console=ttyS0 panic=-1 init=/bin/true",
                console_log=console,
                accel="kvm",
                timeout=timeout,
                snapshot=True,
            )
            text = console.read_text(errors="replace") if console.exists() else ""
            result = finished and "Attempted to kill init" in text
        except TestbedError as exc:
            log(f"KVM probe: {exc}")
            result = False
        finally:
            shutil.rmtree(work, ignore_errors=True)
    _kvm_probe_file(recipe).write_text(json.dumps({"kvm_runs_ubuntu": result}) + "\n")
    log(f"KVM {'can' if result else 'cannot'} run the box's Ubuntu kernel here")
    return result


def libvirt_driver() -> str:
    """The libvirt domain type for VMs of the box: $PROVISION_LIBVIRT_DRIVER, else by probe."""
    chosen = os.environ.get("PROVISION_LIBVIRT_DRIVER", "").strip()
    if chosen:
        return chosen
    return "kvm" if probe_kvm() else "qemu"

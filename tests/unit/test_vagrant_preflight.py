"""The Vagrant adapter's environment, and the preflight checks (no VM is started)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from provision import preflight
from provision.errors import EXIT_PREREQ, PrerequisiteError, ProvisionError
from provision.paths import DataPaths
from provision.settings import MachineSettings
from provision.vagrant import VagrantAdapter, VagrantFailure, failure_from_log, parse_status

REPO = Path(__file__).resolve().parents[2]


def adapter(tmp_path: Path, base_env: dict[str, str], **machine: object) -> VagrantAdapter:
    return VagrantAdapter(
        project_dir=tmp_path,
        paths=DataPaths(REPO),
        machine=MachineSettings(**machine),  # type: ignore[arg-type]
        base_env=base_env,
    )


def test_environment_merges_os_environ_and_settings(tmp_path: Path) -> None:
    env = adapter(
        tmp_path, {"HOME": "/home/x", "PATH": "/usr/bin"}, memory=4096, provider="libvirt"
    ).env
    assert env["HOME"] == "/home/x"  # python-vagrant's env replaces os.environ: we merge
    assert env["PATH"] == "/usr/bin"
    assert env["VAGRANT_EXPERIMENTAL"] == "disks"
    assert env["VAGRANT_CWD"] == str(REPO)
    assert env["VAGRANT_DOTFILE_PATH"] == str(tmp_path / ".vagrant")
    assert env["VAGRANT_DEFAULT_PROVIDER"] == "libvirt"
    assert env["PROVISION_MEMORY"] == "4096"
    assert env["PROVISION_DISK_GIB"] == "10"


def test_experimental_features_are_kept(tmp_path: Path) -> None:
    env = adapter(tmp_path, {"VAGRANT_EXPERIMENTAL": "typed_triggers"}).env
    assert env["VAGRANT_EXPERIMENTAL"] == "typed_triggers,disks"
    assert adapter(tmp_path, {"VAGRANT_EXPERIMENTAL": "1"}).env["VAGRANT_EXPERIMENTAL"] == "1"


def test_missing_vagrant_is_prereq_with_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # python-vagrant looks on this process's PATH
    with pytest.raises(PrerequisiteError) as caught:
        adapter(tmp_path, {"PATH": str(tmp_path)}).executable()
    assert caught.value.exit_code == EXIT_PREREQ
    assert "vagrant is not installed" in caught.value.message
    assert "https://developer.hashicorp.com/vagrant/install" in caught.value.message
    assert os.environ["PATH"] == str(tmp_path)  # looked up, not rewritten


def test_vagrant_found_on_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "vagrant"
    fake.write_text("#!/bin/sh\necho 'Vagrant 2.3.4'\n", encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    a = adapter(tmp_path, {"PATH": str(tmp_path)})
    assert a.executable() == str(fake)
    assert a.version() == "2.3.4"
    assert preflight.check_vagrant(a) == "2.3.4"


def test_old_vagrant_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "vagrant"
    fake.write_text("#!/bin/sh\necho 'Vagrant 2.2.5'\n", encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    with pytest.raises(PrerequisiteError, match="too old"):
        preflight.check_vagrant(adapter(tmp_path, {"PATH": str(tmp_path)}))


def test_missing_virtualbox(tmp_path: Path) -> None:
    with pytest.raises(PrerequisiteError) as caught:
        preflight.check_provider("virtualbox", env={"PATH": str(tmp_path)})
    assert caught.value.message.startswith("VirtualBox is missing: install it from https://")
    assert "--provider libvirt" in caught.value.message


def test_missing_libvirt(tmp_path: Path) -> None:
    with pytest.raises(PrerequisiteError, match="libvirt is missing"):
        preflight.check_provider("libvirt", env={"PATH": str(tmp_path)})


def test_libvirt_connection_failure(tmp_path: Path) -> None:
    virsh = tmp_path / "virsh"
    virsh.write_text(
        "#!/bin/sh\necho 'error: Failed to connect socket to '\"'\"'/var/run/libvirt/"
        "libvirt-sock'\"'\"': No such file or directory' >&2\nexit 1\n",
        encoding="utf-8",
    )
    virsh.chmod(0o755)
    with pytest.raises(PrerequisiteError) as caught:
        preflight.check_provider("libvirt", env={"PATH": str(tmp_path)})
    assert "cannot connect to libvirt at qemu:///system" in caught.value.message
    assert "libvirt-sock" in caught.value.message


def test_libvirt_present(tmp_path: Path) -> None:
    virsh = tmp_path / "virsh"
    virsh.write_text("#!/bin/sh\necho qemu:///system\n", encoding="utf-8")
    virsh.chmod(0o755)
    assert preflight.check_provider("libvirt", env={"PATH": str(tmp_path)}) == (
        "libvirt qemu:///system"
    )


def test_not_enough_free_memory(tmp_path: Path) -> None:
    with pytest.raises(PrerequisiteError, match="not enough free memory"):
        preflight.check_resources(
            MachineSettings(memory=8192),
            env={"HOME": str(tmp_path)},
            free_memory=lambda: 4000,
            disk_free_bytes=lambda _p: 100 * 1024**3,
        )


def test_not_enough_free_disk(tmp_path: Path) -> None:
    with pytest.raises(PrerequisiteError, match="not enough free disk"):
        preflight.check_resources(
            MachineSettings(),
            env={"HOME": str(tmp_path)},
            free_memory=lambda: 20000,
            disk_free_bytes=lambda _p: 1 * 1024**3,
        )


def test_tight_disk_is_a_warning(tmp_path: Path) -> None:
    report = preflight.check_resources(
        MachineSettings(disk_gib=40),
        env={"HOME": str(tmp_path)},
        free_memory=lambda: 20000,
        disk_free_bytes=lambda _p: 20 * 1024**3,
    )
    assert len(report.warnings) == 1
    assert "may grow to 40 GiB" in report.warnings[0]


def test_meminfo(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 24684084 kB\nMemAvailable: 20000000 kB\n", encoding="ascii")
    assert preflight.available_memory_mib(meminfo) == 20000000 // 1024
    assert preflight.available_memory_mib(tmp_path / "none") is None


def test_parse_version() -> None:
    assert preflight.parse_version("2.3.4") == (2, 3, 4)
    assert preflight.parse_version("2.4.0.dev") == (2, 4, 0)
    assert preflight.parse_version("") == ()


def fake_vagrant(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stdout: Path,
    rc: int,
    stderr: Path | None = None,
) -> Path:
    """A `vagrant` first on this process's PATH (where python-vagrant looks) that replays
    recorded output and records its arguments and environment."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "vagrant"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {tmp_path}/calls\n'
        f'echo "VAGRANT_LOG=$VAGRANT_LOG" >> {tmp_path}/calls\n'
        f"cat {stdout}\n" + (f"cat {stderr} >&2\n" if stderr else "") + f"exit {rc}\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    return bindir


DATA = Path(__file__).parent / "data" / "vagrant"


def test_up_maps_vagrants_logged_provider_not_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_vagrant(
        tmp_path,
        monkeypatch,
        DATA / "up-virtualbox-provider-not-usable.stdout",
        1,
        DATA / "up-virtualbox-provider-not-usable.vagrant-log-stderr",
    )
    progress: list[str] = []
    a = VagrantAdapter(
        project_dir=tmp_path,
        paths=DataPaths(REPO),
        machine=MachineSettings(),
        progress=progress.append,
    )
    with pytest.raises(PrerequisiteError) as caught:
        a.up()
    assert caught.value.message.startswith("VirtualBox is missing")
    assert "Vagrant::Errors::ProviderNotUsable" in caught.value.detail
    assert progress == []  # Vagrant printed nothing on stdout before it failed
    calls = (tmp_path / "calls").read_text(encoding="utf-8").splitlines()
    assert calls == ["up --no-provision --provider=virtualbox", "VAGRANT_LOG=error"]


def test_failure_from_the_log_of_a_plugin_error() -> None:
    failure = failure_from_log(
        ' INFO vagrant: `vagrant` invoked: ["up"]\n'
        "ERROR vagrant: Vagrant experienced an error! Details:\n"
        "ERROR vagrant: #<VagrantPlugins::ProviderLibvirt::Errors::NoDomainError: No domain "
        "found.\nSecond line.>\n"
        "ERROR vagrant: No domain found.\n"
    )
    assert failure == VagrantFailure(
        "VagrantPlugins::ProviderLibvirt::Errors::NoDomainError", "No domain found.\nSecond line."
    )
    assert failure_from_log("plain stderr, no log\n") is None


def test_failure_without_error_record_carries_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.write_text("", encoding="utf-8")
    odd = tmp_path / "odd"
    odd.write_text("something odd happened", encoding="utf-8")
    fake_vagrant(tmp_path, monkeypatch, empty, 1, odd)
    a = VagrantAdapter(project_dir=tmp_path, paths=DataPaths(REPO), machine=MachineSettings())
    with pytest.raises(ProvisionError) as caught:
        a.halt()
    assert caught.value.exit_code == 1
    assert caught.value.message == "vagrant halt failed: something odd happened"


def test_status_reports_the_providers_own_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = tmp_path / "status.out"
    recorded.write_text(
        "1795746195,default,metadata,provider,libvirt\n"
        "1795746195,default,provider-name,libvirt\n"
        "1795746195,default,state,shutoff\n"
        "1795746195,default,state-human-short,shutoff\n"
        "1795746195,,ui,info,Current machine states:\\n\\ndefault   shutoff (libvirt)\n",
        encoding="utf-8",
    )
    fake_vagrant(tmp_path, monkeypatch, recorded, 0)
    a = VagrantAdapter(
        project_dir=tmp_path, paths=DataPaths(REPO), machine=MachineSettings(provider="libvirt")
    )
    (status,) = a.status()
    # as `vagrant status` prints it (python-vagrant's status() says "poweroff")
    assert (status.name, status.state, status.provider) == ("default", "shutoff", "libvirt")
    assert status.created
    assert not status.running


def test_status_failure_uses_the_error_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_vagrant(tmp_path, monkeypatch, DATA / "status-no-default-provider.machine-readable", 1)
    a = VagrantAdapter(project_dir=tmp_path, paths=DataPaths(REPO), machine=MachineSettings())
    with pytest.raises(PrerequisiteError, match="no usable Vagrant provider"):
        a.status()


def test_parse_real_status_output() -> None:
    """Vagrant 2.3.4 + vagrant-libvirt 0.11.2, this project's Vagrantfile, no VM yet."""
    output = (DATA / "status-libvirt-not-created.machine-readable").read_text(encoding="utf-8")
    (status,) = parse_status(output)
    assert (status.name, status.state, status.provider) == ("default", "not_created", "libvirt")
    assert not status.created


def test_up_streams_vagrants_progress_without_noise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = tmp_path / "up.out"
    recorded.write_text(
        "Bringing machine 'default' up with 'libvirt' provider...\n"
        "    default: Progress: 45% (Rate: 12M/s, Estimated time remaining: 0:00:03)\n"
        "==> default: Machine booted and ready!\n",
        encoding="utf-8",
    )
    fake_vagrant(tmp_path, monkeypatch, recorded, 0)
    progress: list[str] = []
    VagrantAdapter(
        project_dir=tmp_path,
        paths=DataPaths(REPO),
        machine=MachineSettings(provider="libvirt"),
        progress=progress.append,
    ).up()
    assert progress == [
        "Bringing machine 'default' up with 'libvirt' provider...",
        "==> default: Machine booted and ready!",
    ]


def test_python_vagrant_is_used_through_its_public_api() -> None:
    """No private attribute of python-vagrant (a leading underscore) is touched."""
    import ast

    source = (REPO / "provision" / "vagrant.py").read_text(encoding="utf-8")
    private = sorted(
        node.attr
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and isinstance(node.value, ast.Name)
        and node.value.id in ("client", "vagrant_mod", "vagrant")
    )
    assert private == []
    assert "err_cm =" not in source.replace("err_cm=", "")  # passed to the constructor only

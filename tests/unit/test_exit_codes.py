"""Exit codes: the named constants, what maps to each, and the CLI's one error boundary."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from provision import cli, commands
from provision import errors as e
from provision.runner import HostRecap, RunResult, TaskResult
from provision.vagrant import (
    VIRTUALBOX_HINT,
    VagrantFailure,
    parse_machine_readable_line,
    vagrant_error,
)
from tests.bed import provision_argv

VAGRANT_DATA = Path(__file__).parent / "data" / "vagrant"


def test_documented_values() -> None:
    assert (e.EXIT_OK, e.EXIT_FAILED, e.EXIT_USAGE, e.EXIT_PREREQ, e.EXIT_UNREACHABLE) == (
        0,
        1,
        2,
        3,
        4,
    )
    assert e.EXIT_INTERRUPTED == 130
    assert set(e.EXIT_CODES) == {0, 1, 2, 3, 4, 130}


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (e.ProvisionError("x"), e.EXIT_FAILED),
        (e.RunFailedError("x"), e.EXIT_FAILED),
        (e.UsageError("x"), e.EXIT_USAGE),
        (e.SettingsError("x"), e.EXIT_USAGE),
        (e.PrerequisiteError("x"), e.EXIT_PREREQ),
        (e.UnreachableError("x"), e.EXIT_UNREACHABLE),
        (e.InterruptedRunError("x"), e.EXIT_INTERRUPTED),
        (e.ProvisionError("x", exit_code=e.EXIT_PREREQ), e.EXIT_PREREQ),
    ],
)
def test_error_classes(error: e.ProvisionError, code: int) -> None:
    assert error.exit_code == code


def test_message_is_one_line() -> None:
    assert e.ProvisionError("a\n  b\tc\n").message == "a b c"


# --- Vagrant failures (real --machine-readable output of Vagrant 2.3.4) ----------------------


def failure_from(name: str) -> VagrantFailure:
    for line in (VAGRANT_DATA / name).read_text(encoding="utf-8").splitlines():
        record = parse_machine_readable_line(line)
        if record and record.type == "error-exit":
            return VagrantFailure(record.data[0], record.data[1])
    raise AssertionError(f"no error-exit record in {name}")


def test_provider_not_usable_is_prereq_with_install_hint() -> None:
    failure = failure_from("up-virtualbox-provider-not-usable.machine-readable")
    assert failure.error_class == "Vagrant::Errors::ProviderNotUsable"
    assert "VirtualBox, and requires" in failure.message  # %!(VAGRANT_COMMA) decoded
    error = vagrant_error(command="up", failure=failure, stderr="", provider="virtualbox")
    assert error.exit_code == e.EXIT_PREREQ
    assert error.message == VIRTUALBOX_HINT
    assert "https://www.virtualbox.org/wiki/Downloads" in error.message
    assert "--provider libvirt" in error.message
    assert "Vagrant could not detect VirtualBox" in error.detail  # Vagrant's own words kept


def test_provider_not_found_for_libvirt_names_the_plugin() -> None:
    failure = failure_from("up-libvirt-provider-not-found.machine-readable")
    error = vagrant_error(command="up", failure=failure, stderr="", provider="libvirt")
    assert error.exit_code == e.EXIT_PREREQ
    assert "vagrant-libvirt" in error.message


def test_no_default_provider() -> None:
    failure = failure_from("status-no-default-provider.machine-readable")
    error = vagrant_error(command="status", failure=failure, stderr="", provider="virtualbox")
    assert error.exit_code == e.EXIT_PREREQ


@pytest.mark.parametrize(
    ("error_class", "code"),
    [
        ("Vagrant::Errors::BoxAddShortNotFound", e.EXIT_USAGE),
        ("Vagrant::Errors::ActiveMachineWithDifferentProvider", e.EXIT_USAGE),
        ("Vagrant::Errors::VagrantInterrupt", e.EXIT_INTERRUPTED),
        ("Vagrant::Errors::VMNotCreatedError", e.EXIT_FAILED),
        ("Vagrant::Errors::DownloaderError", e.EXIT_FAILED),
    ],
)
def test_other_vagrant_errors(error_class: str, code: int) -> None:
    error = vagrant_error(
        command="up",
        failure=VagrantFailure(error_class, "Something went wrong.\n\nDetails here."),
        stderr="",
        provider="virtualbox",
    )
    assert error.exit_code == code
    assert "\n" not in error.message


def test_unknown_failure_carries_stderr() -> None:
    error = vagrant_error(
        command="halt", failure=None, stderr="boom: it broke\nmore\n", provider="libvirt"
    )
    assert error.exit_code == e.EXIT_FAILED
    assert error.message.startswith("vagrant halt failed: boom: it broke")
    assert "more" in error.detail


def test_machine_readable_parsing() -> None:
    record = parse_machine_readable_line("1795746195,default,ui,info,a%!(VAGRANT_COMMA) b\\nc")
    assert record is not None
    assert (record.target, record.type, record.data) == ("default", "ui", ("info", "a, b\nc"))
    assert parse_machine_readable_line("==> default: Booting VM...") is None


# --- Ansible run results ------------------------------------------------------------------------


def run_result(**hosts: HostRecap) -> RunResult:
    return RunResult(status="failed", rc=2, hosts=list(hosts.values()), elapsed=1.0)


def test_successful_run_does_not_raise() -> None:
    RunResult(status="successful", rc=0, hosts=[HostRecap("a", ok=3)], elapsed=1).raise_for_status()


def test_unreachable_host_is_exit_4() -> None:
    result = run_result(a=HostRecap("a", ok=1), b=HostRecap("b", unreachable=1))
    result.unreachable["b"] = "Failed to connect to the host via ssh: Connection refused"
    with pytest.raises(e.UnreachableError) as caught:
        result.raise_for_status()
    assert caught.value.exit_code == e.EXIT_UNREACHABLE
    assert "host b unreachable: Failed to connect" in caught.value.message


def test_failed_task_is_exit_1() -> None:
    result = run_result(a=HostRecap("a", ok=4, failed=1))
    result.failures.append(TaskResult("a", "docker : Install", "failed", message="no candidate"))
    with pytest.raises(e.RunFailedError) as caught:
        result.raise_for_status()
    assert caught.value.exit_code == e.EXIT_FAILED
    assert "docker : Install: no candidate" in caught.value.message


def test_unreachable_wins_over_failed() -> None:
    result = run_result(a=HostRecap("a", failed=1), b=HostRecap("b", unreachable=1))
    with pytest.raises(e.UnreachableError):
        result.raise_for_status()


def test_cancelled_run_is_exit_130() -> None:
    result = RunResult(status="canceled", rc=254, hosts=[], elapsed=1)
    with pytest.raises(e.InterruptedRunError):
        result.raise_for_status()


def test_run_without_stats_reports_ansible_error() -> None:
    result = RunResult(status="failed", rc=4, hosts=[], elapsed=1)
    result.error_lines.append("[ERROR]: the playbook could not be parsed")
    with pytest.raises(e.RunFailedError) as caught:
        result.raise_for_status()
    assert "could not be parsed" in caught.value.message


def test_missing_ansible_playbook_binary() -> None:
    with pytest.raises(e.RunFailedError) as caught:
        RunResult(status="failed", rc=127, hosts=[], elapsed=1).raise_for_status()
    assert "ansible-playbook was not found" in caught.value.message


# --- the CLI's error boundary ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raised", "code"),
    [
        (e.PrerequisiteError("vagrant is not installed"), 3),
        (e.UnreachableError("host a unreachable"), 4),
        (e.RunFailedError("a task failed"), 1),
        (e.SettingsError("bad"), 2),
        (KeyboardInterrupt(), 130),
        (RuntimeError("a bug"), 1),
    ],
)
def test_boundary_maps_errors_to_codes_and_one_line(
    raised: BaseException,
    code: int,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def boom(ctx: commands.Context) -> None:
        raise raised

    monkeypatch.setattr(commands, "cmd_status", boom)
    assert cli.main(["status"]) == code
    captured = capsys.readouterr()
    assert len(captured.err.splitlines()) == 1
    assert captured.err.startswith("provision: error: ")
    assert "Traceback" not in captured.err


def test_internal_error_suggests_debug_and_debug_shows_traceback(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(ctx: commands.Context) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(commands, "cmd_status", boom)
    assert cli.main(["status"]) == 1
    assert "--debug" in capsys.readouterr().err
    assert cli.main(["status", "--debug"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_console_script_exit_status(workdir: Path) -> None:
    """The process exit status is the code (not only main's return value)."""
    result = subprocess.run(
        [*provision_argv(), "up", "--memory", "12"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1

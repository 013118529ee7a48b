"""`provision --help` for every command, and it imports no heavy library."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from provision import cli
from tests.bed import provision_argv

COMMANDS = ("up", "apply", "verify", "status", "ssh", "halt", "destroy")
HEAVY = ("ansible", "ansible_runner", "testinfra", "vagrant", "yaml", "pytest")


def test_every_command_is_listed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert f"    {command} " in out
    assert "exit codes:" in out
    assert "130" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help(command: str) -> None:
    result = subprocess.run(
        [*provision_argv(), command, "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: provision {command}")
    assert "--json" in result.stdout  # global options work after the command too
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("up", ["--provider", "--box", "--memory", "--cpus", "--disk", "--no-checks"]),
        ("apply", ["--inventory", "--limit", "--extra-vars", "--check", "--diff"]),
        ("verify", ["--inventory", "--limit", "--extra-vars"]),
        ("ssh", ["--command"]),
        ("destroy", ["--force"]),
    ],
)
def test_command_options(command: str, options: list[str]) -> None:
    result = subprocess.run(
        [*provision_argv(), command, "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    text = result.stdout
    for option in options:
        assert option in text


def test_help_imports_no_heavy_library() -> None:
    code = (
        "import sys, json\n"
        "from provision import cli\n"
        "try:\n"
        "    cli.main(['up', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout.splitlines()[-1]) == []


def test_global_options_before_and_after_the_command() -> None:
    assert cli.parse_args(["--json", "status"]).json is True
    assert cli.parse_args(["status", "--json"]).json is True
    assert cli.parse_args(["status"]).json is False
    assert cli.parse_args(["-vv", "apply", "-i", "x"]).verbose == 2
    assert cli.parse_args(["--config", "a.toml", "up"]).config == "a.toml"
    args = cli.parse_args(["apply", "-i", "inv", "-e", "a=1", "-e", "@f.yml", "--check"])
    assert args.extra_vars == ["a=1", "@f.yml"]
    assert args.check is True

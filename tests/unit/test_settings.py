"""Settings that are right: defaults, precedence, [docker] through the role's contract, the
names provision tolerates. (Malformed ones: test_malformed_inputs.py, through the CLI.)"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from provision import cli
from provision.errors import EXIT_USAGE, SettingsError
from provision.role_options import RoleContract, load_ansible_yaml
from provision.settings import (
    DEFAULT_BOXES,
    MachineSettings,
    check_environment_names,
    load_settings,
)
from tests.bed import provision_argv

ROLE_DIR = Path(__file__).resolve().parents[2] / "roles" / "docker"
TEMPLATED_URL = "http://127.0.0.1:8080/linux/{{ ansible_distribution | lower }}"


def test_defaults(workdir: Path, host_limits: object) -> None:
    settings = load_settings(env={})
    # The share defaults to the working directory, made absolute.
    assert settings.machine == MachineSettings(share=str(workdir.resolve()))
    assert settings.machine.box == "ubuntu/focal64"
    assert settings.machine.provider == "virtualbox"
    assert (settings.machine.memory, settings.machine.cpus, settings.machine.disk_gib) == (
        8192,
        2,
        10,
    )
    assert settings.docker == {}
    assert settings.checks.walkthrough_image == "busybox"
    assert settings.config_file is None


def test_a_default_box_per_provider(workdir: Path, host_limits: object) -> None:
    """ubuntu/focal64 is published for VirtualBox only: libvirt gets a focal box of its own,
    unless a box is named."""
    assert DEFAULT_BOXES == {"virtualbox": "ubuntu/focal64", "libvirt": "generic/ubuntu2004"}
    libvirt = load_settings(env={}, flags={"provider": "libvirt"})
    assert libvirt.machine.box == "generic/ubuntu2004"
    named = load_settings(env={"PROVISION_BOX": "my/focal"}, flags={"provider": "libvirt"})
    assert named.machine.box == "my/focal"
    assert MachineSettings(provider="libvirt").box == "generic/ubuntu2004"


def test_up_help_names_the_default_boxes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["up", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "ubuntu/focal64 for virtualbox" in text
    assert "generic/ubuntu2004 for libvirt" in text


def test_precedence_file_env_flags(workdir: Path, host_limits: object) -> None:
    (workdir / "provision.toml").write_text(
        '[machine]\nmemory = 2048\ncpus = 1\nprovider = "libvirt"\nbox = "generic/ubuntu2004"\n',
        encoding="utf-8",
    )
    settings = load_settings(
        env={"PROVISION_MEMORY": "4096", "PROVISION_CPUS": "3"},
        flags={"memory": "3072", "cpus": None},
    )
    assert settings.machine.memory == 3072  # flag beats env beats file
    assert settings.machine.cpus == 3  # env beats file
    assert settings.machine.provider == "libvirt"  # file beats default
    assert settings.machine.box == "generic/ubuntu2004"
    assert settings.config_file == workdir / "provision.toml"


def test_docker_section_maps_to_role_variables(workdir: Path, host_limits: object) -> None:
    (workdir / "provision.toml").write_text(
        "[docker]\n"
        'users = ["ops", "ci"]\n'
        'registry_mirrors = ["http://mirror.internal:5000"]\n'
        'apt_key_fingerprint = "9DC8 5822 9FC7 DD38 854A E2D8 8D81 803C 0EBF CD88"\n'
        f"apt_repository_url = {json.dumps(TEMPLATED_URL)}\n"
        "[docker.daemon_options]\n"
        '"log-driver" = "journald"\n',
        encoding="utf-8",
    )
    settings = load_settings(
        env={
            "PROVISION_DOCKER_INSECURE_REGISTRIES": "a:5000, b:5000",
            "PROVISION_DOCKER_LIVE_RESTORE": "yes",
            "PROVISION_DOCKER_USERS": '["deploy"]',
        }
    )
    assert settings.role_vars() == {
        "docker_users": ["deploy"],  # the environment wins over the file
        "docker_registry_mirrors": ["http://mirror.internal:5000"],
        "docker_apt_key_fingerprint": "9DC8 5822 9FC7 DD38 854A E2D8 8D81 803C 0EBF CD88",
        # a Jinja expression is the role's to render and its preflight's to check
        "docker_apt_repository_url": TEMPLATED_URL,
        "docker_daemon_options": {"log-driver": "journald"},
        "docker_insecure_registries": ["a:5000", "b:5000"],
        "docker_live_restore": True,  # converted as the argument spec converts it
    }


def test_values_are_converted_by_the_argument_spec() -> None:
    contract = RoleContract.load()
    assert contract.validate("docker_users", "ops,ci", where="x") == ["ops", "ci"]
    assert contract.validate("docker_remove_running_engine", "no", where="x") is False
    assert contract.validate("docker_daemon_options", '{"debug": true}', where="x") == {
        "debug": True
    }
    with pytest.raises(SettingsError) as caught:
        contract.validate("docker_users", {"a": 1}, where="PROVISION_DOCKER_USERS")
    assert caught.value.message == ('PROVISION_DOCKER_USERS = {"a": 1}: must be a list of strings')
    assert "unable to convert to list" in caught.value.detail  # ansible-core's own words


def test_the_contract_is_the_argument_spec() -> None:
    """The accepted options, types and choices are meta/argument_specs.yml's, read as is."""
    contract = RoleContract.load()
    spec = load_ansible_yaml(ROLE_DIR / "meta" / "argument_specs.yml")
    options = spec["argument_specs"]["main"]["options"]
    assert sorted(contract.options) == sorted(options)
    assert contract.accepted("docker_apt_channel") == "one of stable, test"
    assert contract.accepted("docker_users") == "a list of strings"
    assert contract.accepted("docker_live_restore") == "true or false"


@pytest.mark.parametrize(
    "name",
    ["PROVISION_DATA_DIR", "PROVISION_CHECKS_EXPECT", "PROVISION_TESTBED_DIR", "HOME", "PATH"],
)
def test_variables_provision_does_not_own_are_tolerated(name: str) -> None:
    check_environment_names({name: "x"})


def test_unknown_variable_is_refused_with_a_guess() -> None:
    with pytest.raises(SettingsError) as caught:
        check_environment_names({"PROVISION_DISK": "20"})
    assert caught.value.message == (
        "PROVISION_DISK: unknown variable (did you mean PROVISION_DISK_GIB?)"
    )


def test_machine_settings_reach_vagrant_as_environment() -> None:
    env = MachineSettings(memory=2048, disk_gib=20, provider="libvirt").vagrant_env()
    assert env == {
        "PROVISION_BOX": "generic/ubuntu2004",
        "PROVISION_PROVIDER": "libvirt",
        "PROVISION_MEMORY": "2048",
        "PROVISION_CPUS": "2",
        "PROVISION_DISK_GIB": "20",
        "PROVISION_HOSTNAME": "provision",
        "PROVISION_LIBVIRT_DRIVER": "kvm",
        "PROVISION_PORTS": "",
        "PROVISION_SHARE": "",
    }


def test_the_vagrantfile_reads_what_provision_hands_it() -> None:
    vagrantfile = (ROLE_DIR.parents[1] / "Vagrantfile").read_text(encoding="utf-8")
    for name in MachineSettings().vagrant_env():
        if name != "PROVISION_PROVIDER":  # Vagrant's own VAGRANT_DEFAULT_PROVIDER says that
            assert f'"{name.removeprefix("PROVISION_")}"' in vagrantfile, name


def test_json_error_document(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "provision.toml").write_text("[machine]\ncpus = 0\n", encoding="utf-8")
    code = cli.main(["status", "--json"])
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert code == EXIT_USAGE
    assert document["ok"] is False
    assert document["exit_code"] == EXIT_USAGE
    assert "machine.cpus" in document["error"]["message"]


def test_validation_reads_no_ansible_configuration(tmp_path: Path) -> None:
    """ansible-core's validator runs in provision's own process without loading Ansible's
    configuration: a broken ./ansible.cfg (which runs never use: they get the shipped one)
    changes nothing."""
    (tmp_path / "ansible.cfg").write_text("[defaults\nbroken\n", encoding="utf-8")
    (tmp_path / "provision.toml").write_text('[docker]\napt_channel = "nightly"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROVISION_", "ANSIBLE_"))}
    proc = subprocess.run(
        [*provision_argv(), "status"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == EXIT_USAGE
    assert proc.stderr == (
        'provision: error: provision.toml: docker.apt_channel = "nightly": must be one of '
        "stable, test\n"
    )

"""Settings: every malformed input stops the CLI with exit 2 and one line naming the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision import cli
from provision.errors import EXIT_USAGE, SettingsError
from provision.role_options import load_ansible_yaml
from provision.settings import (
    MachineSettings,
    RoleSpec,
    load_settings,
)

ROLE_DIR = Path(__file__).resolve().parents[2] / "roles" / "docker"

# (id, provision.toml text, environment, extra CLI arguments, text the error line must name)
MALFORMED: list[tuple[str, str, dict[str, str], list[str], str]] = [
    ("toml-syntax", "[machine\nmemory = 4096\n", {}, [], "invalid TOML"),
    ("toml-missing-value", "[machine]\nmemory =\n", {}, [], "invalid TOML"),
    ("toml-duplicate-key", "[machine]\nmemory = 4096\nmemory = 2048\n", {}, [], "invalid TOML"),
    ("unknown-section", "[machin]\nmemory = 4096\n", {}, [], "'machin'"),
    ("top-level-key", "memory = 4096\n", {}, [], "'memory'"),
    ("section-not-table", "machine = 4096\n", {}, [], "machine"),
    ("unknown-machine-key", "[machine]\nmemroy = 4096\n", {}, [], "machine.memroy"),
    ("memory-string", '[machine]\nmemory = "4096"\n', {}, [], "machine.memory"),
    ("memory-float", "[machine]\nmemory = 4096.5\n", {}, [], "machine.memory"),
    ("memory-bool", "[machine]\nmemory = true\n", {}, [], "machine.memory"),
    ("memory-too-small", "[machine]\nmemory = 512\n", {}, [], "at least 1024"),
    ("memory-zero", "[machine]\nmemory = 0\n", {}, [], "machine.memory"),
    ("memory-negative", "[machine]\nmemory = -1\n", {}, [], "machine.memory"),
    ("memory-above-host", "[machine]\nmemory = 65536\n", {}, [], "more than this host has"),
    ("cpus-zero", "[machine]\ncpus = 0\n", {}, [], "machine.cpus"),
    ("cpus-string", '[machine]\ncpus = "2"\n', {}, [], "machine.cpus"),
    ("cpus-above-host", "[machine]\ncpus = 64\n", {}, [], "machine.cpus"),
    ("disk-too-small", "[machine]\ndisk = 1\n", {}, [], "machine.disk"),
    ("disk-too-large", "[machine]\ndisk = 99999\n", {}, [], "machine.disk"),
    ("disk-with-unit", '[machine]\ndisk = "10GB"\n', {}, [], "machine.disk"),
    ("provider-unknown", '[machine]\nprovider = "vbox"\n', {}, [], "virtualbox, libvirt"),
    ("provider-case", '[machine]\nprovider = "VirtualBox"\n', {}, [], "virtualbox, libvirt"),
    ("provider-number", "[machine]\nprovider = 1\n", {}, [], "machine.provider"),
    ("hostname-underscore", '[machine]\nhostname = "bad_name"\n', {}, [], "machine.hostname"),
    ("hostname-leading-dash", '[machine]\nhostname = "-web"\n', {}, [], "machine.hostname"),
    ("hostname-label-too-long", f'[machine]\nhostname = "{"a" * 64}"\n', {}, [], "hostname"),
    ("box-empty", '[machine]\nbox = ""\n', {}, [], "machine.box"),
    ("box-space", '[machine]\nbox = "ubuntu focal"\n', {}, [], "machine.box"),
    ("libvirt-driver", '[machine]\nlibvirt_driver = "xen"\n', {}, [], "kvm, qemu"),
    ("docker-unknown-key", '[docker]\nuserz = ["ops"]\n', {}, [], "docker.userz"),
    ("docker-prefixed-key", '[docker]\ndocker_users = ["ops"]\n', {}, [], "docker.docker_users"),
    ("docker-users-string", '[docker]\nusers = "ops"\n', {}, [], "docker.users"),
    ("docker-users-numbers", "[docker]\nusers = [1, 2]\n", {}, [], "docker.users[0]"),
    ("docker-daemon-options", '[docker]\ndaemon_options = "x"\n', {}, [], "docker.daemon_options"),
    ("docker-choice", '[docker]\napt_channel = "nightly"\n', {}, [], "stable, test"),
    ("docker-bool", '[docker]\nremove_running_engine = "yes"\n', {}, [], "true or false"),
    ("checks-image-empty", '[checks]\nwalkthrough_image = ""\n', {}, [], "walkthrough_image"),
    ("checks-unknown", "[checks]\nimage = 1\n", {}, [], "checks.image"),
    ("env-memory-text", "", {"PROVISION_MEMORY": "lots"}, [], "PROVISION_MEMORY"),
    ("env-memory-small", "", {"PROVISION_MEMORY": "512"}, [], "PROVISION_MEMORY"),
    ("env-provider", "", {"PROVISION_PROVIDER": "hyperv"}, [], "PROVISION_PROVIDER"),
    ("env-disk", "", {"PROVISION_DISK_GB": "ten"}, [], "PROVISION_DISK_GB"),
    ("env-docker-json", "", {"PROVISION_DOCKER_USERS": '["ops"'}, [], "PROVISION_DOCKER_USERS"),
    ("env-docker-unknown", "", {"PROVISION_DOCKER_USRS": "ops"}, [], "PROVISION_DOCKER_USRS"),
    ("env-docker-bool", "", {"PROVISION_DOCKER_LIVE_RESTORE": "maybe"}, [], "LIVE_RESTORE"),
    ("env-docker-dict", "", {"PROVISION_DOCKER_DAEMON_OPTIONS": "[1]"}, [], "DAEMON_OPTIONS"),
    ("flag-memory-text", "", {}, ["up", "--memory", "8G"], "--memory"),
    ("flag-disk-zero", "", {}, ["up", "--disk", "0"], "--disk"),
    ("flag-provider", "", {}, ["up", "--provider", "xen"], "--provider"),
    ("flag-cpus", "", {}, ["up", "--cpus", "many"], "--cpus"),
    ("flag-unknown", "", {}, ["up", "--ram", "4096"], "--ram"),
    ("apply-without-inventory", "", {}, ["apply"], "--inventory"),
]


@pytest.mark.parametrize(
    ("toml", "env", "args", "named"),
    [pytest.param(t, e, a, n, id=i) for i, t, e, a, n in MALFORMED],
)
def test_malformed_settings_exit_2_with_one_line(
    toml: str,
    env: dict[str, str],
    args: list[str],
    named: str,
    workdir: Path,
    host_limits: object,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if toml:
        (workdir / "provision.toml").write_text(toml, encoding="utf-8")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # `status` would call Vagrant next: settings must stop it first.
    code = cli.main(args or ["status"])
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert code == EXIT_USAGE, captured.err
    assert len(lines) == 1, lines
    assert lines[0].startswith("provision: error: ")
    assert named in lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert captured.out == ""


def test_at_least_thirty_malformed_inputs() -> None:
    assert len(MALFORMED) >= 30


@pytest.mark.parametrize(
    ("name", "content"),
    [("missing.toml", None), ("directory", "dir"), ("latin1.toml", b"[machine]\nbox = '\xe9'\n")],
)
def test_unreadable_config_file(
    name: str, content: object, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = workdir / name
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    code = cli.main(["--config", str(path), "status"])
    err = capsys.readouterr().err.splitlines()
    assert code == EXIT_USAGE
    assert len(err) == 1
    assert str(path) in err[0]


def test_json_error_document(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    (workdir / "provision.toml").write_text("[machine]\ncpus = 0\n", encoding="utf-8")
    code = cli.main(["status", "--json"])
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert code == EXIT_USAGE
    assert document["ok"] is False
    assert document["exit_code"] == EXIT_USAGE
    assert "machine.cpus" in document["error"]["message"]


# --- valid settings and precedence ------------------------------------------------------------


def test_defaults(workdir: Path, host_limits: object) -> None:
    settings = load_settings(env={})
    assert settings.machine == MachineSettings()
    assert settings.machine.box == "ubuntu/focal64"
    assert settings.machine.provider == "virtualbox"
    assert (settings.machine.memory, settings.machine.cpus, settings.machine.disk) == (8192, 2, 10)
    assert settings.docker == {}
    assert settings.checks.walkthrough_image == "busybox"
    assert settings.config_file is None


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
        "[docker.daemon_options]\n"
        '"log-driver" = "journald"\n',
        encoding="utf-8",
    )
    settings = load_settings(env={"PROVISION_DOCKER_INSECURE_REGISTRIES": "a:5000, b:5000"})
    assert settings.role_vars() == {
        "docker_users": ["ops", "ci"],
        "docker_registry_mirrors": ["http://mirror.internal:5000"],
        "docker_apt_key_fingerprint": "9DC8 5822 9FC7 DD38 854A E2D8 8D81 803C 0EBF CD88",
        "docker_daemon_options": {"log-driver": "journald"},
        "docker_insecure_registries": ["a:5000", "b:5000"],
    }


def test_every_role_option_is_a_docker_key() -> None:
    """The [docker] keys are the role's contract (meta/argument_specs.yml), nothing else."""
    spec = RoleSpec.from_role_dir(ROLE_DIR)
    contract = load_ansible_yaml(ROLE_DIR / "meta" / "argument_specs.yml")
    names = contract["argument_specs"]["main"]["options"]
    assert sorted(spec.fields) == sorted(n.removeprefix("docker_") for n in names)
    assert spec.fields["users"].kind == "list"
    assert spec.fields["users"].elements == "str"
    assert spec.fields["apt_channel"].choices == ("stable", "test")
    # !unsafe-tagged defaults load as their text, plain ones as values
    assert spec.defaults["apt_key_fingerprint"] == "9DC858229FC7DD38854AE2D88D81803C0EBFCD88"
    assert "{{" in spec.defaults["apt_key_url"]


def test_machine_settings_reach_vagrant_as_environment() -> None:
    env = MachineSettings(memory=2048, disk=20, provider="libvirt").vagrant_env()
    assert env == {
        "PROVISION_BOX": "ubuntu/focal64",
        "PROVISION_PROVIDER": "libvirt",
        "PROVISION_MEMORY": "2048",
        "PROVISION_CPUS": "2",
        "PROVISION_DISK_GB": "20",
        "PROVISION_HOSTNAME": "provision",
        "PROVISION_LIBVIRT_DRIVER": "kvm",
    }


def test_settings_error_is_exit_2() -> None:
    assert SettingsError("x").exit_code == EXIT_USAGE

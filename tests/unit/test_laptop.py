"""The laptop's side of the VM: forwarded ports and the docker context settings, the host-port
check (against real sockets of this machine), `provision env`'s lines and the socket path rule.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from provision import cli
from provision.errors import EXIT_USAGE, SettingsError, UsageError
from provision.laptop import env_lines, env_values
from provision.preflight import check_ports, port_in_use
from provision.settings import HostLimits, MachineSettings, load_settings, parse_port
from provision.tunnel import MAX_SOCKET_PATH, Tunnel

HOST = HostLimits(memory_mib=65536, cpus=8)


def machine(**env: str) -> MachineSettings:
    return load_settings(env=env, cwd=Path(tempfile.gettempdir()), host=HOST).machine


@pytest.fixture
def listener() -> Iterator[int]:
    """A port something really listens on, on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


# -- ports ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "pair"),
    [
        ("8888", (8888, 8888)),
        ("8080:80", (8080, 80)),
        (8081, (8081, 8081)),
        (" 9000:22 ", (9000, 22)),
    ],
)
def test_a_port_is_host_or_host_colon_guest(item: str | int, pair: tuple[int, int]) -> None:
    assert parse_port(item) == pair


@pytest.mark.parametrize(
    ("item", "says"),
    [
        ("80", "host port 80 is out of range (1024-65535"),
        ("70000", "host port 70000 is out of range"),
        ("8080:0", "guest port 0 is out of range (1-65535)"),
        ("8080:70000", "guest port 70000 is out of range"),
        ("http", "is not a port: give HOST or HOST:GUEST"),
        ("1:2:3", "is not a port"),
        ("8080:", "is not a port"),
        ("-8080", "is not a port"),
        ("\uff18\uff10\uff18\uff10", "is not a port"),  # full-width digits pass str.isdigit
    ],
)
def test_a_bad_port_says_why(item: str, says: str) -> None:
    problem = parse_port(item)
    assert isinstance(problem, str)
    assert says in problem


def test_ports_from_the_file_environment_and_flag(workdir: Path) -> None:
    (workdir / "provision.toml").write_text('[machine]\nports = ["8888", 8081, "8080:80"]\n')
    from_file = load_settings(cwd=workdir, env={}, host=HOST).machine
    assert from_file.ports == ("8888:8888", "8081:8081", "8080:80")
    assert from_file.forwarded_ports() == [(8888, 8888), (8081, 8081), (8080, 80)]
    from_env = load_settings(cwd=workdir, env={"PROVISION_PORTS": "9000:90, 9001"}, host=HOST)
    assert from_env.machine.ports == ("9000:90", "9001:9001")
    from_flag = load_settings(cwd=workdir, env={}, flags={"ports": "9100:91"}, host=HOST)
    assert from_flag.machine.ports == ("9100:91",)
    off = load_settings(cwd=workdir, env={"PROVISION_PORTS": ""}, host=HOST)
    assert off.machine.ports == ()


def test_ports_reach_the_vagrantfile_normalized() -> None:
    env = machine(PROVISION_PORTS="8888,8080:80").vagrant_env()
    assert env["PROVISION_PORTS"] == "8888:8888,8080:80"
    assert "PROVISION_DOCKER_CONTEXT" not in env  # the laptop's, not the VM's


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("8888,8888", "PROVISION_PORTS: host port 8888 is forwarded twice"),
        ("8888,8888:80", "host port 8888 is forwarded twice"),
        ("8888;8889", "is not a port"),
    ],
)
def test_bad_ports_in_the_environment(value: str, says: str) -> None:
    with pytest.raises(SettingsError) as caught:
        machine(PROVISION_PORTS=value)
    assert says in caught.value.message


def test_ports_must_be_a_list_in_the_file(workdir: Path) -> None:
    (workdir / "provision.toml").write_text('[machine]\nports = "8888"\n')
    with pytest.raises(SettingsError) as caught:
        load_settings(cwd=workdir, env={}, host=HOST)
    assert (
        caught.value.message == 'provision.toml: machine.ports = "8888": must be a list of strings'
    )


def test_a_host_port_in_use_is_refused(listener: int) -> None:
    assert port_in_use(listener)
    settings = machine(PROVISION_PORTS=f"{listener}:80")
    with pytest.raises(SettingsError) as caught:
        check_ports(settings)
    assert caught.value.message.startswith(
        f"machine.ports: host port {listener} (for guest port 80) is already in use on 127.0.0.1"
    )


def test_a_free_host_port_passes() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago, now closed again
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    assert not port_in_use(port)
    check_ports(machine(PROVISION_PORTS=str(port)))


def test_up_refuses_a_port_in_use_with_one_line(
    workdir: Path, listener: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the CLI, on an empty project: the port is refused before any VM exists (the
    fake vagrant on PATH answers `status` with not_created and fails on anything else)."""
    fake = workdir / "bin" / "vagrant"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        "  --version) echo 'Vagrant 2.3.4' ;;\n"
        "  status) echo '1,default,provider-name,libvirt'; echo '1,default,state,not_created' ;;\n"
        '  *) echo "unexpected vagrant $*" >&2; exit 99 ;;\n'
        "esac\n"
    )
    fake.chmod(0o755)
    virsh = fake.parent / "virsh"
    virsh.write_text("#!/bin/sh\necho qemu:///system\n")
    virsh.chmod(0o755)
    (workdir / "provision.toml").write_text(
        f'[machine]\nprovider = "libvirt"\nports = ["{listener}:80"]\n'
    )
    path = f"{fake.parent}{os.pathsep}{os.environ['PATH']}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", path)
        code = cli.main(["up"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_USAGE, err
    assert err == [
        f"provision: error: machine.ports: host port {listener} (for guest port 80) is already "
        f"in use on 127.0.0.1: stop what listens there or forward another port"
    ]


# -- the docker context ------------------------------------------------------------------


def test_the_context_setting() -> None:
    assert machine().docker_context == "provision"
    assert machine(PROVISION_DOCKER_CONTEXT="vm.2_b+c").docker_context == "vm.2_b+c"
    assert machine(PROVISION_DOCKER_CONTEXT="").docker_context == ""


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("default", "'default' is the docker CLI's own context"),
        ("-x", "is not a docker context name"),
        ("a b", "is not a docker context name"),
        ("x", "is not a docker context name"),  # the CLI wants two characters at least
    ],
)
def test_bad_context_names(name: str, says: str) -> None:
    with pytest.raises(SettingsError) as caught:
        machine(PROVISION_DOCKER_CONTEXT=name)
    assert caught.value.message.startswith("PROVISION_DOCKER_CONTEXT: ")
    assert says in caught.value.message


def test_the_context_variable_is_not_taken_for_a_role_variable() -> None:
    # PROVISION_DOCKER_* names are the role's; this one is a [machine] setting.
    settings = load_settings(
        env={"PROVISION_DOCKER_CONTEXT": "lab"}, cwd=Path(tempfile.gettempdir()), host=HOST
    )
    assert settings.docker == {}
    assert settings.machine.docker_context == "lab"


# -- the share ------------------------------------------------------------------------------


def test_the_share_is_the_working_directory_by_default(workdir: Path) -> None:
    (workdir / "sub").mkdir()
    assert load_settings(cwd=workdir, env={}, host=HOST).machine.share == str(workdir.resolve())
    relative = load_settings(cwd=workdir, env={"PROVISION_SHARE": "sub"}, host=HOST)
    assert relative.machine.share == str((workdir / "sub").resolve())
    off = load_settings(cwd=workdir, env={}, flags={"share": ""}, host=HOST)
    assert off.machine.share == ""
    assert off.machine.vagrant_env()["PROVISION_SHARE"] == ""


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("missing", "{cwd}/missing does not exist (a directory to mount in the VM"),
        ("file.txt", "{cwd}/file.txt is not a directory"),
        ("/", "/ clashes with the VM's own /bin"),
        ("/usr/local", "/usr/local clashes with the VM's own /usr"),
        ("/home", "/home clashes with the VM's own /home/vagrant"),
    ],
)
def test_a_bad_share_is_refused(workdir: Path, value: str, says: str) -> None:
    (workdir / "file.txt").write_text("x")
    (workdir / "provision.toml").write_text(f"[machine]\nshare = {value!r}\n".replace("'", '"'))
    with pytest.raises(SettingsError) as caught:
        load_settings(cwd=workdir, env={}, host=HOST)
    message = caught.value.message
    assert message.startswith(f'provision.toml: machine.share = "{value}": ')
    assert says.format(cwd=workdir.resolve()) in message


def test_a_missing_share_is_refused_by_up_only(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`up` would mount it; `destroy` and the others must still work once it is gone."""
    code = cli.main(["up", "--share", "gone"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_USAGE
    assert len(err) == 1
    assert err[0].startswith('provision: error: --share = "gone": ')
    lenient = load_settings(cwd=workdir, env={"PROVISION_SHARE": "gone"}, strict_share=False)
    assert lenient.machine.share == str(workdir.resolve() / "gone")


# -- provision env ---------------------------------------------------------------------------


def test_env_lines_evaluate_in_a_real_shell(tmp_path: Path) -> None:
    weird = tmp_path / "it's a dir" / "docker.sock"
    values = env_values(docker_host=f"unix://{weird}", context="provision")
    assert values == {"DOCKER_HOST": f"unix://{weird}", "DOCKER_CONTEXT": "provision"}
    script = "\n".join(env_lines(values)) + '\nprintf "%s\\n%s\\n" "$DOCKER_HOST" "$DOCKER_CONTEXT"'
    shown = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert shown.stdout.splitlines() == [f"unix://{weird}", "provision"]


def test_env_without_a_context_sets_only_docker_host() -> None:
    values = env_values(docker_host="unix:///p/.vagrant/provision/docker.sock", context="")
    assert values == {"DOCKER_HOST": "unix:///p/.vagrant/provision/docker.sock"}
    lines = env_lines(values)
    assert lines[0] == "export DOCKER_HOST=unix:///p/.vagrant/provision/docker.sock"
    assert lines[-1] == '# run: eval "$(provision env)"'


def test_env_for_fish() -> None:
    lines = env_lines({"DOCKER_HOST": "unix:///a b/docker.sock"}, syntax="fish")
    assert lines[0] == f"set -gx DOCKER_HOST {shlex.quote('unix:///a b/docker.sock')};"


def test_env_without_a_forward_fails_with_one_line(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["env"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err == [
        "provision: error: the VM's docker engine is not forwarded to this machine: run "
        "`provision up` first"
    ]


# -- the forwarded socket's path ---------------------------------------------------------------


def test_a_socket_path_too_long_is_refused(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * (MAX_SOCKET_PATH - len(str(tmp_path))))
    with pytest.raises(UsageError) as caught:
        Tunnel(deep / ".vagrant" / "provision").check_path()
    assert "too long for the docker socket" in caught.value.message
    Tunnel(tmp_path / ".vagrant" / "provision").check_path()  # a usual path passes

"""`vagrant ssh-config` output → Ansible inventory, from real samples (see data/README.md)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from provision.errors import ProvisionError
from provision.inventory import (
    dump_inventory,
    inventory_from_ssh_config,
    parse_ssh_config,
)

SAMPLES = Path(__file__).parent / "data" / "ssh_config"


def sample(name: str) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8")


def hostvars(inventory: dict[str, object], name: str) -> dict[str, object]:
    hosts = inventory["all"]["children"]["vagrant"]["hosts"]  # type: ignore[index]
    return hosts[name]  # type: ignore[no-any-return]


def test_virtualbox_sample() -> None:
    inventory = inventory_from_ssh_config(sample("vagrant-2.3.4-virtualbox.txt"))
    assert hostvars(inventory, "default") == {
        "ansible_host": "127.0.0.1",
        "ansible_port": 2222,
        "ansible_user": "vagrant",
        "ansible_ssh_private_key_file": (
            "/home/alice/project/.vagrant/machines/default/virtualbox/private_key"
        ),
        "ansible_ssh_common_args": (
            "-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no "
            "-o PasswordAuthentication=no -o IdentitiesOnly=yes"
        ),
    }


def test_quoted_key_path_with_space_and_second_key() -> None:
    (host,) = parse_ssh_config(sample("vagrant-2.3.4-libvirt-two-keys.txt"))
    assert host.hostname == "192.168.121.57"
    assert host.port == 22
    assert host.identity_files == (
        "/root/.vagrant.d/insecure_private_key",
        "/srv/my project/.vagrant/machines/default/libvirt/private_key",
    )
    args = shlex.split(
        str(
            hostvars(
                inventory_from_ssh_config(sample("vagrant-2.3.4-libvirt-two-keys.txt")), "default"
            )["ansible_ssh_common_args"]
        )
    )
    # the second key reaches ssh intact, as one argument
    assert args[-2:] == ["-i", "/srv/my project/.vagrant/machines/default/libvirt/private_key"]


def test_multi_machine_sample() -> None:
    hosts = parse_ssh_config(sample("vagrant-2.3.4-multi-machine.txt"))
    assert [(h.name, h.port) for h in hosts] == [("web", 2222), ("db", 2200)]
    inventory = inventory_from_ssh_config(sample("vagrant-2.3.4-multi-machine.txt"))
    assert hostvars(inventory, "db")["ansible_port"] == 2200


def test_proxy_command_is_one_ssh_argument() -> None:
    inventory = inventory_from_ssh_config(sample("vagrant-2.3.4-libvirt-proxycommand.txt"))
    args = shlex.split(str(hostvars(inventory, "default")["ansible_ssh_common_args"]))
    assert "ProxyCommand=ssh 'kvmhost' -l 'ops' -i '/home/alice/.ssh/id_ed25519' nc %h %p" in args
    assert "ForwardAgent=yes" in args
    # verify_host_key on: Vagrant printed no StrictHostKeyChecking, so none is added
    assert not any(a.startswith("StrictHostKeyChecking") for a in args)


def test_log_level_fatal_is_dropped() -> None:
    """LogLevel FATAL would hide the reason Ansible reports for an unreachable host."""
    for name in sorted(p.name for p in SAMPLES.glob("*.txt")):
        for hostvar in inventory_from_ssh_config(sample(name))["all"]["children"]["vagrant"][
            "hosts"
        ].values():
            assert "LogLevel" not in hostvar.get("ansible_ssh_common_args", ""), name


def test_newer_vagrant_options_pass_through() -> None:
    inventory = inventory_from_ssh_config(sample("vagrant-2.4-ssh-rsa-options.txt"))
    args = shlex.split(str(hostvars(inventory, "default")["ansible_ssh_common_args"]))
    assert "PubkeyAcceptedKeyTypes=+ssh-rsa" in args
    assert "HostKeyAlgorithms=+ssh-rsa" in args


def test_older_vagrant_preferred_authentications() -> None:
    inventory = inventory_from_ssh_config(sample("vagrant-2.2-preferred-authentications.txt"))
    args = shlex.split(str(hostvars(inventory, "default")["ansible_ssh_common_args"]))
    assert (
        "PreferredAuthentications=gssapi-keyex,gssapi-with-mic,publickey,keyboard-interactive"
        in args
    )


def test_key_equals_value_and_comments() -> None:
    hosts = parse_ssh_config(
        "# written by hand\nHost=box\n  hostname=10.0.0.5\n  PORT 2201\n  user  ops\n"
    )
    assert (hosts[0].name, hosts[0].hostname, hosts[0].port, hosts[0].user) == (
        "box",
        "10.0.0.5",
        2201,
        "ops",
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n",
        "HostName 127.0.0.1\n",
        "Host a\n  User vagrant\n",
        "Host a\n  HostName x\n  Port x\n",
    ],
    ids=["empty", "blank", "no-host", "no-hostname", "bad-port"],
)
def test_unusable_output_is_a_domain_error(text: str) -> None:
    with pytest.raises(ProvisionError):
        parse_ssh_config(text)


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.glob("*.txt")))
def test_ansible_reads_the_inventory(name: str, tmp_path: Path) -> None:
    """ansible-inventory itself parses what we write, with every variable intact."""
    inventory = inventory_from_ssh_config(sample(name))
    path = tmp_path / "inventory.yml"
    path.write_text(dump_inventory(inventory), encoding="utf-8")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(path), "--list"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    listed = json.loads(result.stdout)
    for host in parse_ssh_config(sample(name)):
        got = listed["_meta"]["hostvars"][host.name]
        assert got["ansible_host"] == host.hostname
        assert got["ansible_port"] == host.port
        assert got["ansible_user"] == host.user
        assert host.name in listed["vagrant"]["hosts"]

"""Malformed input, as a new user meets it: provision.toml, environment, flags, ``-e``,
inventories. Each must stop ``provision`` before anything runs with exit 2, exactly one line on
stderr naming the input and what it accepts, no traceback, and with ``--json`` exactly one JSON
document on stdout whose ``exit_code`` is 2.

The console script runs from a wheel of this checkout installed outside it (what
``pip install .`` gives a user, not the editable checkout): the role's contract and format rules
must ship in it. Nothing here contacts a host: inventories name 127.0.0.1 port 9, and every case
is refused before Ansible or Vagrant would start.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import venv
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Files the cases refer to, created in each case's working directory.
FILES: dict[str, str] = {
    "bad.ini": "[web\nhost ansible_port=abc =\n",
    "empty.ini": "",
    "good.yml": "all:\n  hosts:\n    web1:\n      ansible_host: 127.0.0.1\n      ansible_port: 9\n",
    "list.yml": "- docker_users\n",
    "channel.yml": "docker_apt_channel: nightly\n",
    "vars.yml": "docker_users: [ops]\n",
}
DIRS = ("emptydir",)


@dataclass(frozen=True)
class Case:
    id: str
    args: list[str]
    names: str  # the input, as the line must name it
    accepts: str  # what it accepts, as the line must say it
    toml: str | None = None
    env: dict[str, str] = field(default_factory=dict)


def toml(text: str, names: str, accepts: str, id: str) -> Case:
    return Case(id, ["status"], names, accepts, toml=text)


def env(name: str, value: str, accepts: str, id: str, names: str = "") -> Case:
    return Case(id, ["status"], names or name, accepts, env={name: value})


def apply(*extra: str, names: str, accepts: str, id: str, command: str = "apply") -> Case:
    return Case(id, [command, "-i", "good.yml", *extra], names, accepts)


CASES: list[Case] = [
    # --- provision.toml -----------------------------------------------------------------------
    toml("[machine\nmemory = 4096\n", "provision.toml", "TOML", "toml-syntax"),
    toml("[machine]\nmemory = 4096\nmemory = 2048\n", "provision.toml", "TOML", "toml-dup"),
    toml("[machin]\nmemory = 4096\n", "'machin'", "did you mean machine?", "toml-section"),
    toml("memory = 4096\n", "'memory'", "accepted: machine, docker, checks", "toml-top-level"),
    toml("[machine]\nmemroy = 4096\n", "machine.memroy", "machine.memory", "toml-key-typo"),
    toml("[machine]\ndisk = 20\n", "machine.disk", "did you mean machine.disk_gib?", "toml-disk"),
    toml('[machine]\nmemory = "4096"\n', "machine.memory", "an integer", "toml-memory-str"),
    toml("[machine]\nmemory = 512\n", "machine.memory", "at least 1024 MiB", "toml-memory-low"),
    toml("[machine]\nmemory =\n", "provision.toml", "TOML", "toml-missing-value"),
    toml("[machine]\nmemory = 4096.5\n", "machine.memory", "an integer", "toml-memory-float"),
    toml("[machine]\nmemory = true\n", "machine.memory", "an integer", "toml-memory-bool"),
    toml("[machine]\nmemory = -1\n", "machine.memory", "at least 1024", "toml-memory-neg"),
    toml("[machine]\nmemory = 1000000000\n", "machine.memory", "this host has", "toml-mem-host"),
    toml("[machine]\ncpus = 0\n", "machine.cpus", "at least 1", "toml-cpus-zero"),
    toml('[machine]\nports = "8888"\n', "machine.ports", "a list of strings", "toml-ports-str"),
    toml("[machine]\nports = [70000]\n", "machine.ports", "(1024-65535", "toml-ports-range"),
    toml('[machine]\ncpus = "2"\n', "machine.cpus", "an integer", "toml-cpus-str"),
    toml("[machine]\ncpus = 4096\n", "machine.cpus", "this host has", "toml-cpus-host"),
    toml('[machine]\ndisk_gib = "10GB"\n', "machine.disk_gib", "an integer", "toml-disk-unit"),
    toml('[machine]\nprovider = "VirtualBox"\n', "provider", "virtualbox, libvirt", "toml-case"),
    toml('[machine]\nhostname = "-web"\n', "machine.hostname", "letters", "toml-host-dash"),
    toml('[machine]\nbox = "ubuntu focal"\n', "machine.box", "box name", "toml-box-space"),
    toml("machine = 4096\n", "machine", "a table ([machine])", "toml-not-table"),
    toml('[checks]\nwalkthrough_image = ""\n', "walkthrough_image", "image name", "toml-image"),
    toml("[machine]\ndisk_gib = 99999\n", "machine.disk_gib", "5-2048 GiB", "toml-disk-big"),
    toml('[machine]\nprovider = "vbox"\n', "machine.provider", "virtualbox, libvirt", "toml-prov"),
    toml('[machine]\nhostname = "bad_name"\n', "machine.hostname", "letters, digits", "toml-host"),
    toml('[machine]\nlibvirt_driver = "xen"\n', "libvirt_driver", "kvm, qemu", "toml-driver"),
    toml('[docker]\nuserz = ["ops"]\n', "docker.userz", "did you mean docker.users?", "dk-typo"),
    toml('[docker]\ndocker_users = ["ops"]\n', "docker.docker_users", "docker.users", "dk-prefix"),
    toml("[docker]\nusers = {a = 1}\n", "docker.users", "a list of strings", "dk-users-table"),
    toml('[docker]\ndaemon_options = "x"\n', "docker.daemon_options", "a mapping", "dk-daemon"),
    toml('[docker]\napt_channel = "nightly"\n', "docker.apt_channel", "stable, test", "dk-chan"),
    toml('[docker]\nlive_restore = "maybe"\n', "docker.live_restore", "true or false", "dk-bool"),
    toml(
        '[docker]\napt_key_fingerprint = "ABCD"\n',
        "docker.apt_key_fingerprint",
        "40 hexadecimal digits",
        "dk-fingerprint",
    ),
    toml('[docker]\napt_architecture = "sparc"\n', "apt_architecture", "amd64, arm64", "dk-arch"),
    toml(
        '[docker]\nregistry_mirrors = ["not a url"]\n',
        "docker.registry_mirrors",
        "http:// or https:// mirror URL",
        "dk-mirror",
    ),
    toml(
        '[docker]\napt_repository_url = "not a url"\n',
        "docker.apt_repository_url",
        "http:// or https:// URL",
        "dk-repo-url",
    ),
    toml(
        '[docker]\napt_key_url = "ftp://keys.example/gpg"\n',
        "docker.apt_key_url",
        "http:// or https:// URL",
        "dk-key-url",
    ),
    toml(
        '[docker]\ninsecure_registries = ["http://registry.internal:5000"]\n',
        "docker.insecure_registries",
        "host[:port]",
        "dk-insecure",
    ),
    toml("[checks]\nimage = 1\n", "checks.image", "checks.walkthrough_image", "checks-key"),
    Case("config-empty", ["--config", "", "status"], "--config", "a settings file"),
    Case("config-missing", ["--config", "nope.toml", "status"], "nope.toml", "settings file"),
    # --- environment --------------------------------------------------------------------------
    env("PROVISION_DISK", "20", "did you mean PROVISION_DISK_GIB?", "env-disk-typo"),
    env("PROVISION_DISK_GB", "20", "did you mean PROVISION_DISK_GIB?", "env-disk-gb"),
    env("PROVISION_HOSTNAM", "web", "did you mean PROVISION_HOSTNAME?", "env-hostname-typo"),
    env("PROVISION_MEMORY", "lots", "an integer", "env-memory"),
    env("PROVISION_MEMORY", "512", "at least 1024 MiB", "env-memory-low"),
    env("PROVISION_PORTS", "8080:x", "HOST or HOST:GUEST", "env-ports"),
    env("PROVISION_DOCKER_CONTEXT", "a b", "not a docker context name", "env-context"),
    env("PROVISION_PROVIDER", "hyperv", "virtualbox, libvirt", "env-provider"),
    env("PROVISION_WALKTHROUGH_IMAGE", "", "an image name", "env-image"),
    env("PROVISION_NETWORK_URL", "download.docker.com", "http:// or https:// URL", "env-net-url"),
    env("PROVISION_DOCKER_FOO", "1", "accepted: PROVISION_DOCKER_STATE", "env-docker-unknown"),
    env("PROVISION_DOCKER_USRS", "ops", "did you mean PROVISION_DOCKER_USERS?", "env-dk-typo"),
    env("PROVISION_DOCKER_USERS", '{"a":1}', "a list of strings", "env-users-object"),
    env("PROVISION_DOCKER_USERS", '["ops"', "not valid JSON", "env-users-json"),
    env("PROVISION_DOCKER_LIVE_RESTORE", "maybe", "true or false", "env-bool"),
    env("PROVISION_DOCKER_DAEMON_OPTIONS", "[1]", "a mapping", "env-daemon-list"),
    env("PROVISION_DOCKER_STATE", "installed", "present, absent", "env-state"),
    env("PROVISION_DOCKER_APT_KEY_FINGERPRINT", "ABCD", "40 hexadecimal", "env-fingerprint"),
    env("PROVISION_DOCKER_REGISTRY_MIRRORS", "not-a-url", "mirror URL", "env-mirror"),
    env("PROVISION_DOCKER_APT_ARCHITECTURE", "sparc", "amd64, arm64", "env-arch"),
    # --- flags --------------------------------------------------------------------------------
    Case("no-command", [], "COMMAND", "provision --help"),
    Case("unknown-command", ["bogus"], "'bogus'", "choose from 'up'"),
    Case("unknown-flag", ["up", "--ram", "4096"], "--ram", "provision --help"),
    Case("flag-without-value", ["apply", "-i"], "-i/--inventory", "expected one argument"),
    Case("apply-without-inventory", ["apply"], "-i/--inventory", "required"),
    Case("flag-memory", ["up", "--memory", "8G"], "--memory", "an integer"),
    Case("flag-disk", ["up", "--disk", "0"], "--disk", "5-2048 GiB"),
    Case("flag-provider", ["up", "--provider", "xen"], "--provider", "virtualbox, libvirt"),
    Case("flag-cpus", ["up", "--cpus", "many"], "--cpus", "an integer"),
    Case("flag-ports", ["up", "--ports", "8080:80,8080"], "--ports", "forwarded twice"),
    Case("flag-ports-low", ["up", "--ports", "80"], "--ports", "(1024-65535"),
    Case("flag-context", ["up", "--docker-context", "default"], "--docker-context", "own context"),
    Case("destroy-no-terminal", ["destroy"], "destroy", "--force"),
    # --- -e -----------------------------------------------------------------------------------
    apply(
        "-e",
        "docker_state=installed",
        names="-e docker_state",
        accepts="present, absent",
        id="e-state",
    ),
    apply(
        "-e",
        "docker_apt_key_fingerprint=ABCD",
        names="-e docker_apt_key_fingerprint",
        accepts="40 hexadecimal digits",
        id="e-fingerprint",
    ),
    apply(
        "-e",
        "docker_daemon_options=x",
        names="-e docker_daemon_options",
        accepts="a mapping",
        id="e-daemon",
    ),
    apply(
        "-e",
        "docker_bogus=1",
        names="-e docker_bogus",
        accepts="accepted: docker_state",
        id="e-unknown",
    ),
    apply(
        "-e",
        "docker_userz=ops",
        names="-e docker_userz",
        accepts="did you mean docker_users?",
        id="e-typo",
    ),
    apply(
        "-e",
        'users=["a"]',
        names="-e users",
        accepts="did you mean docker_users?",
        id="e-unprefixed",
    ),
    apply(
        "-e",
        'docker_users=["a"]',
        names="-e docker_users",
        accepts="docker_users=a,b",
        id="e-list-as-text",
    ),
    apply(
        "-e",
        "docker_live_restore=maybe",
        names="-e docker_live_restore",
        accepts="true or false",
        id="e-bool",
    ),
    apply(
        "-e",
        "docker_registry_mirrors=not-a-url",
        names="-e docker_registry_mirrors",
        accepts="mirror URL",
        id="e-mirror",
    ),
    apply(
        "-e",
        '{"docker_daemon_options": {"hosts": ["tcp://0.0.0.0:2375"]}}',
        names="docker_daemon_options = {",
        accepts="needs TLS with client verification",
        id="e-open-listener",
    ),
    apply(
        "-e",
        '{"docker_insecure_registries": ["0.0.0.0/0"]}',
        names="docker_insecure_registries = [",
        accepts="turns off TLS verification for every registry",
        id="e-insecure-everything",
    ),
    apply(
        "-e",
        '{"docker_daemon_options": {"registry-mirrors": ["https://me:s3cret@mirror.internal"]}}',
        names="docker_daemon_options = {",
        accepts="without a user name or password",
        id="e-mirror-credentials-in-options",
    ),
    apply("-e", "novalue", names="-e novalue", accepts="KEY=VALUE", id="e-no-equals"),
    apply(
        "-e",
        "@missing.yml",
        names="-e @missing.yml",
        accepts="YAML or JSON file",
        id="e-missing-file",
    ),
    apply("-e", "@list.yml", names="-e @list.yml", accepts="mapping", id="e-file-list"),
    apply(
        "-e",
        "@channel.yml",
        names="-e @channel.yml: docker_apt_channel",
        accepts="stable, test",
        id="e-file-value",
    ),
    apply("-e", "./vars.yml", names="-e ./vars.yml", accepts="-e @./vars.yml", id="e-no-at"),
    apply("-e", "{oops", names="-e {oops", accepts="YAML", id="e-bad-yaml"),
    apply(
        "-e",
        "docker_state=installed",
        names="-e docker_state",
        accepts="present, absent",
        id="verify-e-state",
        command="verify",
    ),
    # --- inventories --------------------------------------------------------------------------
    Case("inv-broken", ["apply", "-i", "bad.ini", "--check"], "-i bad.ini", "INI, YAML or JSON"),
    Case("inv-empty-file", ["apply", "-i", "empty.ini"], "-i empty.ini", "names at least one host"),
    Case("inv-empty-dir", ["apply", "-i", "emptydir"], "-i emptydir", "at least one host"),
    Case("inv-missing", ["apply", "-i", "nope.ini"], "nope.ini", "an Ansible inventory"),
    Case("inv-limit", ["apply", "-i", "good.yml", "--limit", "db"], "--limit db", "hosts: web1"),
    Case("verify-inv-broken", ["verify", "-i", "bad.ini"], "-i bad.ini", "INI, YAML or JSON"),
    Case("verify-inv-empty", ["verify", "-i", "empty.ini"], "-i empty.ini", "at least one host"),
    Case("verify-inv-limit", ["verify", "-i", "good.yml", "--limit", "x"], "--limit x", "web1"),
]


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Installed:
    """A wheel of this checkout installed in a virtualenv of its own."""

    script: Path
    site: Path

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        """The environment of a user's shell, without PROVISION_* variables of ours."""
        environment = {k: v for k, v in os.environ.items() if not k.startswith("PROVISION_")}
        environment.update(extra)
        return environment


@pytest.fixture(scope="session")
def installed() -> Iterator[Installed]:
    """``provision`` from a wheel of this checkout, in a virtualenv of its own whose
    dependencies are this one's (a ``.pth`` line: this environment's own ``.pth`` files, such as
    the editable install's, are not read from there). pip installs with ``--python`` into that
    virtualenv and leaves this one alone."""
    where = Path(tempfile.mkdtemp(prefix="provision-wheel-"))
    try:
        pip = [sys.executable, "-m", "pip"]
        built = subprocess.run(
            [*pip, "wheel", "-q", "--no-deps", "-w", str(where), str(REPO)],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        assert built.returncode == 0, built.stderr
        (wheel,) = where.glob("provision-*.whl")
        home = where / "venv"
        venv.create(home, with_pip=False)
        (site,) = home.glob("lib/python*/site-packages")
        (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        python = home / "bin" / "python"
        installed = subprocess.run(
            [*pip, "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        assert installed.returncode == 0, installed.stderr
        yield Installed(script=home / "bin" / "provision", site=site)
    finally:
        shutil.rmtree(where, ignore_errors=True)


def run(installed: Installed, args: list[str], case: Case, workdir: Path) -> Outcome:
    proc = subprocess.run(
        [str(installed.script), *args],
        cwd=workdir,
        env=installed.env(case.env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="module")
def outcomes(
    installed: Installed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[tuple[str, bool], Outcome]]:
    """Every case, plain and with ``--json``, run a few at a time."""
    jobs: dict[tuple[str, bool], tuple[Installed, list[str], Case, Path]] = {}
    for case in CASES:
        workdir = tmp_path_factory.mktemp(case.id)
        for name, text in FILES.items():
            (workdir / name).write_text(text, encoding="utf-8")
        for name in DIRS:
            (workdir / name).mkdir()
        if case.toml is not None:
            (workdir / "provision.toml").write_text(case.toml, encoding="utf-8")
        for as_json in (False, True):
            args = ["--json", *case.args] if as_json else case.args
            jobs[(case.id, as_json)] = (installed, args, case, workdir)
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {key: pool.submit(run, *job) for key, job in jobs.items()}
        yield {key: future.result() for key, future in futures.items()}


def test_the_wheel_is_what_runs(installed: Installed) -> None:
    code = "import provision; print(provision.__file__)"
    shown = subprocess.run(
        [str(installed.script.parent / "python"), "-c", code],
        cwd=installed.site,  # not this checkout, which `python -c` would put first
        env=installed.env({}),
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(shown.stdout.strip()).is_relative_to(installed.site)


def test_at_least_forty_cases() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_one_line_exit_2(case: Case, outcomes: dict[tuple[str, bool], Outcome]) -> None:
    plain = outcomes[(case.id, False)]
    assert plain.code == 2, plain.stderr
    assert "Traceback" not in plain.stderr + plain.stdout
    lines = plain.stderr.splitlines()
    assert len(lines) == 1, plain.stderr
    (line,) = lines
    assert line.startswith("provision: error: ")
    assert case.names in line
    assert case.accepts in line
    assert "s3cret" not in line  # a credential in a refused value is not shown back
    assert plain.stdout == ""


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_one_json_document(case: Case, outcomes: dict[tuple[str, bool], Outcome]) -> None:
    as_json = outcomes[(case.id, True)]
    assert as_json.code == 2, as_json.stderr
    assert "Traceback" not in as_json.stderr + as_json.stdout
    document = json.loads(as_json.stdout)  # exactly one document: json.loads refuses more
    assert isinstance(document, dict)
    assert document["exit_code"] == 2
    assert document["ok"] is False
    assert case.names in document["error"]["message"]
    assert len(as_json.stderr.splitlines()) == 1

"""Settings: ``provision.toml`` (or ``--config``), then ``PROVISION_*`` variables, then flags.

Every value is validated where it comes from, before anything runs, and a bad one raises
:class:`~provision.errors.SettingsError` (exit 2) with one line naming the source, the key and
what is accepted. An unknown key or ``PROVISION_*`` variable is refused too, with the name it
probably meant.

Sections:

``[machine]``
    The Vagrant VM: ``box`` (default per provider), ``provider``, ``memory`` (MiB), ``cpus``,
    ``disk_gib``, ``hostname``, ``libvirt_driver``, ``ports`` (forwarded to 127.0.0.1). Handed to
    the ``Vagrantfile`` as ``PROVISION_*`` variables. ``docker_context``: the name of the Docker
    context ``provision up`` gives the laptop's docker CLI ("" for none). ``share``: a directory
    of this machine mounted at the same path in the VM (default the working directory, "" for
    none), resolved to an absolute path here.
``[docker]``
    Anything the ``docker`` role takes, without its ``docker_`` prefix (``users``,
    ``registry_mirrors``, ``daemon_options``, ``apt_repository_url``, ...), validated by
    :mod:`provision.role_options` against the role's own contract.
``[checks]``
    ``walkthrough_image``: the image the ``verify`` walkthrough pulls, runs and removes.
    ``network_url``: what a container on the default bridge must fetch in the host checks.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from provision.checks.expectations import DEFAULT_NETWORK_URL
from provision.errors import SettingsError
from provision.role_options import ROLE_PREFIX, RoleContract, did_you_mean, docker_formats, show

CONFIG_FILE_NAME: Final = "provision.toml"
PROVIDERS: Final = ("virtualbox", "libvirt")
# A focal box published for each provider (ubuntu/focal64 exists for VirtualBox only).
DEFAULT_BOXES: Final = {"virtualbox": "ubuntu/focal64", "libvirt": "generic/ubuntu2004"}
LIBVIRT_DRIVERS: Final = ("kvm", "qemu")
MIN_MEMORY_MIB: Final = 1024
MIN_DISK_GIB: Final = 5
MAX_DISK_GIB: Final = 2048
ENV_PREFIX: Final = "PROVISION_"
DOCKER_ENV_PREFIX: Final = "PROVISION_DOCKER_"
# PROVISION_* variables that are not settings: read elsewhere in provision (the data directory
# override, the host checks' expectations) or by this repository's test bed and tests.
OTHER_ENV: Final = frozenset({"PROVISION_DATA_DIR", "PROVISION_CHECKS_EXPECT"})
OTHER_ENV_PREFIXES: Final = ("PROVISION_TESTBED_", "PROVISION_TEST_")

# Host ports below this need root on the laptop (Vagrant would ask for sudo).
MIN_HOST_PORT: Final = 1024
MAX_PORT: Final = 65535
# Guest paths a share must not cover or sit in: the VM's system and its login user's home.
GUEST_RESERVED: Final = (
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/root",
    "/run", "/sbin", "/snap", "/sys", "/usr", "/var", "/home/vagrant",
)  # fmt: skip
# The docker CLI's rule for context names; "default" is its own, built-in context.
_CONTEXT_NAME_RE: Final = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$")

_HOSTNAME_RE: Final = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$",
    re.IGNORECASE,
)

# --------------------------------------------------------------------------------------------
# The host this runs on (injectable so tests do not depend on the machine)


@dataclass(frozen=True)
class HostLimits:
    """What the host can give a VM."""

    memory_mib: int
    cpus: int

    @classmethod
    def detect(cls) -> HostLimits:
        try:
            total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):  # pragma: no cover - exotic platforms
            total = 0
        memory_mib = total // (1024 * 1024) if total > 0 else 1 << 30
        return cls(memory_mib=memory_mib, cpus=os.cpu_count() or 1)


# --------------------------------------------------------------------------------------------
# [machine] and [checks]: provision's own keys


@dataclass(frozen=True)
class FieldSpec:
    """One ``[machine]`` or ``[checks]`` key: its type, accepted values and variable."""

    name: str
    kind: str  # str | int | list (of strings or integers; in text: comma-separated)
    env: str
    description: str = ""
    choices: tuple[str, ...] = ()
    check: Callable[[Any, HostLimits], str | None] | None = None
    convert: Callable[[Any], Any] | None = None  # a checked value → the setting's form

    def accepted(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.kind == "list":
            return "a list of strings"
        return "an integer" if self.kind == "int" else "a string"

    def type_ok(self, value: Any) -> bool:
        if self.kind == "int":
            return isinstance(value, int) and not isinstance(value, bool)
        if self.kind == "list":
            return isinstance(value, list) and all(
                isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool))
                for v in value
            )
        return isinstance(value, str)

    def from_text(self, text: str, *, where: str) -> Any:
        if self.kind == "list":
            return [item.strip() for item in text.split(",") if item.strip()]
        if self.kind != "int":
            return text
        try:
            return int(text.strip(), 10)
        except ValueError:
            raise SettingsError(f"{where} = {show(text)}: must be {self.accepted()}") from None

    def validate(self, value: Any, *, where: str, host: HostLimits) -> Any:
        if not self.type_ok(value) or (self.choices and value not in self.choices):
            raise SettingsError(f"{where} = {show(value)}: must be {self.accepted()}")
        problem = self.check(value, host) if self.check is not None else None
        if problem:
            raise SettingsError(f"{where}: {problem}")
        return self.convert(value) if self.convert is not None else value


def _check_memory(value: Any, host: HostLimits) -> str | None:
    if value < MIN_MEMORY_MIB:
        return f"{value} MiB is too little: must be at least {MIN_MEMORY_MIB} MiB"
    if value > host.memory_mib:
        return f"{value} MiB is more than this host has ({host.memory_mib} MiB)"
    return None


def _check_cpus(value: Any, host: HostLimits) -> str | None:
    if value < 1:
        return f"{value} must be at least 1"
    if value > host.cpus:
        return f"{value} is more than this host has ({host.cpus} CPUs)"
    return None


def _check_disk(value: Any, _host: HostLimits) -> str | None:
    accepted = f"accepted: {MIN_DISK_GIB}-{MAX_DISK_GIB} GiB"
    if value < MIN_DISK_GIB:
        return f"{value} GiB is too small: Ubuntu and Docker need more ({accepted})"
    if value > MAX_DISK_GIB:
        return f"{value} GiB is too large ({accepted})"
    return None


def _check_hostname(value: Any, _host: HostLimits) -> str | None:
    if not _HOSTNAME_RE.match(value):
        return (
            f"{value!r} is not a valid host name "
            "(letters, digits and hyphens, dot-separated labels of at most 63 characters)"
        )
    return None


def _check_box(value: Any, _host: HostLimits) -> str | None:
    if not value or any(ch.isspace() for ch in value):
        return f"{value!r} is not a box name (e.g. ubuntu/focal64)"
    return None


def _check_image(value: Any, _host: HostLimits) -> str | None:
    if not value or any(ch.isspace() for ch in value):
        return f"{value!r} is not an image name (e.g. busybox)"
    return None


def _check_url(value: Any, _host: HostLimits) -> str | None:
    problem = docker_formats().url_problem(value)  # the one URL rule, shared with the role
    return f"{value!r} {problem}" if problem else None


def parse_port(item: str | int) -> tuple[int, int] | str:
    """``"8888"``, ``8888`` or ``"8080:80"`` (host:guest, TCP) → (host, guest), or the problem."""
    text = str(item).strip()
    parts = text.split(":")
    if len(parts) > 2 or not all(p.isdigit() and p.isascii() for p in parts):
        return f'{show(item)} is not a port: give HOST or HOST:GUEST (e.g. "8080:80")'
    numbers = [int(p, 10) for p in parts]
    host, guest = numbers[0], numbers[-1]
    if not MIN_HOST_PORT <= host <= MAX_PORT:
        return (
            f"{show(item)}: host port {host} is out of range ({MIN_HOST_PORT}-{MAX_PORT}; "
            "lower ports need root on this machine)"
        )
    if not 1 <= guest <= MAX_PORT:
        return f"{show(item)}: guest port {guest} is out of range (1-{MAX_PORT})"
    return host, guest


def normalize_ports(value: list[str | int]) -> tuple[str, ...]:
    """Valid ports as ``HOST:GUEST`` strings (see :func:`parse_port`)."""
    pairs = [parse_port(item) for item in value]
    return tuple(f"{p[0]}:{p[1]}" for p in pairs if isinstance(p, tuple))


def _check_ports(value: Any, _host: HostLimits) -> str | None:
    seen: set[int] = set()
    for item in value:
        parsed = parse_port(item)
        if isinstance(parsed, str):
            return parsed
        if parsed[0] in seen:
            return f"host port {parsed[0]} is forwarded twice"
        seen.add(parsed[0])
    return None


def _check_context(value: Any, _host: HostLimits) -> str | None:
    if value == "default":
        return "'default' is the docker CLI's own context: choose another name (or \"\" for none)"
    if value and not _CONTEXT_NAME_RE.match(value):
        return (
            f"{value!r} is not a docker context name (letters, digits and _.+-, starting with a "
            'letter or digit; "" for none)'
        )
    return None


MACHINE_FIELDS: Final[tuple[FieldSpec, ...]] = (
    FieldSpec("box", "str", "PROVISION_BOX", "Vagrant box", check=_check_box),
    FieldSpec("provider", "str", "PROVISION_PROVIDER", "Vagrant provider", choices=PROVIDERS),
    FieldSpec("memory", "int", "PROVISION_MEMORY", "RAM in MiB", check=_check_memory),
    FieldSpec("cpus", "int", "PROVISION_CPUS", "virtual CPUs", check=_check_cpus),
    FieldSpec("disk_gib", "int", "PROVISION_DISK_GIB", "primary disk in GiB", check=_check_disk),
    FieldSpec("hostname", "str", "PROVISION_HOSTNAME", "guest host name", check=_check_hostname),
    FieldSpec(
        "libvirt_driver",
        "str",
        "PROVISION_LIBVIRT_DRIVER",
        "libvirt domain type (kvm, or qemu for software emulation)",
        choices=LIBVIRT_DRIVERS,
    ),
    FieldSpec(
        "ports",
        "list",
        "PROVISION_PORTS",
        "TCP ports forwarded from 127.0.0.1 on this machine to the VM: HOST or HOST:GUEST",
        check=_check_ports,
        convert=normalize_ports,
    ),
    FieldSpec(
        "docker_context",
        "str",
        "PROVISION_DOCKER_CONTEXT",
        'docker context provision up creates for the VM\'s engine ("" for none)',
        check=_check_context,
    ),
    FieldSpec(
        "share",
        "str",
        "PROVISION_SHARE",
        'directory mounted read-write at the same path in the VM (default "."; "" for none)',
    ),
)

CHECKS_FIELDS: Final[tuple[FieldSpec, ...]] = (
    FieldSpec(
        "walkthrough_image",
        "str",
        "PROVISION_WALKTHROUGH_IMAGE",
        "image the verify walkthrough pulls, runs and removes (it must stay up running "
        "`sleep`, e.g. busybox)",
        check=_check_image,
    ),
    FieldSpec(
        "network_url",
        "str",
        "PROVISION_NETWORK_URL",
        "URL a container on the default bridge fetches to prove container networking",
        check=_check_url,
    ),
)

# The command-line flags of `provision up` for [machine] keys.
MACHINE_FLAGS: Final = {
    "box": "--box",
    "provider": "--provider",
    "memory": "--memory",
    "cpus": "--cpus",
    "disk_gib": "--disk",
    "hostname": "--hostname",
    "ports": "--ports",
    "docker_context": "--docker-context",
    "share": "--share",
}


@dataclass(frozen=True)
class MachineSettings:
    box: str = ""  # empty: the provider's default box (DEFAULT_BOXES)
    provider: str = "virtualbox"
    memory: int = 8192
    cpus: int = 2
    disk_gib: int = 10
    hostname: str = "provision"
    libvirt_driver: str = "kvm"
    ports: tuple[str, ...] = ()  # HOST:GUEST, normalized
    docker_context: str = "provision"
    share: str = ""  # absolute (load_settings resolves "."), "" for none

    def __post_init__(self) -> None:
        if not self.box:
            object.__setattr__(self, "box", DEFAULT_BOXES[self.provider])

    def vagrant_env(self) -> dict[str, str]:
        """The ``PROVISION_*`` variables the ``Vagrantfile`` reads."""
        env = {spec.env: str(getattr(self, spec.name)) for spec in MACHINE_FIELDS}
        env["PROVISION_PORTS"] = ",".join(self.ports)
        del env["PROVISION_DOCKER_CONTEXT"]  # the laptop's docker CLI's, not the VM's
        return env

    def forwarded_ports(self) -> list[tuple[int, int]]:
        """``ports`` as (host, guest) pairs."""
        return [(int(h), int(g)) for h, g in (p.split(":") for p in self.ports)]


@dataclass(frozen=True)
class ChecksSettings:
    walkthrough_image: str = "busybox"
    network_url: str = DEFAULT_NETWORK_URL


@dataclass(frozen=True)
class Settings:
    machine: MachineSettings = field(default_factory=MachineSettings)
    # The role's variables (docker_*), validated and converted by the role's contract.
    docker: Mapping[str, Any] = field(default_factory=dict)
    checks: ChecksSettings = field(default_factory=ChecksSettings)
    config_file: Path | None = None

    def role_vars(self) -> dict[str, Any]:
        """The ``[docker]`` settings and ``PROVISION_DOCKER_*`` as the role's variables."""
        return dict(self.docker)


# --------------------------------------------------------------------------------------------
# Loading

_SECTIONS: Final = ("machine", "docker", "checks")


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a TOML settings file (standard library parser)."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise SettingsError(f"{path}: settings file not found") from None
    except IsADirectoryError:
        raise SettingsError(f"{path}: is a directory, not a settings file") from None
    except PermissionError:
        raise SettingsError(f"{path}: permission denied") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{path}: not a UTF-8 text file") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: invalid TOML: {exc}") from None


def _unknown(what: str, name: str, candidates: list[str], prefix: str = "") -> SettingsError:
    guess = did_you_mean(name, candidates, prefix=prefix)
    hint = f"did you mean {guess}?" if guess else "accepted: " + ", ".join(candidates)
    return SettingsError(f"{what} ({hint})")


def _table(
    table: Mapping[str, Any],
    fields: tuple[FieldSpec, ...],
    *,
    section: str,
    source: str,
    host: HostLimits,
) -> dict[str, Any]:
    specs = {spec.name: spec for spec in fields}
    values: dict[str, Any] = {}
    for key, value in table.items():
        spec = specs.get(key)
        if spec is None:
            names = [f"{section}.{n}" for n in specs]
            raise _unknown(
                f"{source}: unknown key {section}.{key}", f"{section}.{key}", names, f"{section}."
            )
        values[key] = spec.validate(value, where=f"{source}: {section}.{key}", host=host)
    return values


def _environment(
    env: Mapping[str, str], fields: tuple[FieldSpec, ...], *, host: HostLimits
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for spec in fields:
        if spec.env in env:
            value = spec.from_text(env[spec.env], where=spec.env)
            values[spec.name] = spec.validate(value, where=spec.env, host=host)
    return values


def check_environment_names(env: Mapping[str, str]) -> None:
    """Refuse a ``PROVISION_*`` variable that provision does not know (a typo would be ignored
    silently otherwise). ``PROVISION_DOCKER_*`` names are the role's: checked with its options."""
    known = sorted(spec.env for spec in (*MACHINE_FIELDS, *CHECKS_FIELDS))
    for name in sorted(env):
        if (
            not name.startswith(ENV_PREFIX)
            or name in known
            or name.startswith(DOCKER_ENV_PREFIX)
            or name in OTHER_ENV
            or name.startswith(OTHER_ENV_PREFIXES)
        ):
            continue
        raise _unknown(f"{name}: unknown variable", name, known, ENV_PREFIX)


def _docker_env_name(option: str) -> str:
    return DOCKER_ENV_PREFIX + option.removeprefix(ROLE_PREFIX).upper()


def _docker(
    table: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    source: str,
    contract: Callable[[], RoleContract],
) -> dict[str, Any]:
    """``[docker]`` keys, then ``PROVISION_DOCKER_*`` over them, as role variables."""
    machine_env = {spec.env for spec in MACHINE_FIELDS}
    names = sorted(n for n in env if n.startswith(DOCKER_ENV_PREFIX) and n not in machine_env)
    if not table and not names:
        return {}
    role = contract()
    values: dict[str, Any] = {}
    for key, value in table.items():
        option = ROLE_PREFIX + key
        where = f"{source}: docker.{key}"
        if option not in role.options:
            role.unknown(option, where=where, spelled=lambda n: "docker." + n[len(ROLE_PREFIX) :])
        values[option] = role.validate(option, value, where=where)
    for name in names:
        option = ROLE_PREFIX + name[len(DOCKER_ENV_PREFIX) :].lower()
        if option not in role.options:
            role.unknown(option, where=name, spelled=_docker_env_name)
        text = env[name]
        value = role.from_text(option, text, where=name)
        values[option] = role.validate(option, value, where=name, shown=show(text))
    return values


def resolve_share(value: str, *, cwd: Path, where: str, strict: bool = True) -> str:
    """``share`` as an absolute directory ("" stays ""), or exit 2 naming where it came from.
    Not ``strict`` (every command but ``up``): a share that is gone does not stop ``destroy``."""
    if not value.strip():
        return ""
    path = (cwd / Path(value).expanduser()).resolve()
    if not strict:
        return str(path)
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist"
        raise SettingsError(
            f'{where} = {show(value)}: {path} {what} (a directory to mount in the VM, "" for none)'
        )
    text = str(path)
    for reserved in GUEST_RESERVED:
        inside = text.startswith(reserved + "/") or reserved.startswith(text + "/")
        if text in ("/", reserved) or inside:
            raise SettingsError(
                f"{where} = {show(value)}: {path} clashes with the VM's own {reserved} "
                '(share a project directory, or "" for none)'
            )
    return text


def load_settings(
    *,
    config: str | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, str | None] | None = None,
    host: HostLimits | None = None,
    contract: Callable[[], RoleContract] | None = None,
    strict_share: bool = True,
) -> Settings:
    """Build validated settings: defaults < file < ``PROVISION_*`` < flags.

    ``config`` is ``--config`` as given (``None``: ./provision.toml when present). ``flags``
    maps ``[machine]`` keys to the text given on the command line (``None`` = unset).
    ``contract`` loads the role's contract, only when ``[docker]`` settings are present.
    """
    env = os.environ if env is None else env
    host = host or HostLimits.detect()
    cwd = cwd or Path.cwd()
    check_environment_names(env)

    if config is not None and not config.strip():
        raise SettingsError(
            f"--config {show(config)}: empty; give a settings file (e.g. --config provision.toml)"
        )
    path: Path | None = Path(config).expanduser() if config is not None else None
    if path is None and (cwd / CONFIG_FILE_NAME).is_file():
        path = cwd / CONFIG_FILE_NAME
    data: dict[str, Any] = read_config_file(path) if path is not None else {}
    source = str(config) if config is not None else CONFIG_FILE_NAME

    for key, value in data.items():
        if key not in _SECTIONS:
            what = "section" if isinstance(value, dict) else "top-level key"
            raise _unknown(f"{source}: unknown {what} {key!r}", key, list(_SECTIONS))
        if not isinstance(value, dict):
            raise SettingsError(f"{source}: {key} must be a table ([{key}]), not a value")

    machine = _table(
        data.get("machine", {}), MACHINE_FIELDS, section="machine", source=source, host=host
    )
    machine.update(_environment(env, MACHINE_FIELDS, host=host))
    specs = {spec.name: spec for spec in MACHINE_FIELDS}
    share_where = f"{source}: machine.share"
    if "PROVISION_SHARE" in env:
        share_where = "PROVISION_SHARE"
    for key, text in (flags or {}).items():
        if text is not None:
            flag = MACHINE_FLAGS[key]
            value = specs[key].from_text(text, where=flag)
            machine[key] = specs[key].validate(value, where=flag, host=host)
            share_where = flag if key == "share" else share_where
    machine["share"] = resolve_share(
        machine.get("share", "."), cwd=cwd, where=share_where, strict=strict_share
    )

    checks = _table(
        data.get("checks", {}), CHECKS_FIELDS, section="checks", source=source, host=host
    )
    checks.update(_environment(env, CHECKS_FIELDS, host=host))

    docker = _docker(
        data.get("docker", {}), env, source=source, contract=contract or RoleContract.load
    )
    return Settings(
        machine=MachineSettings(**machine),
        docker=docker,
        checks=ChecksSettings(**checks),
        config_file=path,
    )

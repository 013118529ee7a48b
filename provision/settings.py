"""Settings: ``provision.toml`` (or ``--config``), then ``PROVISION_*`` variables, then flags.

Every value is validated where it comes from, before anything runs, and a bad one raises
:class:`~provision.errors.SettingsError` (exit 2) with one line naming the source, the key and
what is accepted.

Sections:

``[machine]``
    The Vagrant VM: ``box``, ``provider``, ``memory`` (MiB), ``cpus``, ``disk`` (GB),
    ``hostname``, ``libvirt_driver``. Handed to the ``Vagrantfile`` as ``PROVISION_*`` variables.
``[docker]``
    Anything the ``docker`` role takes, without its ``docker_`` prefix (``users``,
    ``registry_mirrors``, ``daemon_options``, ``apt_repository_url``, ...). The accepted keys,
    types and choices are read from the role's own contract, ``meta/argument_specs.yml``.
``[checks]``
    ``walkthrough_image``: the image the ``verify`` walkthrough pulls, runs and removes.
    ``network_url``: what a container on the default bridge must fetch in the host checks.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from provision.checks.expectations import DEFAULT_NETWORK_URL
from provision.errors import SettingsError
from provision.role_options import load_ansible_yaml

CONFIG_FILE_NAME: Final = "provision.toml"
PROVIDERS: Final = ("virtualbox", "libvirt")
LIBVIRT_DRIVERS: Final = ("kvm", "qemu")
MIN_MEMORY_MIB: Final = 1024
MIN_DISK_GB: Final = 5
MAX_DISK_GB: Final = 2048
ROLE_NAME: Final = "docker"
ROLE_PREFIX: Final = "docker_"

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
# Field specifications


@dataclass(frozen=True)
class FieldSpec:
    """One settings key: its type, accepted values and environment variable."""

    name: str
    kind: str  # str | int | float | bool | list | dict | path | raw
    env: str
    description: str = ""
    elements: str | None = None
    choices: tuple[Any, ...] = ()
    check: Callable[[Any, HostLimits], str | None] | None = None

    def describe_type(self) -> str:
        if self.choices:
            return "one of " + ", ".join(str(c) for c in self.choices)
        names = {
            "str": "a string",
            "path": "a string (a path)",
            "int": "an integer",
            "float": "a number",
            "bool": "true or false",
            "dict": "a table of options",
        }
        if self.kind == "list":
            plural = {
                "str": "strings",
                "path": "strings",
                "int": "integers",
                "float": "numbers",
                "bool": "booleans",
                "dict": "tables",
            }
            return f"a list of {plural[self.elements]}" if self.elements in plural else "a list"
        return names.get(self.kind, "any value")


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
    if value < MIN_DISK_GB:
        return (
            f"{value} GB is too small: Ubuntu and Docker need at least {MIN_DISK_GB} GB "
            f"(accepted: {MIN_DISK_GB}-{MAX_DISK_GB})"
        )
    if value > MAX_DISK_GB:
        return f"{value} GB is too large (accepted: {MIN_DISK_GB}-{MAX_DISK_GB})"
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
    if not re.match(r"^https?://[^\s/]+", value):
        return f"{value!r} is not an http:// or https:// URL"
    return None


MACHINE_FIELDS: Final[tuple[FieldSpec, ...]] = (
    FieldSpec("box", "str", "PROVISION_BOX", "Vagrant box", check=_check_box),
    FieldSpec("provider", "str", "PROVISION_PROVIDER", "Vagrant provider", choices=PROVIDERS),
    FieldSpec("memory", "int", "PROVISION_MEMORY", "RAM in MiB", check=_check_memory),
    FieldSpec("cpus", "int", "PROVISION_CPUS", "virtual CPUs", check=_check_cpus),
    FieldSpec("disk", "int", "PROVISION_DISK_GB", "primary disk in GB", check=_check_disk),
    FieldSpec("hostname", "str", "PROVISION_HOSTNAME", "guest host name", check=_check_hostname),
    FieldSpec(
        "libvirt_driver",
        "str",
        "PROVISION_LIBVIRT_DRIVER",
        "libvirt domain type (kvm, or qemu for software emulation)",
        choices=LIBVIRT_DRIVERS,
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


@dataclass(frozen=True)
class MachineSettings:
    box: str = "ubuntu/focal64"
    provider: str = "virtualbox"
    memory: int = 8192
    cpus: int = 2
    disk: int = 10
    hostname: str = "provision"
    libvirt_driver: str = "kvm"

    def vagrant_env(self) -> dict[str, str]:
        """The ``PROVISION_*`` variables the ``Vagrantfile`` reads."""
        return {spec.env: str(getattr(self, spec.name)) for spec in MACHINE_FIELDS}


@dataclass(frozen=True)
class ChecksSettings:
    walkthrough_image: str = "busybox"
    network_url: str = DEFAULT_NETWORK_URL


@dataclass(frozen=True)
class Settings:
    machine: MachineSettings = field(default_factory=MachineSettings)
    docker: Mapping[str, Any] = field(default_factory=dict)
    checks: ChecksSettings = field(default_factory=ChecksSettings)
    config_file: Path | None = None

    def role_vars(self) -> dict[str, Any]:
        """The ``[docker]`` settings as the role's variables (``docker_*``)."""
        return {ROLE_PREFIX + key: value for key, value in self.docker.items()}


# --------------------------------------------------------------------------------------------
# The role's contract


@dataclass(frozen=True)
class RoleSpec:
    """The options the docker role accepts, read from its ``meta/argument_specs.yml``."""

    fields: Mapping[str, FieldSpec]
    defaults: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_role_dir(cls, role_dir: Path) -> RoleSpec:
        spec_file = role_dir / "meta" / "argument_specs.yml"
        data = load_ansible_yaml(spec_file)
        options = (((data or {}).get("argument_specs") or {}).get("main") or {}).get("options")
        defaults: dict[str, Any] = {}
        defaults_file = role_dir / "defaults" / "main.yml"
        if defaults_file.is_file():
            loaded = load_ansible_yaml(defaults_file)
            if isinstance(loaded, dict):
                defaults = {
                    str(k).removeprefix(ROLE_PREFIX): v
                    for k, v in loaded.items()
                    if str(k).startswith(ROLE_PREFIX)
                }
        return cls.from_options(options or {}, defaults=defaults)

    @classmethod
    def from_options(
        cls, options: Mapping[str, Any], *, defaults: Mapping[str, Any] | None = None
    ) -> RoleSpec:
        fields: dict[str, FieldSpec] = {}
        for var, option in options.items():
            if not str(var).startswith(ROLE_PREFIX):
                continue
            key = str(var).removeprefix(ROLE_PREFIX)
            opt = option or {}
            fields[key] = FieldSpec(
                name=key,
                kind=str(opt.get("type", "str")),
                env="PROVISION_DOCKER_" + key.upper(),
                description=_first_line(opt.get("description", "")),
                elements=opt.get("elements"),
                choices=tuple(opt.get("choices") or ()),
            )
        return cls(fields=fields, defaults=dict(defaults or {}))


def _first_line(description: Any) -> str:
    if isinstance(description, list):
        description = description[0] if description else ""
    return str(description).strip().splitlines()[0] if str(description).strip() else ""


# --------------------------------------------------------------------------------------------
# Type checking and conversion


def _type_ok(kind: str, value: Any) -> bool:
    if kind in ("str", "path"):
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "list":
        return isinstance(value, list)
    if kind == "dict":
        return isinstance(value, dict)
    return True


def _show(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        shown = json.dumps(value, default=str)
    except (TypeError, ValueError):  # pragma: no cover - TOML values always serialise
        shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _validate_value(spec: FieldSpec, value: Any, *, where: str, host: HostLimits) -> Any:
    """Check one value against its spec; ``where`` names the key for the message."""
    if not _type_ok(spec.kind, value):
        raise SettingsError(f"{where} = {_show(value)}: must be {spec.describe_type()}")
    if spec.kind == "list" and spec.elements:
        for index, item in enumerate(value):
            if not _type_ok(spec.elements, item):
                element = FieldSpec(spec.name, spec.elements, spec.env)
                raise SettingsError(
                    f"{where}[{index}] = {_show(item)}: must be {element.describe_type()}"
                )
    if spec.choices:
        items = value if spec.kind == "list" else [value]
        for item in items:
            if item not in spec.choices:
                accepted = ", ".join(str(c) for c in spec.choices)
                raise SettingsError(f"{where} = {_show(item)}: must be one of {accepted}")
    if spec.check is not None:
        problem = spec.check(value, host)
        if problem:
            raise SettingsError(f"{where}: {problem}")
    return value


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _from_text(spec: FieldSpec, text: str, *, where: str) -> Any:
    """Convert an environment variable or flag to the spec's type."""
    kind = spec.kind
    value: Any
    wrong = f"{where} = {_show(text)}: must be {spec.describe_type()}"
    if kind in ("str", "path"):
        return text
    if kind == "int":
        try:
            return int(text.strip(), 10)
        except ValueError:
            raise SettingsError(wrong) from None
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise SettingsError(wrong) from None
    if kind == "bool":
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise SettingsError(f"{where} = {_show(text)}: must be true or false")
    if kind == "list":
        stripped = text.strip()
        if stripped.startswith("["):
            value = _json(text, where=where, expected="a JSON list")
        else:
            value = [part.strip() for part in stripped.split(",") if part.strip()]
            if spec.elements == "int":
                value = [_from_text(replace(spec, kind="int"), v, where=where) for v in value]
        return value
    if kind == "dict":
        return _json(text, where=where, expected="a JSON object")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _json(text: str, *, where: str, expected: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError(
            f"{where}: must be {expected} ({exc.msg} at column {exc.colno})"
        ) from None


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


def _apply_table(
    table: Mapping[str, Any],
    fields: Mapping[str, FieldSpec],
    *,
    section: str,
    source: str,
    host: HostLimits,
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in table.items():
        spec = fields.get(key)
        if spec is None:
            accepted = ", ".join(fields) or "none"
            raise SettingsError(
                f"{source}: unknown key {section}.{key} (accepted in [{section}]: {accepted})"
            )
        values[key] = _validate_value(spec, value, where=f"{source}: {section}.{key}", host=host)
    return values


def _apply_env(
    env: Mapping[str, str], fields: Mapping[str, FieldSpec], *, host: HostLimits
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, spec in fields.items():
        if spec.env not in env:
            continue
        text = env[spec.env]
        value = _from_text(spec, text, where=spec.env)
        values[key] = _validate_value(spec, value, where=spec.env, host=host)
    return values


def load_settings(
    *,
    config: Path | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, str | None] | None = None,
    host: HostLimits | None = None,
    role_spec_loader: Callable[[], RoleSpec] | None = None,
) -> Settings:
    """Build validated settings: defaults < file < ``PROVISION_*`` < flags.

    ``flags`` maps ``[machine]`` keys to the text given on the command line (``None`` = unset).
    ``role_spec_loader`` is called only when ``[docker]`` settings are present.
    """
    env = os.environ if env is None else env
    host = host or HostLimits.detect()
    cwd = cwd or Path.cwd()

    path: Path | None = config
    if path is None and (cwd / CONFIG_FILE_NAME).is_file():
        path = cwd / CONFIG_FILE_NAME
    data: dict[str, Any] = read_config_file(path) if path is not None else {}
    source = str(config) if config is not None else CONFIG_FILE_NAME

    for key, value in data.items():
        if key not in _SECTIONS:
            accepted = ", ".join(f"[{s}]" for s in _SECTIONS)
            what = "section" if isinstance(value, dict) else "top-level key"
            raise SettingsError(f"{source}: unknown {what} {key!r} (accepted: {accepted})")
        if not isinstance(value, dict):
            raise SettingsError(f"{source}: {key} must be a table ([{key}]), not a value")

    machine_fields = {spec.name: spec for spec in MACHINE_FIELDS}
    checks_fields = {spec.name: spec for spec in CHECKS_FIELDS}

    machine: dict[str, Any] = {}
    machine.update(
        _apply_table(
            data.get("machine", {}), machine_fields, section="machine", source=source, host=host
        )
    )
    machine.update(_apply_env(env, machine_fields, host=host))
    for key, text in (flags or {}).items():
        if text is None:
            continue
        spec = machine_fields[key]
        flag = "--" + key.replace("_", "-")
        value = _from_text(spec, text, where=flag)
        machine[key] = _validate_value(spec, value, where=flag, host=host)

    checks: dict[str, Any] = {}
    checks.update(
        _apply_table(
            data.get("checks", {}), checks_fields, section="checks", source=source, host=host
        )
    )
    checks.update(_apply_env(env, checks_fields, host=host))

    docker: dict[str, Any] = {}
    docker_table = data.get("docker", {})
    docker_env = any(name.startswith("PROVISION_DOCKER_") for name in env)
    if docker_table or docker_env:
        loader = role_spec_loader or _default_role_spec
        role_fields = loader().fields
        docker.update(
            _apply_table(docker_table, role_fields, section="docker", source=source, host=host)
        )
        unknown_env = sorted(
            name
            for name in env
            if name.startswith("PROVISION_DOCKER_")
            and name not in {spec.env for spec in role_fields.values()}
        )
        if unknown_env:
            accepted = ", ".join(spec.env for spec in role_fields.values())
            raise SettingsError(f"{unknown_env[0]}: unknown variable (accepted: {accepted})")
        docker.update(_apply_env(env, role_fields, host=host))

    return Settings(
        machine=MachineSettings(**machine),
        docker=docker,
        checks=ChecksSettings(**checks),
        config_file=path,
    )


def _default_role_spec() -> RoleSpec:
    from provision.paths import data_paths

    return RoleSpec.from_role_dir(data_paths().role(ROLE_NAME))


def settings_reference() -> list[tuple[str, str, str, str]]:
    """(section.key, environment variable, default, description) for the docs."""
    rows: list[tuple[str, str, str, str]] = []
    defaults = MachineSettings()
    for spec in MACHINE_FIELDS:
        rows.append(
            (f"machine.{spec.name}", spec.env, str(getattr(defaults, spec.name)), spec.description)
        )
    checks_defaults = ChecksSettings()
    for spec in CHECKS_FIELDS:
        rows.append(
            (
                f"checks.{spec.name}",
                spec.env,
                str(getattr(checks_defaults, spec.name)),
                spec.description,
            )
        )
    return rows

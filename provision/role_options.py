"""The docker role's options, validated once, whatever their source.

``[docker]`` in provision.toml, ``PROVISION_DOCKER_*`` and ``-e docker_*`` all go through
:class:`RoleContract`: ansible-core's own argument-spec validator over the role's
``meta/argument_specs.yml`` (types, elements, choices: the role's contract, not a copy of it), then
the format rules the spec cannot express, from the collection's
``plugins/module_utils/docker_formats.py`` (the file the role's preflight uses on the host).
Values come back converted as the validator converts them (``"a,b"`` → ``["a", "b"]``,
``"yes"`` → ``True``), so the role gets what its contract describes.

Only ``ansible.module_utils`` is imported here: it reads no Ansible configuration, so a broken
``./ansible.cfg`` cannot break validation (runs use the shipped one).
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from provision.errors import SettingsError
from provision.paths import DataPaths, data_paths

ROLE_NAME: Final = "docker"
ROLE_PREFIX: Final = "docker_"
FORMATS_FILE: Final = Path("plugins") / "module_utils" / "docker_formats.py"

# Keys of an option's spec the validator does not need: a default is the role's business
# (defaults/main.yml) and an !unsafe-tagged template here would be validated as a value.
_NOT_FOR_VALIDATION: Final = frozenset({"description", "default", "version_added"})


@functools.cache
def _load_formats(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("provision_docker_formats", path)
    if spec is None or spec.loader is None:  # pragma: no cover - a path always has a loader
        raise SettingsError(f"cannot load {path}: reinstall provision")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def docker_formats(paths: DataPaths | None = None) -> ModuleType:
    """The collection's ``docker_formats`` module (loaded by file path: it is not a package of
    this distribution, and the role's modules import it under the collection's name)."""
    path = (paths or data_paths()).collection / FORMATS_FILE
    if not path.is_file():
        raise SettingsError(f"{path} is missing: reinstall provision")
    return _load_formats(path)


def load_ansible_yaml(path: Path) -> Any:
    """Read a YAML file of the role; Ansible's tags (``!unsafe``, ``!vault``) load as plain
    values."""
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    def _untagged(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return loader.construct_scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        return None  # pragma: no cover - the three node kinds are exhaustive

    _Loader.add_multi_constructor("!", _untagged)
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506
    except OSError as exc:
        raise SettingsError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{path}: not a UTF-8 text file") from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None


def role_defaults(paths: DataPaths | None = None) -> dict[str, Any]:
    """The role's ``defaults/main.yml`` (a computed default is its Jinja text)."""
    loaded = load_ansible_yaml((paths or data_paths()).role(ROLE_NAME) / "defaults" / "main.yml")
    return dict(loaded) if isinstance(loaded, dict) else {}


def is_template(value: Any) -> bool:
    """Whether a value holds a Jinja expression anywhere (checked by the role once rendered)."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, Mapping):
        return any(is_template(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(is_template(v) for v in value)
    return False


def show(value: Any, limit: int = 60) -> str:
    """A value as the user wrote it (JSON-ish), shortened for a one-line message."""
    if isinstance(value, bool):
        shown = "true" if value else "false"
    else:
        try:
            shown = json.dumps(value, default=str, ensure_ascii=False)
        except (TypeError, ValueError):  # pragma: no cover - settings are plain data
            shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def did_you_mean(
    name: str, candidates: list[str], *, prefix: str = "", cutoff: float = 0.7
) -> str | None:
    """The closest candidate to a mistyped name, if one is close enough: similar spelling, or
    the only one the name begins (``DISK`` for ``DISK_GIB``). Names are compared without their
    shared ``prefix`` (it would make every pair look alike)."""
    stripped = {c.removeprefix(prefix): c for c in candidates}
    bare = name.removeprefix(prefix)
    close = difflib.get_close_matches(bare, list(stripped), n=1, cutoff=cutoff)
    if close:
        return stripped[close[0]]
    longer = [c for c in stripped if len(bare) >= 3 and c.startswith(bare)]
    return stripped[longer[0]] if len(longer) == 1 else None


_TYPE_WORDS: Final = {
    "str": ("a string", "strings"),
    "path": ("a path", "paths"),
    "raw": ("any value", "values"),
    "int": ("an integer", "integers"),
    "float": ("a number", "numbers"),
    "bool": ("true or false", "booleans"),
    "dict": ("a mapping (TOML table, JSON object)", "mappings"),
    "list": ("a list", "lists"),
}


@dataclass(frozen=True)
class RoleContract:
    """The role's options (``meta/argument_specs.yml``, entry point ``main``) and their formats."""

    options: Mapping[str, Mapping[str, Any]]
    formats: ModuleType

    @classmethod
    def load(cls, paths: DataPaths | None = None) -> RoleContract:
        role_dir = (paths or data_paths()).role(ROLE_NAME)
        data = load_ansible_yaml(role_dir / "meta" / "argument_specs.yml")
        try:
            options = data["argument_specs"]["main"]["options"]
        except (KeyError, TypeError):
            raise SettingsError(
                f"{role_dir}/meta/argument_specs.yml has no main options: reinstall provision"
            ) from None
        return cls(
            options={str(k): dict(v or {}) for k, v in options.items()},
            formats=docker_formats(paths),
        )

    @property
    def names(self) -> list[str]:
        return list(self.options)

    def option_type(self, name: str) -> str:
        return str(self.options[name].get("type", "str"))

    def accepted(self, name: str) -> str:
        """What an option accepts, in words, from its spec."""
        spec = self.options[name]
        choices = spec.get("choices")
        kind = self.option_type(name)
        if choices:
            words = ", ".join(str(c) for c in choices)
            return f"a list of {words}" if kind == "list" else f"one of {words}"
        if kind == "list" and spec.get("elements"):
            return "a list of " + _TYPE_WORDS.get(str(spec["elements"]), ("", "values"))[1]
        return _TYPE_WORDS.get(kind, ("a " + kind, ""))[0]

    def suggest(self, name: str) -> str | None:
        """The option a mistyped, unprefixed or twice-prefixed name probably means."""
        bare = name.removeprefix(ROLE_PREFIX)
        for candidate in (ROLE_PREFIX + bare, bare):
            if candidate != name and candidate in self.options:
                return candidate
        return did_you_mean(name, self.names, prefix=ROLE_PREFIX)

    def unknown(self, name: str, *, where: str, spelled: Callable[[str], str] = str) -> None:
        """Raise the one line for a name that is not an option (``spelled`` renders an option
        name the way the source spells it, e.g. ``PROVISION_DOCKER_USERS``)."""
        guess = self.suggest(name)
        if guess:
            hint = f"did you mean {spelled(guess)}?"
        else:
            hint = "accepted: " + ", ".join(spelled(n) for n in self.names)
        raise SettingsError(f"{where}: not an option of the docker role ({hint})")

    def validate(self, name: str, value: Any, *, where: str, shown: str | None = None) -> Any:
        """``value`` checked against option ``name`` and converted as the validator converts it;
        raises the one line naming ``where`` and what the option accepts."""
        from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

        if name not in self.options:
            self.unknown(name, where=where)
        spec = {k: v for k, v in self.options[name].items() if k not in _NOT_FOR_VALIDATION}
        result = ArgumentSpecValidator({name: spec}).validate({name: value})
        # a URL's user:password@ is never shown back
        where = self.formats.masked(where)
        written = self.formats.masked(show(value) if shown is None else shown)
        if result.error_messages:
            raise SettingsError(
                f"{where} = {written}: must be {self.accepted(name)}",
                detail="; ".join(str(m) for m in result.error_messages),
            )
        converted = result.validated_parameters[name]
        if not is_template(converted):
            problem = self.formats.option_problem(name, converted)
            if problem:
                raise SettingsError(f"{where} = {written}: {problem}")
        return converted

    def from_text(self, name: str, text: str, *, where: str) -> Any:
        """A value given as text (an environment variable): JSON when it starts with ``[`` or
        ``{``, a comma-separated list for a list option, else the text for the validator."""
        stripped = text.strip()
        if stripped[:1] in ("[", "{"):
            try:
                return json.loads(stripped)
            except json.JSONDecodeError as exc:
                raise SettingsError(
                    f"{where} = {show(text)}: not valid JSON ({exc.msg} at column {exc.colno});"
                    f" must be {self.accepted(name)}"
                ) from None
        if name in self.options and self.option_type(name) == "list":
            return [part.strip() for part in stripped.split(",") if part.strip()]
        return text

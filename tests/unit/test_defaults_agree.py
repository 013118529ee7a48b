"""Each role default has one source, the argument spec (meta/argument_specs.yml); the copies that
must exist elsewhere — defaults/main.yml (Ansible reads defaults from there) and the host checks'
fallbacks (provision/checks/expectations.py, which run where the role's files may not be) — are
proven equal to it here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from provision.checks import expectations
from provision.role_options import load_ansible_yaml

ROLE = Path(__file__).resolve().parents[2] / "roles" / "docker"


def spec_options() -> dict[str, Any]:
    spec = load_ansible_yaml(ROLE / "meta" / "argument_specs.yml")
    options = spec["argument_specs"]["main"]["options"]
    assert isinstance(options, dict)
    return options


def role_defaults() -> dict[str, Any]:
    defaults = load_ansible_yaml(ROLE / "defaults" / "main.yml")
    assert isinstance(defaults, dict)
    return defaults


def test_defaults_file_declares_exactly_the_spec_options() -> None:
    assert set(role_defaults()) == set(spec_options())


@pytest.mark.parametrize("name", sorted(spec_options()))
def test_defaults_file_value_is_the_specs(name: str) -> None:
    # No `default` in an argument spec means None, as Ansible reads it.
    assert role_defaults()[name] == spec_options()[name].get("default"), name


@pytest.mark.parametrize(
    ("constant", "option"),
    [
        ("DOCKER_KEY_FINGERPRINT", "docker_apt_key_fingerprint"),
        ("DEFAULT_PACKAGES", "docker_packages"),
        ("CONFLICTING_PACKAGES", "docker_conflicting_packages"),
    ],
)
def test_host_checks_fall_back_to_the_specs_default(constant: str, option: str) -> None:
    value = getattr(expectations, constant)
    default = spec_options()[option]["default"]
    assert (list(value) if isinstance(value, tuple) else value) == default

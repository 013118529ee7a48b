"""Fixtures of the plan's unit tests: the role's paths, constants and variables, and the reading
of a focal host the role converged (../docker_role.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from ansible_collections.provision.hosts.tests.unit.plugins.docker_role import (
    VARS,
    converged_host,
    role_want,
)


@pytest.fixture
def paths() -> dict[str, Any]:
    return copy.deepcopy(VARS["docker__paths"])


@pytest.fixture
def rules() -> dict[str, Any]:
    return copy.deepcopy(VARS["docker__rules"])


@pytest.fixture
def want() -> dict[str, Any]:
    return role_want()


@pytest.fixture
def host(want: dict[str, Any]) -> dict[str, Any]:
    return converged_host(want)

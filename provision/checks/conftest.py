"""Fixtures of the shared host checks (expectations: see expectations.py)."""

from __future__ import annotations

import pytest

from .expectations import Expectations, load


@pytest.fixture(scope="session")
def expect() -> Expectations:
    """The expectations of this run."""
    return load()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize per package and per docker user, so each shows as its own check."""
    expectations = load()
    if "package" in metafunc.fixturenames:
        metafunc.parametrize("package", expectations.packages)
    if "docker_user" in metafunc.fixturenames:
        # None stands for "the user the checks connect as", resolved on the host.
        users: tuple[str | None, ...] = (
            expectations.users if expectations.users is not None else (None,)
        )
        metafunc.parametrize("docker_user", users, ids=[u or "connecting-user" for u in users])

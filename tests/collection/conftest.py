"""Fixtures of the collection's own gates: its built artifact, ansible-test over it and the
execution environment's build context. No test bed needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import galaxy


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.collection)


@pytest.fixture(scope="session")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The collection artifact, built from the checkout by ansible-galaxy."""
    return galaxy.build(tmp_path_factory.mktemp("artifact"))

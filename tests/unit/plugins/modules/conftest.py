"""Running the collection's modules in-process, as AnsiballZ runs them on a host: arguments in,
the JSON result (or the failure) out. Files live under pytest's tmp_path; the tests run as root,
like the modules do, so owners and modes are real."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from ansible.module_utils import basic


def run_module(
    main: Callable[[], None],
    capsys: pytest.CaptureFixture[str],
    args: dict[str, Any],
    *,
    check_mode: bool = False,
) -> dict[str, Any]:
    """The result MAIN prints for ARGS (``failed`` set when it failed)."""
    arguments = {**args, "_ansible_check_mode": check_mode, "_ansible_diff": True}
    basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": arguments}).encode()
    basic._ANSIBLE_PROFILE = "legacy"
    capsys.readouterr()
    try:
        with pytest.raises(SystemExit):
            main()
    finally:
        basic._ANSIBLE_ARGS = None
        basic._ANSIBLE_PROFILE = None
    result = json.loads(capsys.readouterr().out)
    assert isinstance(result, dict)
    return result


def attributes(path: str) -> tuple[str, int, int]:
    info = os.stat(path)
    return f"{info.st_mode & 0o7777:04o}", info.st_uid, info.st_gid


@contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture(autouse=True)
def _root_only() -> None:
    if os.geteuid() != 0:
        pytest.skip("the modules set root ownership: run as root (as the test machine does)")

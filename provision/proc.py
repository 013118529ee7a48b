"""The one helper for subprocesses that are neither Vagrant nor Ansible.

Keyword-only, never ``shell=True``, and it logs the command line it runs (shown with ``-v``).
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from provision.errors import PrerequisiteError, RunFailedError

log = logging.getLogger("provision.proc")


def run(
    *,
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    capture: bool = True,
    check: bool = False,
    timeout: float | None = None,
    install_hint: str = "",
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` and return the completed process (text mode).

    ``capture=False`` lets the child use this process's terminal (interactive commands);
    ``input_text`` is written to its stdin.
    ``env`` replaces the environment (merge ``os.environ`` yourself). A missing executable
    raises :class:`PrerequisiteError` with ``install_hint``; ``check=True`` turns a non-zero
    exit into :class:`RunFailedError` carrying the command's stderr.
    """
    line = shlex.join(argv)
    log.info("$ %s", line)
    try:
        result = subprocess.run(
            list(argv),
            env=dict(env) if env is not None else None,
            cwd=os.fspath(cwd) if cwd is not None else None,
            capture_output=capture,
            text=True,
            check=False,
            timeout=timeout,
            input=input_text,
        )
    except FileNotFoundError:
        hint = f": {install_hint}" if install_hint else ""
        raise PrerequisiteError(f"{argv[0]} is not installed{hint}") from None
    except PermissionError:
        raise PrerequisiteError(f"{argv[0]} cannot be executed (permission denied)") from None
    except subprocess.TimeoutExpired:
        raise RunFailedError(f"`{line}` did not finish within {timeout:g} s") from None
    log.debug("exit %d: %s", result.returncode, line)
    if check and result.returncode != 0:
        stderr = (result.stderr or "").strip()
        first = stderr.splitlines()[-1] if stderr else f"exit status {result.returncode}"
        raise RunFailedError(f"`{line}` failed: {first}", detail=stderr)
    return result

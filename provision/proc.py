"""The one helper for subprocesses that are neither Vagrant nor Ansible.

Keyword-only, never ``shell=True``, and it logs the command line it runs (shown with ``-v``).
:func:`run` waits for the child; :func:`stream` hands over its stdout line by line as it comes.
"""

from __future__ import annotations

import logging
import os
import selectors
import shlex
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

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


class Lines:
    """A running child whose stdout is read line by line as it arrives (see :func:`stream`)."""

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        stdout: IO[bytes],
        stderr: IO[bytes],
        grace: float = 0.0,
    ) -> None:
        self._popen = popen
        self._grace = grace
        self._stdout = stdout
        self._stderr = stderr
        self._fd = stdout.fileno()
        self._selector = selectors.DefaultSelector()
        self._selector.register(stdout, selectors.EVENT_READ)
        self._buffer = b""
        self._ended = False

    @property
    def pid(self) -> int:
        return self._popen.pid

    def readline(self, *, deadline: float) -> str | None:
        """The next line without its newline, or None once stdout has ended; raises
        :class:`TimeoutError` when no line is complete by ``deadline`` (``time.monotonic()``)."""
        while b"\n" not in self._buffer and not self._ended:
            left = deadline - time.monotonic()
            if left <= 0 or not self._selector.select(left):
                raise TimeoutError
            chunk = os.read(self._fd, 65536)
            self._buffer += chunk
            self._ended = not chunk
        if not self._buffer:
            return None
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode("utf-8", errors="replace")

    def wait(self, timeout: float = 30) -> tuple[int, str]:
        """Exit status and stderr once the child has ended (killed after ``timeout`` s)."""
        try:
            code = self._popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            code = self._popen.wait()
        self._stderr.seek(0)
        return code, self._stderr.read().decode("utf-8", errors="replace")

    def close(self) -> None:
        if self._popen.poll() is None and self._grace > 0:
            self._popen.terminate()  # the child may undo what it started on a host
            with suppress(subprocess.TimeoutExpired):
                self._popen.wait(timeout=self._grace)
        if self._popen.poll() is None:
            self._popen.kill()
            self._popen.wait()
        self._selector.close()
        self._stdout.close()
        self._stderr.close()


@contextmanager
def stream(
    *,
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    input_text: str = "",
    grace: float = 0.0,
) -> Iterator[Lines]:
    """Start ``argv`` with ``input_text`` on its stdin and yield its stdout as :class:`Lines`.

    stderr goes to a file (a chatty child never blocks on a full pipe); the child is killed
    if it still runs when the block ends (an error, Ctrl-C), after ``grace`` seconds of SIGTERM
    when that is not 0. ``env`` as for :func:`run`.
    """
    line = shlex.join(argv)
    log.info("$ %s", line)
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by Lines.close
    try:
        popen = subprocess.Popen(
            list(argv),
            env=dict(env) if env is not None else None,
            cwd=os.fspath(cwd) if cwd is not None else None,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    except OSError as exc:
        stderr.close()
        raise PrerequisiteError(f"{argv[0]} cannot be started: {exc.strerror}") from None
    stdin, stdout = popen.stdin, popen.stdout
    if stdin is None or stdout is None:  # pragma: no cover - both are pipes
        raise RuntimeError("subprocess.Popen opened no pipes")
    lines = Lines(popen, stdout, stderr, grace)
    try:
        try:
            with stdin:
                stdin.write(input_text.encode("utf-8"))
        except BrokenPipeError:
            pass  # the child ended without reading: its exit status and stderr say why
        yield lines
    finally:
        lines.close()
        log.debug("exit %s: %s", popen.returncode, line)

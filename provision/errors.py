"""Domain errors and the exit codes they map to.

Every failure the user can act on is raised as a :class:`ProvisionError` (or a subclass) that
carries a one-line message and an exit code. Only ``provision.cli.main`` turns them into output
and a process exit status (the one error boundary); nothing else calls ``sys.exit``.

Exit codes (documented in the README):

====  ==================  ========================================================
code  constant            meaning
====  ==================  ========================================================
0     EXIT_OK             success
1     EXIT_FAILED         a task, a check or a Vagrant/Ansible run failed
2     EXIT_USAGE          usage or settings error (nothing was run)
3     EXIT_PREREQ         a prerequisite is missing (vagrant, a provider, host RAM/disk)
4     EXIT_UNREACHABLE    a host could not be reached over SSH
130   EXIT_INTERRUPTED    interrupted (Ctrl-C)
====  ==================  ========================================================
"""

from __future__ import annotations

from typing import ClassVar, Final

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_PREREQ: Final = 3
EXIT_UNREACHABLE: Final = 4
EXIT_INTERRUPTED: Final = 130

EXIT_CODES: Final[dict[int, str]] = {
    EXIT_OK: "success",
    EXIT_FAILED: "a task, a check or a run failed",
    EXIT_USAGE: "usage or settings error",
    EXIT_PREREQ: "a prerequisite is missing",
    EXIT_UNREACHABLE: "a host is unreachable",
    EXIT_INTERRUPTED: "interrupted",
}


def one_line(text: str) -> str:
    """Collapse ``text`` to one line (the error boundary prints exactly one)."""
    return " ".join(text.split())


class ProvisionError(Exception):
    """An error the user can act on: a one-line message and an exit code.

    ``detail`` keeps longer context (a tool's own stderr, for instance); the CLI shows it with
    ``-v``/``--debug`` and puts it in ``--json`` output, never in the one-line message.
    """

    default_exit_code: ClassVar[int] = EXIT_FAILED

    def __init__(self, message: str, *, exit_code: int | None = None, detail: str = "") -> None:
        self.message = one_line(message)
        self.exit_code = self.default_exit_code if exit_code is None else exit_code
        self.detail = detail
        super().__init__(self.message)


class UsageError(ProvisionError):
    """Bad command line or settings; nothing was run."""

    default_exit_code = EXIT_USAGE


class SettingsError(UsageError):
    """A settings file, environment variable or flag has a wrong key or value."""


class PrerequisiteError(ProvisionError):
    """A tool or resource the command needs is missing on this machine."""

    default_exit_code = EXIT_PREREQ


class UnreachableError(ProvisionError):
    """One or more hosts could not be reached."""

    default_exit_code = EXIT_UNREACHABLE


class RunFailedError(ProvisionError):
    """A task, a check or an external tool failed."""

    default_exit_code = EXIT_FAILED


class InterruptedRunError(ProvisionError):
    """A run was cancelled (Ctrl-C or a signal)."""

    default_exit_code = EXIT_INTERRUPTED

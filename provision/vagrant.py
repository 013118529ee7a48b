"""The one adapter on python-vagrant: every Vagrant call goes through :class:`VagrantAdapter`.

* Vagrant runs with this process's environment plus ``VAGRANT_EXPERIMENTAL=disks`` (Vagrant 2.3
  ignores ``config.vm.disk`` without it), the ``PROVISION_*`` machine settings the
  ``Vagrantfile`` reads, ``VAGRANT_CWD`` at the shipped ``Vagrantfile`` and
  ``VAGRANT_DOTFILE_PATH`` in the project directory (so the VM belongs to the directory the
  user runs ``provision`` in, also for an installed package).
* Only python-vagrant's public API: ``Vagrant(root, env, quiet_stdout, err_cm)``, ``up``
  (streamed), ``halt``, ``destroy``, ``status``, ``ssh_config``, ``ssh``, ``version``,
  ``get_vagrant_executable`` and ``make_file_cm``. The environment is handed to each Vagrant
  process; this process's own environment is never changed.
* Failures: Vagrant names its error class (``Vagrant::Errors::…``, the stable hook) in the
  ``error-exit`` record of ``--machine-readable`` output (``status``) and, with
  ``VAGRANT_LOG=error``, in its error log on stderr (the other commands). The class turns a
  failure into a domain error, e.g. ``ProviderNotUsable`` → exit 3 "VirtualBox is missing".
* Vagrant's stderr is captured and carried by the error.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from provision import proc
from provision.errors import (
    EXIT_FAILED,
    EXIT_USAGE,
    InterruptedRunError,
    PrerequisiteError,
    ProvisionError,
    RunFailedError,
    one_line,
)
from provision.inventory import inventory_from_ssh_config

if TYPE_CHECKING:
    from vagrant import Vagrant

    from provision.paths import DataPaths
    from provision.settings import MachineSettings

log = logging.getLogger("provision.vagrant")

VAGRANT_INSTALL_HINT: Final = (
    "install it from https://developer.hashicorp.com/vagrant/install "
    "(Debian/Ubuntu: apt-get install vagrant)"
)
VIRTUALBOX_HINT: Final = (
    "VirtualBox is missing: install it from https://www.virtualbox.org/wiki/Downloads "
    "or use --provider libvirt"
)
LIBVIRT_PLUGIN_HINT: Final = (
    "the vagrant-libvirt plugin is missing: install it with `vagrant plugin install "
    "vagrant-libvirt` (Debian/Ubuntu: apt-get install vagrant-libvirt) or use --provider "
    "virtualbox"
)
RUNNING_STATES: Final = frozenset({"running"})
_DISKS_FEATURE: Final = "disks"
# python-vagrant's status() renames libvirt's states to VirtualBox's: undone, so that users see
# what `vagrant status` shows them.
_PYTHON_VAGRANT_RENAMES: Final = {
    ("libvirt", "poweroff"): "shutoff",
    ("libvirt", "saved"): "paused",
}
# Vagrant's error log names the exception: "ERROR vagrant: #<Vagrant::Errors::X: message>".
_LOGGED_ERROR: Final = re.compile(r"#<((?:Vagrant|VagrantPlugins)(?:::\w+)*::Errors::\w+): ?")
_LOG_RECORD: Final = re.compile(r"^\s*(?:DEBUG|INFO|WARN|ERROR|FATAL) [\w:]+: ")


# --------------------------------------------------------------------------------------------
# Machine-readable output


@dataclass(frozen=True)
class MachineRecord:
    """One ``--machine-readable`` line: ``timestamp,target,type,data...``."""

    target: str
    type: str
    data: tuple[str, ...]


def _unescape(text: str) -> str:
    return text.replace("%!(VAGRANT_COMMA)", ",").replace("\\n", "\n").replace("\\r", "\r")


def _shown(message: str) -> bool:
    """Whether a line of Vagrant's output is worth a progress line."""
    text = message.strip()
    # box downloads report "Progress: 12% (Rate: ...)" many times a second
    if re.search(r"(^|: )Progress: ", text):
        return False
    # the warning about VAGRANT_EXPERIMENTAL=disks, which provision itself sets
    return "experimental flag" not in text and not text.startswith(
        ("Features:", "Please use with caution")
    )


def parse_machine_readable_line(line: str) -> MachineRecord | None:
    """Parse one line of ``vagrant --machine-readable`` output (None if it is not one)."""
    parts = line.rstrip("\r\n").split(",")
    if len(parts) < 3 or not parts[0].isdigit():
        return None
    return MachineRecord(
        target=parts[1], type=parts[2], data=tuple(_unescape(p) for p in parts[3:])
    )


@dataclass(frozen=True)
class VagrantFailure:
    """The ``error-exit`` record of a failed Vagrant command."""

    error_class: str
    message: str


def vagrant_error(
    *,
    command: str,
    failure: VagrantFailure | None,
    stderr: str,
    provider: str,
) -> ProvisionError:
    """Map a failed Vagrant command to a domain error (pure; unit-tested)."""
    error_class = failure.error_class if failure else ""
    message = failure.message if failure else stderr
    short = error_class.rsplit("::", 1)[-1]
    detail = "\n".join(p for p in (error_class, message.strip(), stderr.strip()) if p)

    if short == "ProviderNotUsable":
        if provider == "virtualbox":
            return PrerequisiteError(VIRTUALBOX_HINT, detail=detail)
        reason = _last_paragraph(message)
        return PrerequisiteError(f"the {provider} provider is not usable: {reason}", detail=detail)
    if short in ("ProviderNotFound", "ProviderNotFoundSuggestion"):
        if provider == "libvirt":
            return PrerequisiteError(LIBVIRT_PLUGIN_HINT, detail=detail)
        return PrerequisiteError(
            f"Vagrant has no provider {provider!r}: {_first_sentence(message)}", detail=detail
        )
    if short == "NoDefaultProvider":
        return PrerequisiteError("no usable Vagrant provider: " + VIRTUALBOX_HINT, detail=detail)
    if short in ("BoxNotFound", "BoxAddShortNotFound", "BoxNotFoundWithProvider"):
        return ProvisionError(
            f"vagrant {command}: the box was not found: {_first_sentence(message)} "
            "(check [machine] box / --box)",
            exit_code=EXIT_USAGE,
            detail=detail,
        )
    if short == "ActiveMachineWithDifferentProvider":
        return ProvisionError(
            f"vagrant {command}: the VM exists with another provider: "
            "run `provision destroy` first or use that provider",
            exit_code=EXIT_USAGE,
            detail=detail,
        )
    if short == "VagrantInterrupt":
        return InterruptedRunError(f"vagrant {command} was interrupted", detail=detail)
    if short in ("VMNotCreatedError", "SSHNotReady"):
        return RunFailedError("the VM is not running: run `provision up` first", detail=detail)
    first = _first_sentence(message) or f"exit status {EXIT_FAILED}"
    return RunFailedError(f"vagrant {command} failed: {first}", detail=detail)


def _paragraphs(text: str) -> list[str]:
    return [one_line(p) for p in text.strip().split("\n\n") if p.strip()]


def _last_paragraph(text: str) -> str:
    paragraphs = _paragraphs(text)
    return paragraphs[-1] if paragraphs else ""


def _first_sentence(text: str) -> str:
    """The gist of a Vagrant message: its first paragraph on one line (at most 300 chars)."""
    paragraphs = _paragraphs(text)
    if not paragraphs:
        return ""
    first = paragraphs[0]
    return first if len(first) <= 300 else first[:297] + "..."


def failure_from_log(stderr: str) -> VagrantFailure | None:
    """The error class and message Vagrant logs on stderr with ``VAGRANT_LOG=error``."""
    lines = stderr.splitlines()
    for index, line in enumerate(lines):
        found = _LOGGED_ERROR.search(line)
        if found is None:
            continue
        message = [line[found.end() :]]
        for following in lines[index + 1 :]:
            if _LOG_RECORD.match(following):
                break
            message.append(following)
        text = "\n".join(message).rstrip()
        return VagrantFailure(found.group(1), text.removesuffix(">"))
    return None


def failure_from_machine_readable(output: Any) -> VagrantFailure | None:
    """The ``error-exit`` record of ``--machine-readable`` output, if any."""
    text = output.decode("utf-8", "replace") if isinstance(output, bytes) else str(output or "")
    failure: VagrantFailure | None = None
    for line in text.splitlines():
        record = parse_machine_readable_line(line)
        if record and record.type == "error-exit" and len(record.data) >= 2:
            failure = VagrantFailure(record.data[0], record.data[1])
    return failure


# --------------------------------------------------------------------------------------------
# Status


@dataclass(frozen=True)
class MachineStatus:
    name: str
    state: str
    provider: str

    @property
    def created(self) -> bool:
        return self.state not in ("not_created", "")

    @property
    def running(self) -> bool:
        return self.state in RUNNING_STATES


# --------------------------------------------------------------------------------------------
# The adapter


def _import_vagrant() -> Any:
    # python-vagrant warns through logging at import when the binary is missing; we report
    # that ourselves with an install hint.
    logging.getLogger("vagrant").setLevel(logging.ERROR)
    import vagrant

    return vagrant


class VagrantAdapter:
    """All Vagrant operations for one project directory.

    ``base_env`` (default: this process's environment) is what Vagrant runs with, plus the
    project's variables. python-vagrant finds the ``vagrant`` executable on this process's
    ``PATH``.
    """

    def __init__(
        self,
        *,
        project_dir: Path,
        paths: DataPaths,
        machine: MachineSettings,
        progress: Callable[[str], None] | None = None,
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        self.project_dir = project_dir.resolve()
        self.paths = paths
        self.machine = machine
        self.progress = progress or (lambda _line: None)
        self.env = self.build_env(base_env if base_env is not None else os.environ)

    # -- environment -------------------------------------------------------------------------

    @property
    def dotfile_dir(self) -> Path:
        return self.project_dir / ".vagrant"

    def build_env(self, base: Mapping[str, str]) -> dict[str, str]:
        env = dict(base)
        features = [f for f in env.get("VAGRANT_EXPERIMENTAL", "").split(",") if f.strip()]
        if _DISKS_FEATURE not in features and "1" not in features:
            features.append(_DISKS_FEATURE)
        env["VAGRANT_EXPERIMENTAL"] = ",".join(features)
        env["VAGRANT_CWD"] = str(self.paths.vagrantfile.parent)
        env["VAGRANT_DOTFILE_PATH"] = str(self.dotfile_dir)
        env["VAGRANT_DEFAULT_PROVIDER"] = self.machine.provider
        env.update(self.machine.vagrant_env())
        return env

    def executable(self) -> str:
        """The ``vagrant`` python-vagrant runs, or exit 3 with the install hint."""
        exe = _import_vagrant().get_vagrant_executable()
        if not exe:
            raise PrerequisiteError(f"vagrant is not installed: {VAGRANT_INSTALL_HINT}")
        return str(exe)

    @contextmanager
    def _client(self, *, log_errors: bool = False) -> Iterator[tuple[Vagrant, Callable[[], str]]]:
        """A python-vagrant client whose stderr goes to a file (read by the second item).
        ``log_errors``: Vagrant logs its error class on stderr (``VAGRANT_LOG=error``)."""
        vagrant_mod = _import_vagrant()
        self.executable()
        fd, name = tempfile.mkstemp(prefix="provision-vagrant-", suffix=".err")
        os.close(fd)
        path = Path(name)

        def read() -> str:
            try:
                return path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                return ""

        env = dict(self.env, VAGRANT_LOG="error") if log_errors else self.env
        try:
            yield (
                vagrant_mod.Vagrant(
                    root=str(self.project_dir),
                    env=env,
                    quiet_stdout=True,
                    err_cm=vagrant_mod.make_file_cm(str(path), mode="w"),
                ),
                read,
            )
        finally:
            path.unlink(missing_ok=True)

    def _fail(self, command: str, *, failure: VagrantFailure | None, stderr: str) -> ProvisionError:
        return vagrant_error(
            command=command, failure=failure, stderr=stderr, provider=self.machine.provider
        )

    # -- long commands ---------------------------------------------------------------------

    def up(self) -> None:
        """``vagrant up --no-provision --provider=…``, its output streamed as progress."""
        log.info("$ vagrant up --no-provision --provider=%s", self.machine.provider)
        with self._client(log_errors=True) as (client, read_stderr):
            try:
                lines = client.up(
                    no_provision=True, provider=self.machine.provider, stream_output=True
                )
                for line in lines:
                    if line.strip() and _shown(line):
                        self.progress(line.rstrip())
            except subprocess.CalledProcessError:
                stderr = read_stderr()
                raise self._fail("up", failure=failure_from_log(stderr), stderr=stderr) from None
            except KeyboardInterrupt:
                raise InterruptedRunError("vagrant up was interrupted") from None

    def _call(self, command: str, call: Callable[[Vagrant], Any]) -> None:
        log.info("$ vagrant %s", command)
        self.progress(f"vagrant {command} ...")
        with self._client(log_errors=True) as (client, read_stderr):
            try:
                call(client)
            except subprocess.CalledProcessError:
                stderr = read_stderr()
                raise self._fail(command, failure=failure_from_log(stderr), stderr=stderr) from None
            except KeyboardInterrupt:
                raise InterruptedRunError(f"vagrant {command} was interrupted") from None

    def halt(self) -> None:
        self._call("halt", lambda client: client.halt())

    def destroy(self) -> None:
        self._call("destroy", lambda client: client.destroy())

    # -- captured commands -------------------------------------------------------------------

    def version(self) -> str:
        with self._client() as (client, read_stderr):
            try:
                return str(client.version())
            except subprocess.CalledProcessError:
                raise RunFailedError(
                    f"vagrant --version failed: {one_line(read_stderr())[:300]}"
                ) from None
            except Exception as exc:  # python-vagrant raises Exception on unparsable output
                raise RunFailedError(f"vagrant --version: {one_line(str(exc))[:300]}") from None

    def status(self) -> list[MachineStatus]:
        """Each machine's state in its provider's words, as ``vagrant status`` prints it."""
        with self._client() as (client, read_stderr):
            try:
                statuses = client.status()
            except subprocess.CalledProcessError as exc:
                failure = failure_from_machine_readable(exc.output)
                raise self._fail("status", failure=failure, stderr=read_stderr()) from None
        return [
            MachineStatus(
                name=str(s.name),
                state=_PYTHON_VAGRANT_RENAMES.get((s.provider, s.state), str(s.state or "")),
                provider=str(s.provider or ""),
            )
            for s in statuses
        ]

    def ssh_config(self) -> str:
        with self._client() as (client, read_stderr):
            try:
                return str(client.ssh_config())
            except subprocess.CalledProcessError:
                raise self._fail("ssh-config", failure=None, stderr=read_stderr()) from None

    def inventory(self) -> dict[str, Any]:
        return inventory_from_ssh_config(self.ssh_config())

    def run_in_guest(self, command: str) -> str:
        """Run a command in the guest (``vagrant ssh --command``) and return its stdout."""
        with self._client() as (client, read_stderr):
            try:
                return str(client.ssh(command=command)).replace("\r\n", "\n")
            except subprocess.CalledProcessError as exc:
                raise self._fail(
                    "ssh", failure=None, stderr=read_stderr() or f"exit status {exc.returncode}"
                ) from None

    def ssh(self, command: str | None = None, *, capture: bool = False) -> tuple[int, str, str]:
        """``vagrant ssh`` (or ``-c COMMAND``) on this terminal, or captured (``capture``, no
        tty); returns the exit status and, when captured, stdout and stderr. An interactive
        session needs this terminal, which python-vagrant does not hand over: it runs through
        the one subprocess helper."""
        argv = [self.executable(), "ssh"]
        if capture:
            argv.append("--no-tty")
        if command is not None:
            argv += ["-c", command]
        result = proc.run(argv=argv, env=self.env, cwd=self.project_dir, capture=capture)
        return result.returncode, result.stdout or "", result.stderr or ""


def parse_status(output: str) -> list[MachineStatus]:
    """Machines from ``vagrant status --machine-readable`` (``state`` and ``provider-name``
    records per target)."""
    machines: dict[str, dict[str, str]] = {}
    for line in output.splitlines():
        record = parse_machine_readable_line(line)
        if record is None or not record.target or not record.data:
            continue
        if record.type in ("state", "provider-name"):
            machines.setdefault(record.target, {})[record.type] = record.data[0]
    return [
        MachineStatus(
            name=name, state=info.get("state", ""), provider=info.get("provider-name", "")
        )
        for name, info in machines.items()
    ]

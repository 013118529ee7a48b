"""What the user sees: live human-readable lines, or one JSON document with ``--json``.

Human mode writes progress to stdout and warnings/errors to stderr. JSON mode writes nothing
while working (warnings still go to stderr) and then exactly one JSON object on stdout.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from provision.errors import ProvisionError
    from provision.runner import HostRecap, TaskResult
    from provision.verify import CheckOutcome, StepResult

_STATUS_WIDTH = 11
# Colour and cursor sequences (Ansible colours its text when it thinks it writes to a terminal).
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _fmt_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s"


class Output:
    """Reporter shared by all commands."""

    def __init__(
        self,
        *,
        json_mode: bool = False,
        verbosity: int = 0,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.json_mode = json_mode
        self.verbosity = verbosity
        self.out = stdout or sys.stdout
        self.err = stderr or sys.stderr
        self.warnings: list[str] = []

    @property
    def terminal(self) -> bool:
        """Whether progress goes to a terminal (then tools may colour their text)."""
        isatty = getattr(self.out, "isatty", None)
        return bool(not self.json_mode and isatty is not None and isatty())

    # -- plain lines ---------------------------------------------------------------------

    def _print(self, text: str) -> None:
        if not self.json_mode:
            print(text, file=self.out, flush=True)

    def step(self, text: str) -> None:
        """A phase starts (``==> converge``)."""
        self._print(f"==> {text}")

    def info(self, text: str) -> None:
        self._print(text)

    def detail(self, text: str) -> None:
        """Only with ``-v``."""
        if self.verbosity > 0:
            self._print(text)

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        print(f"warning: {text}", file=self.err, flush=True)

    def tool_line(self, text: str) -> None:
        """A line of a tool's own progress output (Vagrant)."""
        for line in text.splitlines():
            if line.strip():
                self._print(f"    {line.rstrip()}")

    def raw(self, text: str) -> None:
        """A tool's own text (Ansible's with ``-v``), passed through; to a file or a pipe without
        colour codes and carriage returns (Ansible writes through a pseudo-terminal)."""
        if self.json_mode:
            return
        text = text.replace("\r\n", "\n")
        if not self.terminal:
            text = _ANSI.sub("", text).replace("\r", "\n")
        self.out.write(text if text.endswith("\n") else text + "\n")
        self.out.flush()

    # -- Ansible ---------------------------------------------------------------------------

    def task(self, result: TaskResult) -> None:
        duration = f"  {_fmt_seconds(result.duration)}" if result.duration is not None else ""
        line = f"  {result.status:<{_STATUS_WIDTH}} {result.host}  {result.task}{duration}"
        if result.message:
            line += f"\n  {'':<{_STATUS_WIDTH}} {result.message}"
        self._print(line)
        if result.diff:
            self.raw(result.diff)

    def recap(
        self,
        hosts: Iterable[HostRecap],
        elapsed: float,
        *,
        check: bool = False,
        interrupted: bool = False,
    ) -> None:
        rows = list(hosts)
        title = "recap (check mode: nothing was changed)" if check else "recap"
        self._print(f"==> {title}")
        if interrupted:
            self._print("  interrupted: the run was stopped before Ansible's recap")
        elif not rows:
            self._print("  Ansible reported no host")
        width = max((len(r.host) for r in rows), default=4)
        for r in rows:
            self._print(
                f"  {r.host:<{width}}  ok={r.ok} changed={r.changed} failed={r.failed} "
                f"unreachable={r.unreachable} skipped={r.skipped}"
                + (f" rescued={r.rescued}" if r.rescued else "")
                + (f" ignored={r.ignored}" if r.ignored else "")
            )
        self._print(f"  elapsed {_fmt_seconds(elapsed)}")

    def batches(self, summary: Mapping[str, Any]) -> None:
        """The recap per rolling batch (provision.rolling.summary)."""
        for batch in summary["batches"]:
            self._print(f"  batch {batch['number']}: {', '.join(batch['hosts'])}")
        if summary["not_run"]:
            self._print(
                "  not run (a failed batch stopped the run before them): "
                + ", ".join(summary["not_run"])
            )

    # -- checks ----------------------------------------------------------------------------

    def check(self, outcome: CheckOutcome) -> None:
        line = f"  {outcome.outcome.upper():<7} {outcome.name}"
        if outcome.message and outcome.outcome != "passed":
            line += f"\n          {outcome.message}"
        self._print(line)

    def walkthrough_step(self, step: StepResult) -> None:
        mark = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}[step.outcome]
        line = f"  {mark:<7} {step.host}  {step.name:<7} {step.command}"
        if step.detail:
            line += f"  ({step.detail})"
        self._print(line)

    # -- results ---------------------------------------------------------------------------

    def table(self, rows: Iterable[Mapping[str, Any]], columns: Iterable[str]) -> None:
        cols = list(columns)
        data = [[str(r.get(c, "")) for c in cols] for r in rows]
        widths = [max([len(c)] + [len(d[i]) for d in data]) for i, c in enumerate(cols)]
        self._print("  ".join(c.upper().ljust(w) for c, w in zip(cols, widths, strict=True)))
        for d in data:
            self._print("  ".join(v.ljust(w) for v, w in zip(d, widths, strict=True)).rstrip())

    def result(self, command: str | None, exit_code: int, payload: Mapping[str, Any]) -> None:
        """The one JSON document (``--json``); nothing in human mode."""
        if not self.json_mode:
            return
        document: dict[str, Any] = {
            "command": command,
            "ok": exit_code == 0,
            "exit_code": exit_code,
        }
        document.update(payload)
        document["warnings"] = list(self.warnings)
        json.dump(document, self.out, indent=2, sort_keys=False, default=str)
        self.out.write("\n")
        self.out.flush()

    def error(self, error: ProvisionError) -> None:
        """The one line on stderr (plus the tool's own detail with ``-v``)."""
        print(f"provision: error: {error.message}", file=self.err, flush=True)
        if error.detail and self.verbosity > 0 and not self.json_mode:
            for line in error.detail.splitlines():
                print(f"  {line}", file=self.err)

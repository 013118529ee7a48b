"""What the user sees: Ansible's text without terminal codes when it goes to a file, a recap
that does not mistake an interrupted run for an empty one, warnings in the JSON document."""

from __future__ import annotations

import io
import json

from provision.output import Output
from provision.runner import HostRecap

ANSIBLE_THROUGH_A_PTY = "\x1b[0;32mok: [web1]\x1b[0m\r\n\x1b[0;33mchanged: [web1]\x1b[0m\r\n"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_text_to_a_file_has_no_colour_and_no_carriage_returns() -> None:
    out = io.StringIO()
    Output(stdout=out, verbosity=1).raw(ANSIBLE_THROUGH_A_PTY)
    assert out.getvalue() == "ok: [web1]\nchanged: [web1]\n"


def test_text_to_a_terminal_keeps_its_colours() -> None:
    out = Terminal()
    output = Output(stdout=out, verbosity=1)
    assert output.terminal
    output.raw(ANSIBLE_THROUGH_A_PTY)
    assert out.getvalue() == ANSIBLE_THROUGH_A_PTY.replace("\r\n", "\n")


def test_an_interrupted_run_is_not_an_empty_one() -> None:
    out = io.StringIO()
    Output(stdout=out).recap([], 3.0, interrupted=True)
    assert "interrupted" in out.getvalue()
    assert "no host" not in out.getvalue()
    empty = io.StringIO()
    Output(stdout=empty).recap([], 1.0)
    assert "Ansible reported no host" in empty.getvalue()
    rows = io.StringIO()
    Output(stdout=rows).recap([HostRecap("web1", ok=3, changed=1)], 1.0)
    assert "web1  ok=3 changed=1 failed=0 unreachable=0 skipped=0" in rows.getvalue()


def test_warnings_go_to_stderr_and_into_the_document() -> None:
    out, err = io.StringIO(), io.StringIO()
    output = Output(json_mode=True, stdout=out, stderr=err)
    output.warn("Ubuntu 20.04 (focal) has reached end of life for Docker (web1)")
    output.result("apply", 0, {"apply": {}})
    assert err.getvalue() == (
        "warning: Ubuntu 20.04 (focal) has reached end of life for Docker (web1)\n"
    )
    document = json.loads(out.getvalue())
    assert document["warnings"] == [
        "Ubuntu 20.04 (focal) has reached end of life for Docker (web1)"
    ]

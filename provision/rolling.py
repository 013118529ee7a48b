"""Rolling batches for ``provision apply``: Ansible's own ``serial`` and ``max_fail_percentage``
on playbooks/site.yml's play (passed as extra variables, no loop of our own), and which hosts
the batches reached."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import Any, Final

# The play keywords' variables in playbooks/site.yml.
SERIAL_VAR: Final = "provision_serial"
MAX_FAIL_VAR: Final = "provision_max_fail_percentage"
_SERIAL: Final = re.compile(r"^([1-9][0-9]*)(%?)$")


def serial_arg(text: str) -> str:
    """``--serial``: a number of hosts per batch (2) or a percentage of them (25%)."""
    match = _SERIAL.match(text.strip())
    if not match or (match.group(2) and int(match.group(1)) > 100):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a batch size: expected a number of hosts (2) or a percentage of"
            " them from 1% to 100% (25%)"
        )
    return match.group(0)


def max_fail_arg(text: str) -> int:
    """``--max-fail-percentage``: the whole percentage of a batch that may fail (0-100)."""
    value = text.strip()
    if not value.isdigit() or int(value) > 100:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a percentage: expected a whole number from 0 to 100"
        )
    return int(value)


def play_vars(serial: str | None, max_fail_percentage: int | None) -> dict[str, Any]:
    """The extra variables that set the play's keywords (none: every host at once)."""
    found: dict[str, Any] = {}
    if serial is not None:
        found[SERIAL_VAR] = serial
    if max_fail_percentage is not None:
        found[MAX_FAIL_VAR] = max_fail_percentage
    return found


def summary(batches: Sequence[Sequence[str]], hosts: Sequence[str]) -> dict[str, Any]:
    """Which hosts each batch ran (in the inventory's order of HOSTS, not the order their
    results came in), and the hosts no batch reached (a failed batch stopped the run first)."""
    rank = {h: i for i, h in enumerate(hosts)}
    ordered = [sorted(b, key=lambda h: (rank.get(h, len(rank)), h)) for b in batches]
    ran = [h for batch in ordered for h in batch]
    return {
        "batches": [{"number": i, "hosts": b} for i, b in enumerate(ordered, start=1)],
        "ran": ran,
        "not_run": [h for h in hosts if h not in ran],
    }

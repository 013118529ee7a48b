"""``provision apply --serial 2 --max-fail-percentage 0`` on a fleet of four test-bed hosts where
one host of the first batch fails for a real reason (a daemon.json that is not a JSON object,
which the role's preflight refuses): the second batch is untouched, the exit status is 1, and
``--json`` says which hosts each batch ran and which none reached.

Needs the test bed (``python -m testbed up``)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.bed import bed_role_vars, ready_status, run_provision, run_testbed, ssh_argv

pytestmark = pytest.mark.integration


def sh(host: dict[str, Any], command: str) -> str:
    argv = [
        *ssh_argv(host["address"], host["identity_file"], host["user"]),
        "sudo sh -c " + shlex.quote(command),
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[dict[str, Any]]]]:
    """Four focal hosts, in inventory order, and their inventory file."""
    ready_status()
    names = [f"up-roll{os.getpid() % 100000}-{i}" for i in range(1, 5)]
    proc = run_testbed("hosts", "start", *(f"{n}=focal" for n in names))
    try:
        assert proc.returncode == 0, proc.stderr[-2000:]
        started = {h["name"]: h for h in json.loads(proc.stdout)}
        listing = run_testbed("hosts", "inventory", *names, timeout=120)
        assert listing.returncode == 0, listing.stderr
        path = tmp_path_factory.mktemp("rolling") / "fleet.yml"
        path.write_text(listing.stdout, encoding="utf-8")
        order = list(json.loads(listing.stdout)["all"]["hosts"])
        assert sorted(order) == sorted(names)
        yield path, [started[n] for n in order]
    finally:
        run_testbed("hosts", "stop", *names, timeout=300)


def test_a_failed_first_batch_leaves_the_second_untouched(
    fleet: tuple[Path, list[dict[str, Any]]],
) -> None:
    inventory, hosts = fleet
    broken = hosts[1]
    sh(broken, "mkdir -p /etc/docker && echo '[1, 2]' > /etc/docker/daemon.json")
    varsfile = inventory.parent / "vars.json"
    varsfile.write_text(json.dumps(bed_role_vars()), encoding="utf-8")

    proc = run_provision(
        "--json", "apply", "-i", str(inventory), "-e", f"@{varsfile}",
        "--serial", "2", "--max-fail-percentage", "0", cwd=inventory.parent,
    )  # fmt: skip

    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    document = json.loads(proc.stdout)
    apply = document["apply"]
    first, second = [h["name"] for h in hosts[:2]], [h["name"] for h in hosts[2:]]
    assert [b["hosts"] for b in apply["batches"]] == [first]
    assert apply["ran"] == first
    assert apply["not_run"] == second
    assert any(f["host"] == broken["name"] for f in apply["failures"])
    for host in hosts[2:]:
        assert (
            sh(host, "test -e /etc/apt/sources.list.d/docker.sources && echo yes || echo no")
            == "no"
        )
        assert sh(host, "dpkg-query -W -f '${db:Status-Status}' docker-ce 2>/dev/null || true") != (
            "installed"
        )
    # The broken host's file is as it was: the role stopped before changing it.
    assert sh(broken, "cat /etc/docker/daemon.json") == "[1, 2]"

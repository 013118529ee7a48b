"""How the ``docker`` role refreshes apt's lists before installing (docker_apt_refresh), on real
focal hosts with real apt against the Ubuntu archive and the test bed's Docker repository:

- lists that are current (``apt-get update`` just before): Docker's source alone is read; not one
  of the distribution's list files is fetched again, and the marks of apt's last full refresh
  (the lists directory's mtime) stay;
- the image's lists (only the release pocket was ever fetched: no focal-updates): every list;
- lists that look current but are behind (an older archive state, made from current lists:
  libseccomp2's updates not yet in focal-updates/-security, whose Release files name the files as
  they are): apt's solver cannot install containerd.io (libseccomp2 >= 2.5.0) from them, so the
  refresh falls back to every list, and the install gets libseccomp2 2.5;
- no lists at all: every list.

Each converges, installs Docker, and a re-run changes nothing and refreshes nothing. Another
process holding apt's lock is waited for, for both kinds of refresh.
Needs the test bed (``python -m testbed up``).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provision.paths import data_paths
from provision.runner import RunResult, run_playbook
from tests.bed import ready_status, run_testbed, testbed_vars
from tests.integration.test_role_docker import Host, start

pytestmark = pytest.mark.integration

REFRESH_TASK = "Refresh apt's lists (Docker's source alone when the distribution's are current)"
RETRY_TASK = "Refresh every list after an install that failed on Docker's lists alone"
LISTS = "/var/lib/apt/lists"
# The distribution's list files and the lists directory, with their mtimes in ns.
SNAPSHOT = (
    f"stat -c '%n %.9Y' {LISTS}; find {LISTS} -maxdepth 1 -type f ! -name '10.213.7.1*'"
    " ! -name lock -printf '%p %T@\\n' | sort"
)
# Makes current focal lists into those of an older archive state, consistently: libseccomp2's
# updates gone from focal-updates and focal-security ("behind"), or their file renamed to one
# the archive does not have ("gone"); each suite's InRelease names the lists' hashes as they now
# are (apt then fetches them again on a full refresh, as it would a newer state).
BEHIND = r"""
import hashlib, os, re, sys, time
def edit(stanza):
    if not stanza.startswith("Package: libseccomp2\n"):
        return stanza
    if sys.argv[1] == "gone":
        return re.sub(r"^Filename: .*$", "Filename: pool/main/libs/libseccomp/gone.deb", stanza,
                      flags=re.M)
    return None
for suite in ("focal-updates", "focal-security"):
    base = "/var/lib/apt/lists/archive.ubuntu.com_ubuntu_dists_" + suite
    with open(base + "_main_binary-amd64_Packages", encoding="utf-8") as handle:
        stanzas = handle.read().split("\n\n")
    data = "\n\n".join(e for e in map(edit, stanzas) if e is not None).encode()
    with open(base + "_main_binary-amd64_Packages", "wb") as handle:
        handle.write(data)
    sums = {len(hashlib.new(a).hexdigest()): hashlib.new(a, data).hexdigest()
            for a in ("md5", "sha1", "sha256", "sha512")}
    with open(base + "_InRelease", encoding="utf-8") as handle:
        text = handle.read()
    entry = lambda m: " %s %16d main/binary-amd64/Packages" % (sums[len(m.group(1))], len(data))
    text = re.sub(r"^ ([0-9a-f]+) +\d+ main/binary-amd64/Packages$", entry, text, flags=re.M)
    with open(base + "_InRelease", "w", encoding="utf-8") as handle:
        handle.write(text)
    os.utime(base + "_InRelease", (time.time() - 2 * 86400,) * 2)
"""
# Holds apt's lists lock (fcntl, as apt takes it) until an `apt-get update` has tried and failed
# to take it (at most 600 s), then writes whether one did.
LOCK_HOLDER = r"""
import fcntl, os, time
lock = open("/var/lib/apt/lists/lock", "a")
fcntl.lockf(lock, fcntl.LOCK_EX)
open("/run/nr-lock-held", "w").close()
seen, end = False, time.time() + 600
while not seen and time.time() < end:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as handle:
                seen = seen or handle.read().startswith(b"apt-get\0update")
        except OSError:
            pass
    time.sleep(0.01)
open("/run/nr-lock-seen", "w").write(str(seen))
"""
SCENARIOS = {
    # name: (prepare the host's lists, the refresh expected, a part of its reason, hold the lock)
    "current": ("apt-get update -q", "docker", "the distribution's lists are current", True),
    "image": ("true", "full", "apt has never fetched 2 of the distribution's suites", False),
    "behind": (
        "apt-get update -q && python3 /root/behind.py behind",
        "full",
        "containerd.io : Depends: libseccomp2 (>= 2.5.0)",
        False,
    ),
    "empty": (f"rm -rf {LISTS}/*", "full", "apt has never fetched 3 of", True),
    "gone": (
        "apt-get update -q && python3 /root/behind.py gone",
        "docker",
        "the distribution's lists are current",
        False,
    ),
}


def converge(
    host: Host, extravars: dict[str, Any], artifacts: Path
) -> tuple[RunResult, dict[str, Any]]:
    """One run of the site playbook; its result and docker_apt_refresh's results by task (those
    that ran), read from ansible-runner's job events."""
    paths = data_paths()
    kept = tempfile.tempdir
    tempfile.tempdir = str(artifacts)  # where run_playbook keeps its private data dir
    try:
        result = run_playbook(
            paths=paths,
            playbook=paths.site_playbook,
            inventory=host.inventory,
            extravars=extravars,
            keep_artifacts=True,
        )
    finally:
        tempfile.tempdir = kept
    refresh = {}
    for path in sorted(artifacts.glob("provision-ansible-*/artifacts/*/job_events/*.json")):
        event = json.loads(path.read_text(encoding="utf-8"))
        data = event.get("event_data") or {}
        if event.get("event") == "runner_on_ok" and data.get("task") in (REFRESH_TASK, RETRY_TASK):
            refresh[data["task"]] = data["res"]
    for path in artifacts.glob("provision-ansible-*"):
        shutil.rmtree(path)
    return result, refresh


@pytest.fixture(scope="module")
def bed_vars() -> dict[str, Any]:
    """The role's variables pointing at the test bed's repository and mirror."""
    ready_status()
    return testbed_vars()


@pytest.fixture
def host(
    request: pytest.FixtureRequest, bed_vars: dict[str, Any], tmp_path: Path
) -> Iterator[Host]:
    """A fresh focal host, named after the scenario (prefix nr-)."""
    started = start(f"nr-{request.node.callspec.id}-{os.getpid() % 100000}", tmp_path)
    try:
        yield started
    finally:
        run_testbed("hosts", "stop", started.name, timeout=300)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_refresh_reads_no_more_than_the_install_needs(
    scenario: str,
    host: Host,
    bed_vars: dict[str, Any],
    tmp_path: Path,
) -> None:
    prepare, expected, reason, hold_lock = SCENARIOS[scenario]
    host.put("/root/behind.py", BEHIND.encode())
    host.put("/root/lock.py", LOCK_HOLDER.encode())
    host.sh(prepare)
    before = host.sh(SNAPSHOT)
    if hold_lock:
        host.sh("setsid python3 /root/lock.py >/dev/null 2>&1 < /dev/null &")
        host.sh(
            "for i in $(seq 100); do test -e /run/nr-lock-held && exit 0; sleep 0.1; done; exit 1"
        )

    first, refreshes = converge(host, bed_vars, tmp_path)

    failures = "; ".join(f"{f.task}: {f.message}" for f in first.failures)
    assert first.status == "successful", failures or first.error_lines
    assert REFRESH_TASK in refreshes, "the refresh did not run"
    refresh = refreshes[REFRESH_TASK]
    assert refresh["refreshed"] == expected, refresh["why"]
    assert reason in refresh["why"]
    assert host.sh("dpkg-query -W -f '${db:Status-Status}' docker-ce containerd.io") == (
        "installedinstalled"
    )
    if hold_lock:
        assert host.sh("cat /run/nr-lock-seen") == "True"
        assert refresh["lock_waits"] >= 1
    if scenario == "gone":
        # The install failed on Docker's lists alone: every list, and the install once more.
        assert refreshes[RETRY_TASK]["refreshed"] == "full"
        assert "the install failed after Docker's source alone" in refreshes[RETRY_TASK]["why"]
    else:
        assert RETRY_TASK not in refreshes
    if scenario == "current":
        # Not one of the distribution's lists was fetched again, and the marks of the last full
        # refresh stay: the next run still knows how old the distribution's lists are.
        assert host.sh(SNAPSHOT) == before
        assert "full" not in refresh["seconds"]
    if scenario == "behind":
        version = host.sh("dpkg-query -W -f '${Version}' libseccomp2")
        host.sh(f"dpkg --compare-versions {shlex.quote(version)} ge 2.5.0")

    again, refreshes = converge(host, bed_vars, tmp_path)
    assert again.status == "successful"
    assert again.changed == 0
    assert refreshes == {}

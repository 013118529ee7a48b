"""How the ``docker`` role reads apt's lists again before installing (docker_apt_install), on
real focal hosts with real apt against the Ubuntu archive and the test bed's Docker repository:

- lists that are current (``apt-get update`` just before): Docker's source alone is read; not one
  of the distribution's list files is fetched again, and the marks of apt's last full refresh
  (the lists directory's mtime) stay;
- the image's lists (only the release pocket was ever fetched: no focal-updates): every list;
- lists that look current but are behind (an older archive state, made from current lists:
  libseccomp2's updates not yet in focal-updates/-security, whose Release files name the files as
  they are): Docker's source alone is read, apt cannot install containerd.io (libseccomp2 >=
  2.5.0) from them, and the install, having changed nothing, gets every list and one more try,
  which installs libseccomp2 2.5;
- lists naming a libseccomp2 file the archive does not have ("gone"): the same fallback, after
  apt failed to fetch it;
- no lists at all: every list.

Each converges, installs Docker, and a re-run changes nothing and refreshes nothing. Another
process holding apt's lock is waited for, for both kinds of refresh.
Needs the test bed (``python -m testbed up``).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provision.paths import data_paths
from provision.runner import RunResult, TaskResult, run_playbook
from tests.bed import bed_role_vars, ready_status, run_testbed
from tests.integration.test_role_docker import Host, start

pytestmark = pytest.mark.integration

INSTALL_TASK = "Install the Docker packages (apt's lists read again first when the plan says so)"
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
# Holds apt's lists lock (fcntl, as apt takes it) until an `apt-get update` that refreshes has
# tried and failed to take it (at most 600 s), then writes whether one did.
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
                argv = handle.read()
            # A refresh, not the reading of what it would fetch (--print-uris takes no lock).
            seen = seen or argv.startswith(b"apt-get\0update") and b"--print-uris" not in argv
        except OSError:
            pass
    time.sleep(0.01)
open("/run/nr-lock-seen", "w").write(str(seen))
# Held a little longer: apt-get, seen starting, must reach the lock while it is still taken
# (on a loaded machine it can get there only after a release on sight).
time.sleep(3)
"""
SCENARIOS = {
    # name: (prepare the host's lists, the first refresh, a part of its reason, a part of why the
    # install was tried again after every list (None: it was not), hold the lock)
    "current": ("apt-get update -q", "docker", "the distribution's lists are current", None, True),
    "image": ("true", "full", "apt has never fetched 2 of the distribution's suites", None, False),
    "behind": (
        "apt-get update -q && python3 /root/behind.py behind",
        "docker",
        "the distribution's lists are current",
        "containerd.io : Depends: libseccomp2 (>= 2.5.0)",
        False,
    ),
    "empty": (f"rm -rf {LISTS}/*", "full", "apt has never fetched 3 of", None, True),
    "gone": (
        "apt-get update -q && python3 /root/behind.py gone",
        "docker",
        "the distribution's lists are current",
        "gone.deb",
        False,
    ),
}


def converge(host: Host, extravars: dict[str, Any]) -> tuple[RunResult, dict[str, Any] | None]:
    """One run of the site playbook; its result and docker_apt_install's result (None when it did
    not run or failed), as provision's runner reports each task."""
    installs: list[dict[str, Any]] = []

    def on_task(task: TaskResult) -> None:
        if task.task.endswith(INSTALL_TASK) and task.status in ("ok", "changed"):
            installs.append(dict(task.result))

    paths = data_paths()
    result = run_playbook(
        paths=paths,
        playbook=paths.site_playbook,
        inventory=host.inventory,
        extravars=extravars,
        on_task=on_task,
    )
    assert len(installs) <= 1
    return result, (installs[0] if installs else None)


@pytest.fixture(scope="module")
def bed_vars() -> dict[str, Any]:
    """The role's variables pointing at the test bed's repository and mirror."""
    ready_status()
    return bed_role_vars()


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
) -> None:
    prepare, expected, reason, retried, hold_lock = SCENARIOS[scenario]
    host.put("/root/behind.py", BEHIND.encode())
    host.put("/root/lock.py", LOCK_HOLDER.encode())
    host.sh(prepare)
    before = host.sh(SNAPSHOT)
    if hold_lock:
        host.sh("setsid python3 /root/lock.py >/dev/null 2>&1 < /dev/null &")
        host.sh(
            "for i in $(seq 100); do test -e /run/nr-lock-held && exit 0; sleep 0.1; done; exit 1"
        )

    first, install = converge(host, bed_vars)

    failures = "; ".join(f"{f.task}: {f.message}" for f in first.failures)
    assert first.status == "successful", failures or first.error_lines
    assert install is not None, "the install did not run"
    assert install["refreshed"] == expected, install["why"]
    assert reason in install["why"]
    assert host.sh("dpkg-query -W -f '${db:Status-Status}' docker-ce containerd.io") == (
        "installedinstalled"
    )
    assert {"docker-ce", "containerd.io"} <= set(install["installed"])
    if hold_lock:
        assert host.sh("cat /run/nr-lock-seen") == "True"
        assert install["lock_waits"] >= 1
    if retried is None:
        assert install["retried"] == ""
    else:
        # The install failed on Docker's lists alone, having changed nothing: every list, and
        # the install once more.
        assert retried in install["retried"]
        assert install["seconds"]["full"] > 0
    if scenario == "current":
        # Not one of the distribution's lists was fetched again, and the marks of the last full
        # refresh stay: the next run still knows how old the distribution's lists are.
        assert host.sh(SNAPSHOT) == before
        assert "full" not in install["seconds"]
    if scenario == "behind":
        version = host.sh("dpkg-query -W -f '${Version}' libseccomp2")
        host.sh(f"dpkg --compare-versions {shlex.quote(version)} ge 2.5.0")

    again, install = converge(host, bed_vars)
    assert again.status == "successful"
    assert again.changed == 0
    assert install is None


def test_a_docker_version_glob_installs_the_newest_match_and_holds_it(
    bed_vars: dict[str, Any], tmp_path: Path
) -> None:
    """docker_version "5:*" (a glob apt-get does not take) is resolved from apt's lists; one that
    matches nothing fails before anything is installed; an empty docker_version releases the
    hold."""
    started = start(f"nr-version-{os.getpid() % 100000}", tmp_path)
    engine = "docker-ce docker-ce-cli"
    try:
        none, install = converge(started, {**bed_vars, "docker_version": "5:99.*"})
        assert none.status == "failed"
        assert install is None
        messages = " ".join(f.message for f in none.failures)
        assert "no version in apt's lists matches docker-ce=5:99.*" in messages
        states = started.sh(f"dpkg-query -W -f '${{db:Status-Status}} ' {engine} || true")
        assert set(states.split()) <= {"not-installed"}

        pinned, install = converge(started, {**bed_vars, "docker_version": "5:*"})
        assert pinned.status == "successful", [f.message for f in pinned.failures]
        assert install is not None
        offered = started.sh("apt-cache madison docker-ce | cut -d'|' -f2 | tr -d ' ' | head -1")
        assert offered.startswith("5:")
        versions = started.sh(f"dpkg-query -W -f '${{Version}} ' {engine}")
        assert versions.split() == [offered, offered]
        assert started.sh(f"dpkg --get-selections {engine}").split() == [
            "docker-ce",
            "hold",
            "docker-ce-cli",
            "hold",
        ]

        again, install = converge(started, {**bed_vars, "docker_version": "5:*"})
        assert again.status == "successful"
        assert again.changed == 0

        released, _ = converge(started, bed_vars)
        assert released.status == "successful"
        assert released.changed >= 1
        assert "hold" not in started.sh(f"dpkg --get-selections {engine}")
    finally:
        run_testbed("hosts", "stop", started.name, timeout=300)

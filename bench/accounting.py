"""CPU and memory accounting for bench/: what a run cost the controller and the hosts.

The controller's share is every process the measured command started and waited for
(``RUSAGE_CHILDREN``: provision, its ansible-core probe, ansible-playbook, its workers and their
ssh clients) plus the ssh masters it left running (ControlPersist detaches them, so no rusage
reaches us: their /proc counters are read before and after). A host's share is its container's
cgroup CPU time. Memory is read from the hosts' memory cgroups (v1 and v2).
"""

from __future__ import annotations

import os
import resource
import subprocess
from dataclasses import dataclass
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")
TICK = os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ssh_masters_cpu(control_dir: Path) -> float:
    """CPU seconds of the ssh masters whose control sockets live in ``control_dir`` (their
    command line reads ``ssh: <control path> [mux]``)."""
    total = 0.0
    marker = str(control_dir).encode()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if marker not in (proc / "cmdline").read_bytes():
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
    return total


def container_ids(names: list[str]) -> list[str]:
    if not names:
        return []
    probe = subprocess.run(
        ["docker", "inspect", "-f", "{{.Id}}", *names],
        capture_output=True,
        text=True,
        check=True,
    )
    return probe.stdout.split()


def _cgroup_dir(controller: str, container_id: str) -> Path | None:
    for candidate in (
        CGROUP / controller / "docker" / container_id,  # v1, cgroupfs driver
        CGROUP / "system.slice" / f"docker-{container_id}.scope",  # v2, systemd driver
        CGROUP / "docker" / container_id,  # v2, cgroupfs driver
    ):
        if candidate.is_dir():
            return candidate
    return None


def hosts_cpu(ids: list[str]) -> float | None:
    """CPU seconds the containers have used so far (None where the cgroups are not readable)."""
    total = 0.0
    for container_id in ids:
        v1 = _cgroup_dir("cpuacct", container_id)
        if v1 is not None and (v1 / "cpuacct.usage").exists():
            total += int((v1 / "cpuacct.usage").read_text()) / 1e9
            continue
        v2 = _cgroup_dir("", container_id)
        if v2 is None or not (v2 / "cpu.stat").exists():
            return None
        stat = dict(line.split() for line in (v2 / "cpu.stat").read_text().splitlines())
        total += int(stat["usage_usec"]) / 1e6
    return total


@dataclass
class Memory:
    """Memory the hosts hold, in MiB: anonymous (processes, tmpfs) and page cache."""

    hosts: int
    anon_mib: float
    cache_mib: float

    def per_host(self) -> dict[str, float]:
        n = max(self.hosts, 1)
        return {
            "anon_mib_per_host": round(self.anon_mib / n, 1),
            "cache_mib_per_host": round(self.cache_mib / n, 1),
            "anon_mib_total": round(self.anon_mib),
            "cache_mib_total": round(self.cache_mib),
        }


def hosts_memory(ids: list[str]) -> Memory | None:
    anon = cache = 0
    for container_id in ids:
        v1 = _cgroup_dir("memory", container_id)
        if v1 is not None and (v1 / "memory.stat").exists():
            stat = _stat(v1 / "memory.stat")
            anon += stat["total_rss"] + stat["total_shmem"]
            cache += stat["total_cache"] - stat["total_shmem"]
            continue
        v2 = _cgroup_dir("", container_id)
        if v2 is None or not (v2 / "memory.stat").exists():
            return None
        stat = _stat(v2 / "memory.stat")
        anon += stat["anon"] + stat["shmem"]
        cache += stat["file"] - stat["shmem"]
    return Memory(len(ids), anon / 2**20, cache / 2**20)


def _stat(path: Path) -> dict[str, int]:
    return {
        key: int(value) for key, value in (line.split() for line in path.read_text().splitlines())
    }


def machine_memory_used_mib() -> float:
    """The machine's MemTotal - MemAvailable: what its processes and kernel hold."""
    lines = Path("/proc/meminfo").read_text().splitlines()
    info = {line.split(":")[0]: int(line.split()[1]) for line in lines}
    return (info["MemTotal"] - info["MemAvailable"]) / 1024

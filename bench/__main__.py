"""python -m bench: how fast a host converges, how cheap a re-run is, how it scales to a fleet.

Runs side by side on the test bed and writes bench/results/latest.json and latest.md. These
machines are noisy (2 shared cores): every figure is a median of several runs with its min-max,
targets are ratios against a floor measured in the same run, and the machine's load is recorded
with each figure. Besides wall time, each run's controller CPU (all processes it started, and
the ssh masters it keeps) and the hosts' CPU are measured, and one extra run per no-op figure
records where the time goes (callback_plugins/bench_profile.py).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bench import accounting, profile
from bench.report import markdown
from testbed.hosts import ssh_argv

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = REPO / "bench" / "results"
FIGURES = ("startup", "noop", "fresh", "fleet", "knobs")
DEFAULT_FIGURES = ("startup", "noop", "fresh", "fleet")
FLEET = 50

# Targets (issue 12), as ratios against the floor measured in the same run.
NOOP_TARGET = 2.0
FLEET_NOOP_TARGET = 2.5
FRESH_TARGET = 0.90

# Settings a fleet run might want: each one changed from ansible.cfg, as an environment
# override (`knobs`, on the fleet).
KNOBS: dict[str, dict[str, str]] = {
    "ansible.cfg as shipped": {},
    "forks 25": {"ANSIBLE_FORKS": "25"},
    "strategy free": {"ANSIBLE_STRATEGY": "free"},
    "strategy host_pinned": {"ANSIBLE_STRATEGY": "host_pinned"},
    "ssh with -C": {"ANSIBLE_SSH_ARGS": "-C -o ControlMaster=auto -o ControlPersist=600s"},
    "pipelining off": {"ANSIBLE_PIPELINING": "false"},
    "no ControlPersist": {"ANSIBLE_SSH_ARGS": "-o ControlMaster=no"},
    "interpreter discovery (auto_silent)": {"ANSIBLE_PYTHON_INTERPRETER": "auto_silent"},
    "internal_poll_interval 0.01": {"ANSIBLE_INTERNAL_POLL_INTERVAL": "0.01"},
    "variables that use facts (the test bed's URL)": {"BENCH_VARS": "facts"},
}


def ubuntu_vars(variables: Mapping[str, Any]) -> dict[str, Any]:
    """The test bed's role variables for a fleet of Ubuntu hosts: no fact in them."""
    found = dict(variables)
    url = str(found["docker_apt_repository_url"])
    found["docker_apt_repository_url"] = url.replace("{{ ansible_distribution | lower }}", "ubuntu")
    return found


def mitogen_knob(lib: Path) -> dict[str, str]:
    """mitogen's linear strategy from ``lib`` (``pip install --target LIB mitogen``). Its ssh
    connection ignores ansible_ssh_common_args, so the test bed's unpinned host keys are
    accepted through host_key_checking instead."""
    return {
        "PYTHONPATH": str(lib),
        "ANSIBLE_STRATEGY_PLUGINS": str(lib / "ansible_mitogen" / "plugins" / "strategy"),
        "ANSIBLE_STRATEGY": "mitogen_linear",
        "ANSIBLE_HOST_KEY_CHECKING": "false",
    }


def load() -> float:
    return round(os.getloadavg()[0], 2)


@dataclass
class Run:
    """One measured command: wall seconds; CPU seconds of the controller (everything it ran,
    ssh masters included), of the ssh masters alone, and of the hosts."""

    wall: float
    controller_cpu: float
    masters_cpu: float
    hosts_cpu: float | None


class Bench:
    def __init__(self, runs: int, workdir: Path, prefix: str) -> None:
        self.runs = runs
        self.workdir = workdir
        self.prefix = prefix
        # Our own ssh masters: their CPU is counted, and they are closed at the end.
        self.control_dir = workdir / "cp"
        self.control_dir.mkdir()
        self.env = {
            "PATH": f"{BIN}:{os.environ['PATH']}",
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.control_dir),
        }
        self.vars = json.loads(self.testbed("vars"))
        # The test bed names the repository with ansible_distribution in it (one URL for every
        # release it serves), which needs facts; every bench host is Ubuntu, so the bench's
        # inventory names Ubuntu's, as an ops team's inventory of such a fleet does. The test
        # bed's own form is measured too (`knobs`: variables that use facts).
        self.fact_vars_file = workdir / "testbed-vars.json"
        self.fact_vars_file.write_text(json.dumps(self.vars))
        self.vars_file = workdir / "fleet-vars.json"
        self.vars_file.write_text(json.dumps(ubuntu_vars(self.vars)))
        self.status = json.loads(self.testbed("status"))

    def sh(
        self, argv: list[str], *, env: Mapping[str, str] | None = None, timeout: float = 3600
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            argv,
            cwd=REPO,
            env={**os.environ, **self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{shlex.join(argv)} failed ({result.returncode}):\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def testbed(self, *args: str) -> str:
        return self.sh([sys.executable, "-m", "testbed", *args]).stdout

    def measure(self, action: Callable[[], object], hosts: list[str]) -> Run:
        ids = accounting.container_ids([f"ptb-{h}" for h in hosts])
        children = accounting.children_cpu()
        masters = accounting.ssh_masters_cpu(self.control_dir)
        hosts_before = accounting.hosts_cpu(ids)
        start = time.perf_counter()
        action()
        wall = time.perf_counter() - start
        children = accounting.children_cpu() - children
        masters = accounting.ssh_masters_cpu(self.control_dir) - masters
        hosts_after = accounting.hosts_cpu(ids)
        hosts_cpu = (
            None if hosts_after is None or hosts_before is None else hosts_after - hosts_before
        )
        return Run(wall, children + masters, masters, hosts_cpu)

    def close(self) -> None:
        """Close the ssh masters this run left (ControlPersist would keep them 10 minutes)."""
        for socket in self.control_dir.iterdir():
            subprocess.run(
                ["ssh", "-o", f"ControlPath={socket}", "-O", "exit", "bench-host"],
                capture_output=True,
                timeout=30,
                check=False,
            )

    # -- hosts --------------------------------------------------------------------------------
    def names(self, kind: str, count: int) -> list[str]:
        return [f"{self.prefix}{kind}{i:02d}" for i in range(count)]

    def start(self, names: list[str], release: str = "focal") -> Path:
        # A fresh host each time: stop any leftover of the same name first.
        self.testbed("hosts", "stop", *names)
        self.testbed("hosts", "start", *(f"{n}={release}" for n in names))
        inventory = self.workdir / f"inv-{names[0]}-{len(names)}.yml"
        inventory.write_text(self.testbed("hosts", "inventory", *names))
        return inventory

    def stop(self, names: list[str]) -> None:
        self.testbed("hosts", "stop", *names)

    # -- the things measured -------------------------------------------------------------------
    def apply(
        self, inventory: Path, limit: str | None = None, env: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        # A knob may ask for the test bed's variables as printed (BENCH_VARS=facts).
        facts = (env or {}).get("BENCH_VARS") == "facts"
        argv = [
            str(BIN / "provision"),
            "--json",
            "apply",
            "-i",
            str(inventory),
            "-e",
            f"@{self.fact_vars_file if facts else self.vars_file}",
        ]
        if limit:
            argv += ["--limit", limit]
        return dict(json.loads(self.sh(argv, env=env).stdout))

    def ping(
        self, inventory: Path, limit: str | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        argv = [str(BIN / "ansible-playbook"), "-i", str(inventory), "bench/ping.yml"]
        if limit:
            argv += ["--limit", limit]
        self.sh(argv, env=env)

    def floor(self, inventory: Path, name: str, trace: list[str] | None = None) -> None:
        """Docker's steps (floor.sh) on the host, each command traced with its start time."""
        host = json.loads(inventory.read_text())["all"]["hosts"][name]
        repo = f"{self.status['repository']}/linux/ubuntu"
        # The same mirror settings the role writes from the test bed's variables.
        daemon = json.dumps(
            {
                "registry-mirrors": self.vars["docker_registry_mirrors"],
                "insecure-registries": self.vars["docker_insecure_registries"],
            }
        )
        script = (REPO / "bench" / "floor.sh").read_text()
        ssh = ssh_argv(
            host["ansible_host"],
            host["ansible_ssh_private_key_file"],
            host["ansible_user"],
            host["ansible_port"],
        )
        # Each command traced with the time it starts (bash's $EPOCHREALTIME in PS4: no
        # process per line; root's bash ignores PS4 from the environment, so it is set inside).
        tracer = "PS4='+ $EPOCHREALTIME '; set -x; . /tmp/floor.sh \"$@\"; set +x"
        remote = (
            f"cat > /tmp/floor.sh && sudo bash -c {shlex.quote(tracer)} floor "
            f"{shlex.quote(repo)} focal {shlex.quote(daemon)}"
        )
        result = subprocess.run(
            [*ssh, remote], input=script, capture_output=True, text=True, timeout=1800, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"floor script failed: {result.stderr[-3000:]}")
        if trace is not None:
            trace.append(result.stderr)

    def profiled(
        self, action: Callable[[Mapping[str, str]], object], hosts: list[str], label: str
    ) -> dict[str, Any]:
        """One extra run of ``action`` with the timing callback: where its time goes."""
        events = self.workdir / f"profile-{label}.jsonl"
        events.unlink(missing_ok=True)
        started = time.time()
        run = self.measure(lambda: action(profile.env(events)), hosts)
        return breakdown(events, started, run)

    def noop_vs_ping(
        self,
        name: str,
        *,
        inventory: Path,
        hosts: list[str],
        target: float | None,
        env: Mapping[str, str] | None = None,
        breakdown: bool = True,
    ) -> dict[str, Any]:
        """No-op re-runs against ping runs on the same hosts, interleaved."""
        limit = ",".join(hosts)
        load_before = load()
        ours, floor = [], []
        for _ in range(self.runs):
            ours.append(self.measure(lambda: self.apply(inventory, limit, env), hosts))
            floor.append(self.measure(lambda: self.ping(inventory, limit, env), hosts))
        row = figure(name, len(hosts), ours, floor, target)
        row["load"] = [load_before, load()]
        if breakdown:
            overrides = dict(env or {})
            row["breakdown"] = {
                "provision": self.profiled(
                    lambda extra: self.apply(inventory, limit, {**overrides, **extra}),
                    hosts,
                    f"noop-{len(hosts)}",
                ),
                "ping": self.profiled(
                    lambda extra: self.ping(inventory, limit, {**overrides, **extra}),
                    hosts,
                    f"ping-{len(hosts)}",
                ),
            }
        return row

    # -- scenarios -----------------------------------------------------------------------------
    def fresh_one_host(self, lists_current: bool) -> dict[str, Any]:
        """A fresh host each run, converged by provision and by Docker's steps. The image's
        apt lists are stale (only the release pocket, from the image build); with
        ``lists_current`` both hosts run ``apt-get update`` first, untimed, like a server whose
        apt timer has run."""
        ours, floor = [], []
        load_before = load()
        steps: list[dict[str, Any]] = []
        found: dict[str, Any] = {}
        kind = "current" if lists_current else "stale"
        for run in range(self.runs):
            names = [f"{self.prefix}p{run}", f"{self.prefix}f{run}"]
            inventory = self.start(names)
            if lists_current:
                for name in names:
                    self.on_host(inventory, name, "sudo apt-get update -qq")
            order = [("p", names[0]), ("f", names[1])]
            for side, name in order if run % 2 == 0 else reversed(order):
                if side == "p":
                    # The callback costs a few milliseconds against a converge of seconds.
                    events = self.workdir / f"profile-fresh-{kind}-{run}.jsonl"
                    started = time.time()
                    result = self.measure(
                        partial(self.apply, inventory, name, profile.env(events)), [name]
                    )
                    found = breakdown(events, started, result)
                    ours.append(result)
                else:
                    trace: list[str] = []
                    floor.append(self.measure(partial(self.floor, inventory, name, trace), [name]))
                    steps = floor_steps(trace[0])
            self.stop(names)
        title = f"fresh converge ({kind} apt lists) vs Docker's documented steps"
        row = figure(title, 1, ours, floor, FRESH_TARGET)
        row["load"] = [load_before, load()]
        row["breakdown"] = {"provision": found}
        row["floor_steps"] = steps
        return row

    def on_host(self, inventory: Path, name: str, command: str) -> str:
        host = json.loads(inventory.read_text())["all"]["hosts"][name]
        ssh = ssh_argv(
            host["ansible_host"],
            host["ansible_ssh_private_key_file"],
            host["ansible_user"],
            host["ansible_port"],
        )
        result = subprocess.run(
            [*ssh, command], capture_output=True, text=True, timeout=1800, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{command} on {name} failed: {result.stderr[-3000:]}")
        return result.stdout

    def noop_one_host(self) -> dict[str, Any]:
        names = self.names("noop", 1)
        inventory = self.start(names)
        self.apply(inventory)
        row = self.noop_vs_ping(
            "no-op re-run vs ping playbook (facts off)",
            inventory=inventory,
            hosts=names,
            target=NOOP_TARGET,
        )
        self.stop(names)
        return row

    def fleet(
        self, size: int, noop_sizes: list[int], knobs: dict[str, dict[str, str]]
    ) -> list[dict[str, Any]]:
        names = self.names("fleet", size)
        rows: list[dict[str, Any]] = []
        self.stop(names)
        memory_before = accounting.machine_memory_used_mib()
        load_before = load()
        start = time.perf_counter()
        self.testbed("hosts", "start", *(f"{n}=focal" for n in names))
        started = time.perf_counter() - start
        inventory = self.workdir / f"inv-fleet-{size}.yml"
        inventory.write_text(self.testbed("hosts", "inventory", *names))
        ids = accounting.container_ids([f"ptb-{n}" for n in names])
        rows.append(
            {
                "name": f"test bed: start {size} hosts in parallel",
                "hosts": size,
                "runs": 1,
                "median_s": round(started, 2),
                "min_s": round(started, 2),
                "max_s": round(started, 2),
                "load": [load_before, load()],
                "memory": memory(ids, memory_before),
            }
        )
        converge = self.measure(lambda: self.apply(inventory), names)
        row = figure("fleet fresh converge", size, [converge])
        row["memory"] = memory(ids, memory_before)
        row["load"] = [load_before, load()]
        rows.append(row)
        for count in noop_sizes:
            rows.append(
                self.noop_vs_ping(
                    "fleet no-op re-run vs ping playbook",
                    inventory=inventory,
                    hosts=names[:count],
                    target=FLEET_NOOP_TARGET if count == size else None,
                    breakdown=count == size,
                )
            )
        for knob, env in knobs.items():
            row = self.noop_vs_ping(
                f"knob: {knob}",
                inventory=inventory,
                hosts=names,
                target=None,
                env=env,
                breakdown=False,
            )
            row["env"] = env
            rows.append(row)
        self.stop(names)
        return rows

    def startup(self) -> dict[str, Any]:
        runs = max(self.runs, 10)
        ours = [
            self.measure(lambda: self.sh([str(BIN / "provision"), "--help"]), [])
            for _ in range(runs)
        ]
        floor = [
            self.measure(lambda: self.sh([sys.executable, "-c", "pass"]), []) for _ in range(runs)
        ]
        return figure("provision --help vs python -c pass", 0, ours, floor)


def breakdown(events: Path, started: float, run: Run) -> dict[str, Any]:
    """The profiled run's phases, with its CPU by process."""
    found = profile.breakdown(events, started, started + run.wall)
    ansible = found["ansible_main_cpu_s"] + found["ansible_workers_cpu_s"]
    found["controller_cpu_s"] = round(run.controller_cpu, 3)
    found["ssh_masters_cpu_s"] = round(run.masters_cpu, 3)
    found["wrapper_cpu_s"] = round(run.controller_cpu - run.masters_cpu - ansible, 3)
    found["hosts_cpu_s"] = None if run.hosts_cpu is None else round(run.hosts_cpu, 3)
    return found


def floor_steps(trace: str) -> list[dict[str, Any]]:
    """Seconds per command of floor.sh from its trace (each line: pluses, the start time, the
    command). Assignments, printf, chmod and the like are folded into the command before."""
    marks = []
    for line in trace.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] and set(parts[0]) == {"+"}:
            try:
                marks.append((float(parts[1]), parts[2]))
            except ValueError:
                continue
    steps: list[dict[str, Any]] = []
    trivial = ("export ", "printf ", "set ", "chmod ", "install ", ". ")
    for (start, command), (end, _next) in itertools.pairwise(marks):
        if "=" in command.split(" ", 1)[0] or command.startswith(trivial):
            if steps:
                steps[-1]["seconds"] = round(steps[-1]["seconds"] + end - start, 3)
            continue
        steps.append({"command": command[:100], "seconds": round(end - start, 3)})
    return steps


def memory(ids: list[str], machine_before: float) -> dict[str, Any]:
    """The hosts' memory (their cgroups) and how much more the machine uses than before."""
    found = accounting.hosts_memory(ids)
    return {
        **(found.per_host() if found else {}),
        "machine_used_delta_mib": round(accounting.machine_memory_used_mib() - machine_before),
    }


def figure(
    name: str,
    hosts: int,
    ours: list[Run],
    floor: list[Run] | None = None,
    target: float | None = None,
) -> dict[str, Any]:
    walls = [r.wall for r in ours]
    row: dict[str, Any] = {
        "name": name,
        "hosts": hosts,
        "runs": len(ours),
        "median_s": round(statistics.median(walls), 2),
        "min_s": round(min(walls), 2),
        "max_s": round(max(walls), 2),
        **cpu("", ours, hosts),
    }
    if floor:
        walls = [r.wall for r in floor]
        row["floor_median_s"] = round(statistics.median(walls), 2)
        row["floor_min_s"] = round(min(walls), 2)
        row["floor_max_s"] = round(max(walls), 2)
        row["ratio"] = round(row["median_s"] / row["floor_median_s"], 2)
        row.update(cpu("floor_", floor, hosts))
    if target is not None:
        row["target_ratio"] = target
        row["meets_target"] = row["ratio"] <= target
    return row


def cpu(prefix: str, runs: list[Run], hosts: int) -> dict[str, Any]:
    """Median CPU seconds of the runs, per host (the controller's, and the hosts' own)."""
    per = max(hosts, 1)
    controller = median(r.controller_cpu for r in runs)
    row = {f"{prefix}controller_cpu_s_per_host": round(controller / per, 3)}
    host_cpu = [r.hosts_cpu for r in runs if r.hosts_cpu is not None]
    if host_cpu and hosts:
        row[f"{prefix}host_cpu_s_per_host"] = round(statistics.median(host_cpu) / per, 3)
    return row


def median(values: Any) -> float:
    return float(statistics.median(list(values)))


def save(out: Path, rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps({"meta": meta, "figures": rows}, indent=2))
    (out / "latest.md").write_text(markdown(rows, meta))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (default 3)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one run, a fleet of 2 hosts: proves the harness works",
    )
    parser.add_argument(
        "--only",
        help=f"comma-separated figures (default: {','.join(DEFAULT_FIGURES)}; "
        f"also: knobs, the fleet under each setting of {len(KNOBS)})",
    )
    parser.add_argument("--fleet", type=int, default=FLEET, help=f"fleet size (default {FLEET})")
    parser.add_argument(
        "--prefix", default="bench-", help="test-bed host names start with this (default bench-)"
    )
    parser.add_argument(
        "--mitogen",
        type=Path,
        help="knobs: also mitogen, installed in this directory (pip install --target DIR mitogen)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results go")
    args = parser.parse_args(argv)
    runs = 1 if args.quick else args.runs
    size = 2 if args.quick else args.fleet
    noop_sizes = sorted({1, min(10, size), size})
    chosen = set(args.only.split(",")) if args.only else set(DEFAULT_FIGURES)
    unknown = chosen - set(FIGURES)
    if unknown:
        parser.error(
            f"unknown figure(s): {', '.join(sorted(unknown))}; known: {', '.join(FIGURES)}"
        )
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "runs": runs,
        "machine": f"{os.cpu_count()} cores, {os.uname().sysname} {os.uname().release}",
        "quick": args.quick,
        "load_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    knobs = dict(KNOBS) if "knobs" in chosen else {}
    if knobs and args.mitogen:
        knobs["mitogen (mitogen_linear)"] = mitogen_knob(args.mitogen.resolve())
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="provision-bench-") as work:
        bench = Bench(runs, Path(work), args.prefix)
        scenarios: dict[str, Callable[[], list[dict[str, Any]]]] = {
            "startup": lambda: [bench.startup()],
            "noop": lambda: [bench.noop_one_host()],
            "fresh": lambda: [bench.fresh_one_host(False), bench.fresh_one_host(True)],
            "fleet": lambda: bench.fleet(size, noop_sizes, knobs),
        }
        if "knobs" in chosen:
            chosen.add("fleet")
        try:
            for name in FIGURES:
                if name in chosen and name in scenarios:
                    rows += scenarios[name]()
                    # written after every figure: a long run that dies still leaves its figures
                    save(args.out, rows, meta)
        finally:
            bench.close()
    meta["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    save(args.out, rows, meta)
    print(markdown(rows, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""python -m bench: how fast a host converges, how cheap a re-run is, how it scales.

Runs side by side on the test bed and writes bench/results/latest.json and latest.md. These
machines are noisy: every figure is a median of several runs with its min-max, and targets are
ratios against a floor measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from testbed.hosts import ssh_argv

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = REPO / "bench" / "results"
FIGURES = ("startup", "noop", "fresh", "fleet")


def sh(argv: list[str], *, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
    }
    result = subprocess.run(
        argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{shlex.join(argv)} failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def timed(action: Callable[..., object], *args: Any, **kwargs: Any) -> float:
    start = time.perf_counter()
    action(*args, **kwargs)
    return time.perf_counter() - start


def testbed(*args: str) -> str:
    return sh([sys.executable, "-m", "testbed", *args]).stdout


class Bench:
    def __init__(self, runs: int, workdir: Path) -> None:
        self.runs = runs
        self.workdir = workdir
        self.vars = json.loads(testbed("vars"))
        self.vars_file = workdir / "testbed-vars.json"
        self.vars_file.write_text(json.dumps(self.vars))
        self.status = json.loads(testbed("status"))

    # -- hosts --------------------------------------------------------------------------------
    def start(self, names: list[str], release: str = "focal") -> Path:
        for name in names:  # a fresh host each time: stop any leftover of the same name
            testbed("hosts", "stop", name)
        testbed("hosts", "start", *(f"{n}={release}" for n in names))
        inventory = self.workdir / f"inv-{names[0]}-{len(names)}.yml"
        inventory.write_text(testbed("hosts", "inventory", *names))
        return inventory

    def stop(self, names: list[str]) -> None:
        testbed("hosts", "stop", *names)

    # -- the things measured -------------------------------------------------------------------
    def apply(self, inventory: Path, limit: str | None = None) -> dict[str, Any]:
        argv = [
            str(BIN / "provision"),
            "--json",
            "apply",
            "-i",
            str(inventory),
            "-e",
            f"@{self.vars_file}",
        ]
        if limit:
            argv += ["--limit", limit]
        return dict(json.loads(sh(argv).stdout))

    def floor(self, inventory: Path, name: str) -> None:
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
        remote = (
            f"cat > /tmp/floor.sh && sudo sh /tmp/floor.sh {shlex.quote(repo)} focal "
            f"{shlex.quote(daemon)}"
        )
        result = subprocess.run(
            [*ssh, remote], input=script, capture_output=True, text=True, timeout=1800, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"floor script failed: {result.stderr[-3000:]}")

    def ping(self, inventory: Path, limit: str | None = None) -> None:
        argv = [str(BIN / "ansible-playbook"), "-i", str(inventory), "bench/ping.yml"]
        if limit:
            argv += ["--limit", limit]
        sh(argv)

    # -- scenarios -----------------------------------------------------------------------------
    def fresh_one_host(self) -> dict[str, Any]:
        ours, floor = [], []
        for run in range(self.runs):
            names = [f"bench-p{run}", f"bench-f{run}"]
            inventory = self.start(names)
            order = [("p", names[0]), ("f", names[1])]
            for kind, name in order if run % 2 == 0 else reversed(order):
                if kind == "p":
                    ours.append(timed(self.apply, inventory, limit=name))
                else:
                    floor.append(timed(self.floor, inventory, name))
            self.stop(names)
        return figure("fresh converge vs Docker's documented steps", 1, ours, floor, 1.10)

    def noop_one_host(self) -> dict[str, Any]:
        inventory = self.start(["bench-noop"])
        self.apply(inventory)
        ours, floor = [], []
        for _ in range(self.runs):
            ours.append(timed(self.apply, inventory))
            floor.append(timed(self.ping, inventory))
        self.stop(["bench-noop"])
        return figure("no-op re-run vs ping playbook (facts off)", 1, ours, floor, 3.0)

    def fleet(self, fresh_sizes: list[int], noop_sizes: list[int]) -> list[dict[str, Any]]:
        rows = []
        for size in fresh_sizes:
            times = []
            for _run in range(self.runs):
                names = [f"bench-fleet{i}" for i in range(size)]
                inventory = self.start(names)
                times.append(timed(self.apply, inventory))
                self.stop(names)
            rows.append(figure("fleet fresh converge", size, times))
        biggest = max(noop_sizes)
        names = [f"bench-fleet{i}" for i in range(biggest)]
        inventory = self.start(names)
        self.apply(inventory)
        for size in noop_sizes:
            limit = ",".join(names[:size])
            ours, floor = [], []
            for _ in range(self.runs):
                ours.append(timed(self.apply, inventory, limit=limit))
                floor.append(timed(self.ping, inventory, limit=limit))
            # The floor grows with the fleet too: all hosts share this machine's cores.
            rows.append(figure("fleet no-op re-run vs ping playbook", size, ours, floor))
        self.stop(names)
        noop = [r for r in rows if r["name"].startswith("fleet no-op")]
        one = next(r for r in noop if r["hosts"] == 1)
        for row in noop:
            row["vs_one_host"] = round(row["median_s"] / one["median_s"], 2)
            row["floor_vs_one_host"] = round(row["floor_median_s"] / one["floor_median_s"], 2)
        biggest_row = next(r for r in noop if r["hosts"] == biggest)
        biggest_row["target_vs_one_host"] = 2.0
        biggest_row["meets_target"] = biggest_row["vs_one_host"] <= 2.0
        return rows

    def startup(self) -> dict[str, Any]:
        runs = max(self.runs, 10)
        ours = [timed(sh, [str(BIN / "provision"), "--help"]) for _ in range(runs)]
        floor = [timed(sh, [sys.executable, "-c", "pass"]) for _ in range(runs)]
        return figure("provision --help vs python -c pass", 0, ours, floor)


def figure(
    name: str,
    hosts: int,
    ours: list[float],
    floor: list[float] | None = None,
    target: float | None = None,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": name,
        "hosts": hosts,
        "runs": len(ours),
        "median_s": round(statistics.median(ours), 2),
        "min_s": round(min(ours), 2),
        "max_s": round(max(ours), 2),
    }
    if floor:
        row["floor_median_s"] = round(statistics.median(floor), 2)
        row["floor_min_s"] = round(min(floor), 2)
        row["floor_max_s"] = round(max(floor), 2)
        row["ratio"] = round(row["median_s"] / row["floor_median_s"], 2)
    if target is not None:
        row["target_ratio"] = target
        row["meets_target"] = row["ratio"] <= target
    return row


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"Measured {meta['date']} on {meta['machine']}; median of {meta['runs']} runs (min-max).",
        "",
        "| figure | hosts | provision | floor | ratio | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        ours = f"{r['median_s']} s ({r['min_s']}-{r['max_s']})"
        floor = (
            f"{r['floor_median_s']} s ({r['floor_min_s']}-{r['floor_max_s']})"
            if "floor_median_s" in r
            else ""
        )
        ratio = str(r.get("ratio", ""))
        if "vs_one_host" in r:
            ratio = f"{r['ratio']}; growth {r['vs_one_host']}x (floor {r['floor_vs_one_host']}x)"
        target = ""
        if "target_ratio" in r:
            target = f"<= {r['target_ratio']}x: {'met' if r['meets_target'] else 'MISSED'}"
        elif "target_vs_one_host" in r:
            met = "met" if r["meets_target"] else "MISSED"
            target = f"growth <= {r['target_vs_one_host']}x: {met}"
        lines.append(
            f"| {r['name']} | {r['hosts'] or '-'} | {ours} | {floor} | {ratio} | {target} |"
        )
    return "\n".join(lines) + "\n"


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
        help="one run, fleets of 1-2 hosts: proves the harness works",
    )
    parser.add_argument(
        "--only", help=f"comma-separated figures (default all: {','.join(FIGURES)})"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results go")
    args = parser.parse_args(argv)
    runs = 1 if args.quick else args.runs
    fresh_sizes, noop_sizes = ([1, 2], [1, 2]) if args.quick else ([1, 5, 10], [1, 5, 10, 20])
    chosen = set(args.only.split(",")) if args.only else set(FIGURES)
    unknown = chosen - set(FIGURES)
    if unknown:
        parser.error(
            f"unknown figure(s): {', '.join(sorted(unknown))}; known: {', '.join(FIGURES)}"
        )
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "runs": runs,
        "machine": f"{os.cpu_count()} cores, {os.uname().sysname} {os.uname().release}",
        "quick": args.quick,
    }
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="provision-bench-") as work:
        bench = Bench(runs, Path(work))
        scenarios: dict[str, Callable[[], list[dict[str, Any]]]] = {
            "startup": lambda: [bench.startup()],
            "noop": lambda: [bench.noop_one_host()],
            "fresh": lambda: [bench.fresh_one_host()],
            "fleet": lambda: bench.fleet(fresh_sizes, noop_sizes),
        }
        for name in FIGURES:
            if name in chosen:
                rows += scenarios[name]()
                # written after every figure: a long run that dies still leaves what it measured
                save(args.out, rows, meta)
    print(markdown(rows, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""bench/results/latest.md: the figures, where a no-op's time goes, and what the hosts took."""

from __future__ import annotations

from typing import Any


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"Measured {meta['date']} on {meta['machine']}; median of {meta['runs']} runs (min-max);"
        f" load average (1, 5, 15 min) {fmt_load(meta.get('load_at_start'))} at the start"
        + (f", {fmt_load(meta['load_at_end'])} at the end." if "load_at_end" in meta else "."),
        "",
        "| figure | hosts | provision | floor | ratio | target | controller CPU/host "
        "(floor) | host CPU/host (floor) | load |",
        "|---|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    lines += [figure_line(r) for r in rows]
    for row in rows:
        if "memory" in row:
            lines += ["", memory_line(row)]
    for row in rows:
        for label, phases in (row.get("breakdown") or {}).items():
            lines += ["", *breakdown_lines(row, label, phases)]
        if row.get("floor_steps"):
            steps = "; ".join(f"{s['command']}: {s['seconds']} s" for s in row["floor_steps"])
            lines += ["", f"Docker's steps, {row['name']} (one run): {steps}"]
    return "\n".join(lines) + "\n"


def fmt_load(value: Any) -> str:
    return "-" if not value else " / ".join(str(v) for v in value)


def figure_line(r: dict[str, Any]) -> str:
    ours = f"{r['median_s']} s ({r['min_s']}-{r['max_s']})"
    floor = (
        f"{r['floor_median_s']} s ({r['floor_min_s']}-{r['floor_max_s']})"
        if "floor_median_s" in r
        else ""
    )
    target = ""
    if "target_ratio" in r:
        target = f"<= {r['target_ratio']}x: {'met' if r['meets_target'] else 'MISSED'}"
    controller = pair(r, "controller_cpu_s_per_host")
    hosts = pair(r, "host_cpu_s_per_host")
    load = " -> ".join(str(v) for v in r.get("load", []))
    return (
        f"| {r['name']} | {r['hosts'] or '-'} | {ours} | {floor} | {r.get('ratio', '')} | "
        f"{target} | {controller} | {hosts} | {load} |"
    )


def pair(r: dict[str, Any], key: str) -> str:
    if key not in r:
        return ""
    ours = f"{r[key]} s"
    return f"{ours} ({r['floor_' + key]} s)" if f"floor_{key}" in r else ours


def memory_line(r: dict[str, Any]) -> str:
    m = r["memory"]
    per_host = (
        f"{m['anon_mib_per_host']} MiB anonymous + {m['cache_mib_per_host']} MiB page cache per "
        f"host ({m['anon_mib_total']} + {m['cache_mib_total']} MiB in all)"
        if "anon_mib_per_host" in m
        else "cgroups not readable"
    )
    return (
        f"Memory, {r['name']} ({r['hosts']} hosts): {per_host}; the machine uses "
        f"{m['machine_used_delta_mib']} MiB more than before the hosts started."
    )


def breakdown_lines(r: dict[str, Any], label: str, p: dict[str, Any]) -> list[str]:
    hosts = max(r["hosts"], 1)

    def per_host(seconds: float | None) -> str:
        return "" if seconds is None else str(round(seconds / hosts, 3))

    lines = [
        f"Where the time goes: {label}, {r['name']}, {r['hosts']} host(s); one more run, with "
        "the timing callback. Wall time by phase, CPU by process (workers include their ssh "
        "clients).",
        "",
        "| phase | wall s | controller CPU s: ansible-playbook / workers | CPU s per host |",
        "|---|---:|---:|---:|",
        f"| before ansible-playbook (provision, its input probe) | {p['wrapper_before_s']} | | |",
        f"| ansible-playbook start-up (imports, config, inventory, playbook) | "
        f"{p['ansible_startup_s']} | {p['ansible_startup_cpu_s']} / - | |",
    ]
    for t in p["tasks"]:
        lines.append(
            f"| task: {t['task']} ({t['action']}) | {t['wall_s']} | "
            f"{t['main_cpu_s']} / {t['workers_cpu_s']} | "
            f"{per_host(t['main_cpu_s'] + t['workers_cpu_s'])} |"
        )
    lines += [
        f"| recap, exit, the wrapper's report | {p['after_s']} | | |",
        "",
        "| process | CPU s | per host |",
        "|---|---:|---:|",
        f"| provision, its input probe, ansible-runner (and ansible-playbook's exit) | "
        f"{p['wrapper_cpu_s']} | {per_host(p['wrapper_cpu_s'])} |",
        f"| ansible-playbook (main process) | {p['ansible_main_cpu_s']} | "
        f"{per_host(p['ansible_main_cpu_s'])} |",
        f"| workers and their ssh clients | {p['ansible_workers_cpu_s']} | "
        f"{per_host(p['ansible_workers_cpu_s'])} |",
        f"| ssh masters (ControlPersist) | {p['ssh_masters_cpu_s']} | "
        f"{per_host(p['ssh_masters_cpu_s'])} |",
        f"| controller in all | {p['controller_cpu_s']} | {per_host(p['controller_cpu_s'])} |",
        f"| hosts (sshd, sudo, the modules) | {p['hosts_cpu_s']} | {per_host(p['hosts_cpu_s'])} |",
    ]
    return lines

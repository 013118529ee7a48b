"""The commands: each composes the adapters and reports through :class:`Output`.

They fill ``ctx.payload`` (the ``--json`` document) as they go, so it is complete up to the point
of a failure, and raise :class:`ProvisionError` on failure; the CLI (``provision.cli``) is the
only place that turns either into output and an exit status.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from provision import ansible_probe, guest, laptop, preflight, proxy_env, rolling, runner, verify
from provision.errors import ProvisionError, RunFailedError, UsageError
from provision.extra_vars import check_extra_vars
from provision.inventory import dump_inventory
from provision.output import Output
from provision.paths import DataPaths, data_paths
from provision.role_options import RoleContract, role_defaults
from provision.settings import Settings
from provision.vagrant import MachineStatus, VagrantAdapter


@dataclass
class Context:
    out: Output
    settings: Settings
    project_dir: Path
    verbosity: int = 0
    debug: bool = False
    payload: dict[str, Any] = field(default_factory=dict)
    _paths: DataPaths | None = field(default=None, repr=False)
    _contract: RoleContract | None = field(default=None, repr=False)

    @property
    def paths(self) -> DataPaths:
        if self._paths is None:
            self._paths = data_paths()
        return self._paths

    def vagrant(self) -> VagrantAdapter:
        return VagrantAdapter(
            project_dir=self.project_dir,
            paths=self.paths,
            machine=self.settings.machine,
            progress=self.out.tool_line,
        )

    def contract(self) -> RoleContract:
        if self._contract is None:
            self._contract = RoleContract.load(self.paths)
        return self._contract


# --------------------------------------------------------------------------------------------
# Shared pieces


def _converge(
    ctx: Context,
    *,
    inventory: Path,
    extravars: Mapping[str, Any],
    limit: str | None = None,
    check: bool = False,
    diff: bool = False,
) -> runner.RunResult:
    out = ctx.out
    verbose = ctx.verbosity > 0
    result = runner.run_playbook(
        paths=ctx.paths,
        playbook=ctx.paths.site_playbook,
        inventory=inventory,
        extravars=extravars,
        limit=limit,
        check=check,
        diff=diff,
        verbosity=ctx.verbosity,
        on_task=None if verbose else out.task,
        on_text=out.raw if verbose else None,
        keep_artifacts=ctx.debug,
        color=out.terminal,
    )
    out.recap(result.hosts, result.elapsed, check=check, interrupted=result.interrupted)
    for warning in result.warnings:
        out.warn(warning)
    return result


def _inputs(
    ctx: Context,
    *,
    extra_vars: Sequence[str],
    inventory: Path | None = None,
    inventory_arg: str = "",
    limit: str | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The role variables (settings, then ``-e``) and the inventory's hosts, read as Ansible
    will read them and validated: nothing has run yet."""
    role_vars = ctx.settings.role_vars()
    if not extra_vars and inventory is None:
        return role_vars, []
    found = ansible_probe.probe(
        paths=ctx.paths,
        env=runner.ansible_env(ctx.paths),
        extra_vars=extra_vars,
        inventory=inventory,
        inventory_arg=inventory_arg,
        limit=limit,
    )
    role_vars.update(check_extra_vars(found.extra_vars, contract=ctx.contract()))
    for warning in found.warnings:
        ctx.out.warn(warning)
    return role_vars, found.hosts


def _vm_inventory(ctx: Context, adapter: VagrantAdapter) -> tuple[Path, dict[str, Any]]:
    inventory = adapter.inventory()
    path = adapter.dotfile_dir / "provision" / "inventory.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_inventory(inventory), encoding="utf-8")
    ctx.out.detail(f"inventory written to {path}")
    return path, inventory


def _vm_hosts(inventory: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The hosts of the inventory made from ``vagrant ssh-config``, with their variables."""
    hosts: dict[str, Mapping[str, Any]] = {}
    for group in (inventory.get("all", {}).get("children") or {}).values():
        hosts.update(group.get("hosts") or {})
    return hosts


def _require_running(adapter: VagrantAdapter) -> list[MachineStatus]:
    statuses = adapter.status()
    not_running = [s for s in statuses if not s.running]
    if not statuses or not_running:
        state = not_running[0].state if not_running else "unknown"
        raise RunFailedError(f"the VM is not running (state: {state}): run `provision up` first")
    return statuses


def _verify(
    ctx: Context,
    *,
    inventory: Path,
    hosts: Sequence[str],
    role_vars: Mapping[str, Any],
) -> verify.VerifyResult:
    out = ctx.out
    started = time.monotonic()
    expectations = replace(
        verify.expectations_from_role_vars(role_vars, role_defaults=role_defaults(ctx.paths)),
        network_url=ctx.settings.checks.network_url,
        network_image=ctx.settings.checks.walkthrough_image,
    )
    verify.probe_hosts(paths=ctx.paths, inventory=inventory, hosts=hosts)
    out.step(f"host checks on {', '.join(hosts)}")
    code, outcomes = verify.run_shared_checks(
        paths=ctx.paths,
        inventory=inventory,
        hosts=hosts,
        expectations=expectations,
        verbose=ctx.verbosity > 0,
        on_text=out.raw if ctx.verbosity > 0 else None,
    )
    for outcome in outcomes:
        out.check(outcome)
    result = verify.VerifyResult(checks=outcomes, checks_exit=code)
    target = expectations.users[0] if expectations.users else ""  # "" = the login user
    who = f"as {target}" if target else "as the login user"
    out.step(f"walkthrough {who} with {ctx.settings.checks.walkthrough_image}")
    result.walkthrough = verify.run_walkthrough(
        paths=ctx.paths,
        inventory=inventory,
        hosts=hosts,
        users={h: target for h in hosts},
        image=ctx.settings.checks.walkthrough_image,
        on_step=out.walkthrough_step,
    )
    result.elapsed = time.monotonic() - started
    counts = result.counts()
    checks = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "none"
    steps = sum(s.outcome == "passed" for s in result.walkthrough)
    out.info(
        f"  checks: {checks}; {steps}/{len(result.walkthrough)} walkthrough steps passed "
        f"in {result.elapsed:.1f}s"
    )
    return result


# --------------------------------------------------------------------------------------------
# Commands


def cmd_up(ctx: Context, *, run_checks: bool = True, use_context: bool = False) -> None:
    out = ctx.out
    machine = ctx.settings.machine
    adapter = ctx.vagrant()
    payload = ctx.payload
    payload["machine"] = machine.__dict__.copy()

    out.step("preflight")
    version = preflight.check_vagrant(adapter)
    provider = preflight.check_provider(machine.provider, env=adapter.env)
    statuses = adapter.status()
    other = next((s for s in statuses if s.created and s.provider != machine.provider), None)
    if other is not None:
        raise UsageError(
            f"the VM exists with the {other.provider} provider, not {machine.provider}: use "
            f"--provider {other.provider}, or `provision destroy` it first"
        )
    running = bool(statuses) and all(s.running for s in statuses)
    out.info(f"  vagrant {version}, {provider}; VM: {', '.join(s.state for s in statuses)}")
    laptop.tunnel_for(adapter).check_path()
    if not running:  # a running VM holds its own forwarded ports
        preflight.check_ports(machine)
        report = preflight.check_resources(machine, env=adapter.env)
        for warning in report.warnings:
            out.warn(warning)
    payload["vagrant_version"] = version

    out.step(
        f"vagrant up: {machine.box} on {machine.provider}, {machine.memory} MiB, "
        f"{machine.cpus} CPUs, {machine.disk_gib} GiB disk"
    )
    adapter.up()
    inventory_path, inventory = _vm_inventory(ctx, adapter)

    probe = guest.parse_probe(adapter.run_in_guest(guest.PROBE_COMMAND))
    payload["guest"] = probe.as_dict()
    out.info(
        f"  guest: {probe.memory_mib} MiB RAM, "
        + (f"{probe.disk_gib:.1f} GiB disk" if probe.disk_gib is not None else "disk unknown")
    )
    for warning in guest.compare(machine, probe):
        out.warn(warning)

    # docker_users' default is the user Ansible connects as (the VM's): the role resolves it
    role_vars = ctx.settings.role_vars()
    if "docker_proxy" not in role_vars:  # [docker] proxy decides when it is set
        from_env = proxy_env.from_environment(os.environ)
        if from_env is not None:
            (out.info if from_env.proxy else out.warn)(from_env.line)
            if from_env.proxy:
                role_vars["docker_proxy"] = from_env.proxy
            payload["proxy_from_environment"] = from_env.proxy is not None
    out.step("converge (playbooks/site.yml)")
    result = _converge(ctx, inventory=inventory_path, extravars=role_vars)
    payload["converge"] = result.as_dict()
    result.raise_for_status()
    payload["docker"] = laptop.connect(
        out, adapter, project_dir=ctx.project_dir, use_context=use_context
    )

    if run_checks:
        checked = _verify(
            ctx,
            inventory=inventory_path,
            hosts=list(_vm_hosts(inventory)),
            role_vars=role_vars,
        )
        payload["verify"] = checked.as_dict()
        checked.raise_for_status()


def _require_inventory(inventory: str) -> Path:
    path = Path(inventory).expanduser()
    if not inventory.strip() or not path.exists():
        raise UsageError(
            f"-i {inventory!r}: no such file or directory (an Ansible inventory: INI, YAML or "
            "JSON file, script or directory)"
        )
    return path.resolve()


def cmd_apply(
    ctx: Context,
    *,
    inventory: str,
    limit: str | None,
    extra_vars: Sequence[str],
    check: bool,
    diff: bool,
    play_vars: Mapping[str, Any] | None = None,
) -> None:
    inventory_path = _require_inventory(inventory)
    role_vars, hosts = _inputs(
        ctx, extra_vars=extra_vars, inventory=inventory_path, inventory_arg=inventory, limit=limit
    )
    ctx.payload["hosts"] = hosts
    mode = " in check mode" if check else ""
    ctx.out.step(
        f"apply playbooks/site.yml to {inventory}{mode}" + (f" (limit {limit})" if limit else "")
    )
    result = _converge(
        ctx,
        inventory=inventory_path,
        extravars={**role_vars, **(play_vars or {})},
        limit=limit,
        check=check,
        diff=diff,
    )
    ctx.payload["apply"] = result.as_dict()
    if play_vars:
        _report_batches(ctx, result, hosts)
    result.raise_for_status()


def _report_batches(ctx: Context, result: runner.RunResult, hosts: Sequence[str]) -> None:
    """With --serial/--max-fail-percentage: the hosts of each batch, and those none reached."""
    batches = rolling.summary(result.batches, hosts)
    ctx.payload["apply"].update(batches)
    ctx.out.batches(batches)


def cmd_verify(
    ctx: Context,
    *,
    inventory: str | None,
    limit: str | None,
    extra_vars: Sequence[str],
) -> None:
    if inventory is None:
        if extra_vars:  # -e is checked before Vagrant is asked anything
            _inputs(ctx, extra_vars=extra_vars)
        adapter = ctx.vagrant()
        _require_running(adapter)
        inventory_path, _vm = _vm_inventory(ctx, adapter)
        shown = "the VM's inventory"
    else:
        inventory_path = _require_inventory(inventory)
        shown = inventory
    role_vars, hosts = _inputs(
        ctx, extra_vars=extra_vars, inventory=inventory_path, inventory_arg=shown, limit=limit
    )
    ctx.payload["hosts"] = hosts
    result = _verify(
        ctx,
        inventory=inventory_path,
        hosts=hosts,
        role_vars=role_vars,
    )
    ctx.payload["verify"] = result.as_dict()
    result.raise_for_status()


def cmd_status(ctx: Context) -> None:
    adapter = ctx.vagrant()
    statuses = adapter.status()
    rows = [{"name": s.name, "state": s.state, "provider": s.provider} for s in statuses]
    ctx.out.table(rows, ["name", "state", "provider"])
    ctx.payload["machines"] = rows
    docker = laptop.describe(adapter)
    ctx.payload["docker"] = docker
    forwarded = "forwarded" if docker["forwarding"] else "not forwarded (run `provision up`)"
    ctx.out.info(f"docker engine: {docker['host']}, {forwarded}")
    if docker["context"]:
        exists = "" if docker["context_exists"] else " (not created)"
        ctx.out.info(f"docker context: {docker['context']}{exists}")
    ports = ", ".join(f"127.0.0.1:{p['host']}->{p['guest']}" for p in docker["ports"])
    ctx.out.info(f"ports: {ports or 'none'}")
    ctx.out.info(f"share: {docker['share'] or 'none'}")


def cmd_env(ctx: Context, *, shell: str = "sh") -> None:
    """``DOCKER_HOST``/``DOCKER_CONTEXT`` lines for ``eval "$(provision env)"``."""
    tunnel = laptop.require_forwarding(ctx.vagrant())
    values = laptop.env_values(
        docker_host=tunnel.docker_host, context=ctx.settings.machine.docker_context
    )
    ctx.payload["env"] = values
    for line in laptop.env_lines(values, syntax=shell):
        ctx.out.info(line)


def cmd_ssh(ctx: Context, *, command: str | None) -> None:
    if ctx.out.json_mode and command is None:
        raise UsageError("provision ssh --json needs -c COMMAND (no interactive shell in JSON)")
    adapter = ctx.vagrant()
    _require_running(adapter)
    # --json: the command's output goes into the document, not around it
    code, stdout, stderr = adapter.ssh(command, capture=ctx.out.json_mode)
    ctx.payload["ssh"] = {"command": command, "exit_status": code}
    if ctx.out.json_mode:
        ctx.payload["ssh"].update(stdout=stdout, stderr=stderr)
    if code != 0:
        what = f"`{command}`" if command else "the ssh session"
        raise RunFailedError(f"{what} exited with status {code}")


def cmd_halt(ctx: Context) -> None:
    adapter = ctx.vagrant()
    statuses = adapter.status()
    if not any(s.created for s in statuses):
        ctx.out.info("nothing to halt: the VM is not created")
        ctx.payload.update(halted=False, state="not_created")
        return
    ctx.out.step("vagrant halt")
    ctx.payload["docker"] = laptop.disconnect(adapter, remove=False)
    adapter.halt()
    after = adapter.status()
    state = after[0].state if after else "unknown"
    ctx.out.info(f"  the VM is halted (state: {state})")
    ctx.payload.update(halted=True, state=state)


def cmd_destroy(ctx: Context, *, force: bool, confirm: Callable[[str], bool] | None = None) -> None:
    if not force and confirm is None and not sys.stdin.isatty():
        raise UsageError("destroy needs --force when not run on a terminal (it cannot ask)")
    adapter = ctx.vagrant()
    statuses = adapter.status()
    if not any(s.created for s in statuses):
        ctx.out.info("nothing to destroy: the VM is not created")
        ctx.payload.update(destroyed=False, state="not_created")
        return
    if not force:
        ask = confirm or _ask
        names = ", ".join(s.name for s in statuses)
        if not ask(f"Destroy the VM {names} and its disk in {adapter.dotfile_dir}? [y/N] "):
            raise ProvisionError("destroy cancelled: nothing was destroyed")
    ctx.out.step("vagrant destroy")
    adapter.destroy()
    inventory = adapter.dotfile_dir / "provision" / "inventory.yml"
    inventory.unlink(missing_ok=True)
    ctx.payload["docker"] = laptop.disconnect(adapter, remove=True)
    ctx.out.info("  the VM is destroyed")
    ctx.payload.update(destroyed=True, state="not_created")


def _ask(prompt: str) -> bool:
    try:
        answer = input(prompt)
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")

"""What ansible-playbook would read, read by ansible-core itself before anything runs.

``-e`` items (``@FILE``, inline YAML/JSON, ``KEY=VALUE``) are parsed with Ansible's own loader and
``parse_kv``; the inventory with Ansible's ``InventoryManager`` and ``--limit`` applied, its
warnings captured. This runs in a child Python (``python -m provision.ansible_probe``) with the
environment of the run (the shipped ansible.cfg): Ansible's configuration and display are
process-wide, and provision's own process never loads them.

Refused here, each with one line: an ``-e`` item Ansible cannot read, an inventory source no
plugin can parse, an inventory without hosts, and a ``--limit`` that matches none.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision import probe_cache, proc
from provision.errors import ProvisionError, UsageError, one_line
from provision.paths import DataPaths

_LIMIT = 300  # characters of a reason in the one-line message


@dataclass(frozen=True)
class ExtraVars:
    """The variables one ``-e`` item sets; ``from_text``: KEY=VALUE strings."""

    item: str
    variables: dict[str, Any]
    from_text: bool


@dataclass(frozen=True)
class Probe:
    extra_vars: list[ExtraVars] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def probe(
    *,
    paths: DataPaths,
    env: Mapping[str, str],
    extra_vars: Sequence[str] = (),
    inventory: Path | None = None,
    inventory_arg: str = "",
    limit: str | None = None,
) -> Probe:
    """Read ``-e`` items and the inventory as Ansible will; raise :class:`UsageError` (exit 2)
    with one line on what it cannot use. ``inventory_arg`` is ``-i`` as the user gave it."""
    request = {
        "extra_vars": list(extra_vars),
        "inventory": str(inventory) if inventory is not None else None,
        "inventory_arg": inventory_arg or str(inventory),
        "limit": limit,
    }
    child_env = dict(os.environ)
    child_env.update(env)
    # A re-run with unchanged inputs gets the answer it got before (probe_cache.py).
    digest = probe_cache.key(request, child_env, Path.cwd())
    answer = probe_cache.load(digest, request, Path.cwd())
    if answer is None:
        result = proc.run(
            argv=[sys.executable, "-m", "provision.ansible_probe"],
            env=child_env,
            input_text=json.dumps(request),
            cwd=Path.cwd(),
            timeout=300,
        )
        try:
            answer = json.loads(result.stdout)
        except ValueError:
            reason = one_line(result.stderr)[-_LIMIT:] or f"exit status {result.returncode}"
            raise ProvisionError(
                f"ansible-core could not read the inputs: {reason}", detail=result.stderr
            ) from None
        probe_cache.save(digest, answer, request, Path.cwd())
    if answer.get("error"):
        raise UsageError(str(answer["error"]), detail="\n".join(answer.get("warnings") or []))
    return Probe(
        extra_vars=[
            ExtraVars(str(e["item"]), dict(e["variables"]), bool(e["from_text"]))
            for e in answer.get("extra_vars") or []
        ],
        hosts=[str(h) for h in answer.get("hosts") or []],
        warnings=[str(w) for w in answer.get("warnings") or []],
    )


# --------------------------------------------------------------------------------------------
# The child: ansible-core in its own process


class _Refused(Exception):
    """One line for the user."""


def _clip(text: str) -> str:
    text = one_line(text)
    return text if len(text) <= _LIMIT else text[: _LIMIT - 3] + "..."


def _read_extra_vars(items: Sequence[str], loader: Any) -> list[dict[str, Any]]:
    """Each ``-e`` item the way ansible-playbook reads it (ansible.utils.vars.load_extra_vars),
    one at a time so a problem names its item."""
    from ansible.errors import AnsibleError
    from ansible.parsing.splitter import parse_kv
    from ansible.utils.vars import transform_to_native_types

    parsed: list[dict[str, Any]] = []
    for item in items:
        if not item:
            continue
        from_text = False
        try:
            if item.startswith("@"):
                if not os.path.isfile(os.path.expanduser(item[1:])):
                    raise _Refused(f"-e {item}: no such file (-e @FILE reads a YAML or JSON file)")
                data = loader.load_from_file(os.path.expanduser(item[1:]))
            elif item[0] in "/.":
                raise _Refused(
                    f"-e {item}: a file needs @ in front (-e @{item}), as in ansible-playbook"
                )
            elif item[0] in "[{":
                data = loader.load(item)
            else:
                data = parse_kv(item)
                from_text = True
        except AnsibleError as exc:
            raise _Refused(f"-e {item}: {_clip(exc.message)}") from None
        if not isinstance(data, Mapping):
            raise _Refused(
                f"-e {item}: must be a mapping of variables, e.g. -e docker_users=ops, "
                '-e @vars.yml or -e \'{"docker_users": ["ops"]}\''
            )
        if from_text and "_raw_params" in data:
            raise _Refused(
                f"-e {item}: expected KEY=VALUE, @FILE or a YAML/JSON mapping "
                "(e.g. -e docker_users=ops or -e @vars.yml)"
            )
        variables = transform_to_native_types(data)
        parsed.append({"item": item, "variables": variables, "from_text": from_text})
    return parsed


def _read_inventory(
    source: str, shown: str, limit: str | None, loader: Any, display: Any
) -> list[str]:
    """The hosts a play on ``all`` would target, or :class:`_Refused`."""
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager

    reasons: list[str] = []
    unparsed: list[str] = []

    def failed_plugin(msg: Any = None, exception: Any = None, **_kwargs: Any) -> None:
        text = getattr(exception, "message", None) or str(exception or msg)
        reasons.append(_clip(str(text)))

    display.error_as_warning = failed_plugin

    class Manager(InventoryManager):  # type: ignore[misc]
        """Records every file no inventory plugin could parse."""

        def parse_source(self, path: str, cache: bool = False) -> bool:
            parsed = bool(super().parse_source(path, cache=cache))
            if not parsed and not os.path.isdir(path):
                unparsed.append(path)
            return parsed

    try:
        manager = Manager(loader=loader, sources=[source])
    except AnsibleError as exc:
        raise _Refused(f"-i {shown}: {_clip(exc.message)}") from None
    if unparsed:
        where = "" if unparsed[0] == source else f" ({unparsed[0]})"
        why = f": {reasons[-1]}" if reasons else ""
        raise _Refused(
            f"-i {shown}: not an inventory Ansible can parse{where}{why} "
            "(INI, YAML or JSON inventory, a script, a directory of them)"
        )
    every = [h.name for h in manager.get_hosts("all")]
    if not every:
        raise _Refused(
            f"-i {shown}: the inventory has no hosts (an INI, YAML or JSON inventory that "
            "names at least one host)"
        )
    if not limit:
        return every
    try:
        manager.subset(limit)
        hosts = [h.name for h in manager.get_hosts("all")]
    except AnsibleError as exc:
        raise _Refused(f"--limit {limit}: {_clip(exc.message)}") from None
    if not hosts:
        shown_hosts = ", ".join(every[:10]) + (", ..." if len(every) > 10 else "")
        raise _Refused(
            f"--limit {limit}: matches no host of {shown} (a host, a group or a pattern of "
            f"them; hosts: {shown_hosts})"
        )
    return hosts


def _main() -> int:
    request = json.load(sys.stdin)
    warnings: list[str] = []
    answer: dict[str, Any] = {"warnings": warnings}
    try:
        from ansible.parsing.dataloader import DataLoader
        from ansible.utils.display import Display

        display = Display()

        def warning(msg: Any = "", *_args: Any, **_kwargs: Any) -> None:
            warnings.append(_clip(str(msg)))

        display.warning = warning
        loader = DataLoader()
        answer["extra_vars"] = _read_extra_vars(request.get("extra_vars") or [], loader)
        if request.get("inventory"):
            answer["hosts"] = _read_inventory(
                request["inventory"],
                request.get("inventory_arg") or request["inventory"],
                request.get("limit"),
                loader,
                display,
            )
    except _Refused as refused:
        answer["error"] = str(refused)
    json.dump(answer, sys.stdout, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(_main())

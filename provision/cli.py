"""``provision``: the command line. Parses arguments, calls a command, prints the outcome.

This is the one error boundary: a :class:`~provision.errors.ProvisionError` becomes one line on
stderr and its exit code; anything else is reported as an internal error. Tracebacks only with
``--debug``. Heavy libraries are imported after parsing, so ``provision --help`` is instant.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

from provision import rolling
from provision.errors import (
    EXIT_CODES,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    InterruptedRunError,
    ProvisionError,
    UsageError,
)
from provision.output import Output
from provision.settings import DEFAULT_BOXES, MACHINE_FLAGS

COMMANDS: Final = ("up", "apply", "verify", "status", "ssh", "env", "halt", "destroy")


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting (one line, exit 2)."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("provision").strip()
        where = f"{command}: " if command else ""
        raise UsageError(f"{where}{message} (see `{self.prog} --help`)")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("provision")
    except PackageNotFoundError:
        return "unknown"


def _exit_codes_epilog() -> str:
    lines = ["exit codes:"]
    lines += [f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES.items()]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    # Global options work before and after the command: the copies on each subcommand default
    # to SUPPRESS so they never overwrite a value given before the command.
    common = _Parser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="settings file (default: ./provision.toml when present)",
    )
    common.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print one machine-readable JSON result instead of progress",
    )
    common.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="more detail; raises Ansible's verbosity (-v, -vv, ...)",
    )
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks and keep ansible-runner's artifacts",
    )

    parser = _Parser(
        prog="provision",
        description="Provision a Docker host: a local VM through Vagrant, or existing hosts "
        "over SSH, converged by Ansible and checked by testinfra.",
        epilog=_exit_codes_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"provision {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            parents=[common],
            epilog=_exit_codes_epilog(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    up = add("up", "create or start the VM with Vagrant, converge it and run the host checks")
    boxes = ", ".join(f"{box} for {provider}" for provider, box in DEFAULT_BOXES.items())
    up.add_argument("--provider", metavar="NAME", help="virtualbox (default) or libvirt")
    up.add_argument("--box", metavar="BOX", help=f"Vagrant box (default: {boxes})")
    up.add_argument("--memory", metavar="MIB", help="RAM in MiB (default 8192)")
    up.add_argument("--cpus", metavar="N", help="virtual CPUs (default 2)")
    up.add_argument("--disk", metavar="GIB", help="primary disk size in GiB (default 10)")
    up.add_argument("--hostname", metavar="NAME", help="guest host name (default provision)")
    up.add_argument(
        "--no-checks", action="store_true", help="skip the host checks after converging"
    )
    up.add_argument(
        "--ports",
        metavar="LIST",
        help="TCP ports forwarded from 127.0.0.1 to the VM: HOST or HOST:GUEST, comma-separated",
    )
    up.add_argument(
        "--docker-context",
        metavar="NAME",
        help='docker context for the VM\'s engine (default provision; "" for none)',
    )
    up.add_argument(
        "--share",
        metavar="DIR",
        help='directory mounted at the same path in the VM (default: this one; "" for none)',
    )
    up.add_argument(
        "--use-context", action="store_true", help="make that context the docker CLI's current one"
    )

    apply = add("apply", "converge existing hosts over SSH with the same playbook")
    apply.add_argument(
        "-i",
        "--inventory",
        required=True,
        metavar="INVENTORY",
        help="Ansible inventory file or directory",
    )
    apply.add_argument(
        "--limit", metavar="HOSTS", help="only these hosts/groups (an Ansible pattern)"
    )
    apply.add_argument(
        "-e",
        "--extra-vars",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="variables as ansible-playbook -e takes them: KEY=VALUE (VALUE is a string, "
        "converted as the role's argument spec says: docker_users=a,b), @FILE or a YAML/JSON "
        "mapping; repeatable; overrides [docker] and PROVISION_DOCKER_*",
    )
    apply.add_argument(
        "--check", action="store_true", help="report what would change, change nothing"
    )
    apply.add_argument("--diff", action="store_true", help="show the changes in files")
    apply.add_argument(
        "--serial",
        type=rolling.serial_arg,
        metavar="N|N%",
        help="converge the hosts in batches of N (or N%% of them), one batch after the other "
        "(Ansible's serial)",
    )
    apply.add_argument(
        "--max-fail-percentage",
        type=rolling.max_fail_arg,
        metavar="P",
        help="stop before the next batch when more than P%% of a batch failed (Ansible's "
        "max_fail_percentage; 0: any failure stops)",
    )

    verify = add("verify", "run the shared host checks and the docker walkthrough")
    verify.add_argument(
        "-i", "--inventory", metavar="INVENTORY", help="Ansible inventory (default: the Vagrant VM)"
    )
    verify.add_argument("--limit", metavar="HOSTS", help="only these hosts/groups")
    verify.add_argument(
        "-e",
        "--extra-vars",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="the role variables the hosts were converged with (expected users, key "
        "fingerprint, daemon options), in apply's -e forms",
    )

    add("status", "show the VM's state")

    ssh = add("ssh", "open a shell in the VM, or run one command")
    ssh.add_argument(
        "-c", "--command", dest="ssh_command", metavar="CMD", help="run CMD instead of a shell"
    )

    env = add("env", 'print DOCKER_HOST/DOCKER_CONTEXT for a shell: eval "$(provision env)"')
    env.add_argument("--shell", choices=("sh", "fish"), default="sh", help="syntax (default sh)")

    add("halt", "shut the VM down")

    destroy = add("destroy", "delete the VM and its disk")
    destroy.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    return parser


_GLOBAL_DEFAULTS: dict[str, Any] = {"config": None, "json": False, "verbose": 0, "debug": False}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line (raises :class:`UsageError` on bad usage)."""
    args = build_parser().parse_args(argv)
    # Not set_defaults(): parent parsers share their actions, and a default set on the main
    # parser would overwrite a global option given before the command.
    for key, value in _GLOBAL_DEFAULTS.items():
        if not hasattr(args, key):
            setattr(args, key, value)
    return args


def _configure_logging(verbosity: int, debug: bool) -> None:
    level = logging.DEBUG if debug else logging.INFO if verbosity > 0 else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s" if not debug else "%(name)s: %(message)s"))
    root = logging.getLogger("provision")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _run(args: argparse.Namespace, out: Output, payload: dict[str, Any]) -> None:
    from provision import commands
    from provision.settings import load_settings

    flags = {
        key: getattr(args, flag[2:].replace("-", "_"), None) for key, flag in MACHINE_FLAGS.items()
    }
    settings = load_settings(config=args.config, flags=flags, strict_share=args.command == "up")
    ctx = commands.Context(
        out=out,
        settings=settings,
        project_dir=Path.cwd(),
        verbosity=args.verbose,
        debug=args.debug,
        payload=payload,
    )
    if args.command == "up":
        commands.cmd_up(ctx, run_checks=not args.no_checks, use_context=args.use_context)
    elif args.command == "apply":
        commands.cmd_apply(
            ctx,
            inventory=args.inventory,
            limit=args.limit,
            extra_vars=args.extra_vars,
            check=args.check,
            diff=args.diff,
            play_vars=rolling.play_vars(args.serial, args.max_fail_percentage),
        )
    elif args.command == "verify":
        commands.cmd_verify(
            ctx, inventory=args.inventory, limit=args.limit, extra_vars=args.extra_vars
        )
    elif args.command == "status":
        commands.cmd_status(ctx)
    elif args.command == "ssh":
        commands.cmd_ssh(ctx, command=args.ssh_command)
    elif args.command == "env":
        commands.cmd_env(ctx, shell=args.shell)
    elif args.command == "halt":
        commands.cmd_halt(ctx)
    elif args.command == "destroy":
        commands.cmd_destroy(ctx, force=args.force)
    else:  # pragma: no cover - argparse rejects unknown commands
        raise UsageError(f"unknown command {args.command!r}")


def _usage_error(argv: Sequence[str], error: UsageError) -> int:
    """A command line argparse refused: one line, and with ``--json`` the one document."""
    words = list(argv[: argv.index("--")] if "--" in argv else argv)
    out = Output(json_mode="--json" in words)
    out.error(error)
    command = next((w for w in words if w in COMMANDS), None)
    out.result(command, EXIT_USAGE, {"error": {"message": error.message, "detail": ""}})
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``provision`` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parse_args(argv)
    except UsageError as exc:
        return _usage_error(argv, exc)
    _configure_logging(args.verbose, args.debug)
    out = Output(json_mode=args.json, verbosity=args.verbose)
    payload: dict[str, Any] = {}
    code = EXIT_OK
    try:
        _run(args, out, payload)
    except ProvisionError as exc:
        if args.debug:
            traceback.print_exc()
        out.error(exc)
        payload["error"] = {"message": exc.message, "detail": exc.detail}
        code = exc.exit_code
    except KeyboardInterrupt:
        if args.debug:
            traceback.print_exc()
        interrupted = InterruptedRunError("interrupted")
        out.error(interrupted)
        payload["error"] = {"message": interrupted.message, "detail": ""}
        code = EXIT_INTERRUPTED
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        message = f"internal error: {type(exc).__name__}: {exc}"
        if not args.debug:
            message += " (run with --debug for the traceback)"
        internal = ProvisionError(message)
        out.error(internal)
        payload["error"] = {"message": internal.message, "detail": ""}
        code = EXIT_FAILED
    out.result(args.command, code, payload)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

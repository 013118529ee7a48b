"""python -m testbed: build, inspect and tear down the offline test bed."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from testbed import (
    aptrepo,
    engine,
    hosts,
    images,
    machine,
    network,
    proxy,
    registry,
    releases,
    servers,
)
from testbed.util import TestbedError, load_state, log, save_state


def selected_releases(arg: str | None) -> list[releases.Release]:
    names = (
        arg or os.environ.get("PROVISION_TESTBED_RELEASES") or ",".join(releases.DEFAULT_RELEASES)
    )
    try:
        return [releases.get(name.strip()) for name in names.split(",") if name.strip()]
    except KeyError as exc:
        raise TestbedError(str(exc.args[0])) from None


def cmd_up(args: argparse.Namespace) -> int:
    started = time.monotonic()
    chosen = selected_releases(args.releases)
    started_dockerd = engine.ensure_engine()
    # Before the test bed adds anything: what the suite must leave as it was (tests/machine).
    machine.record(replace=started_dockerd)
    engine.require_archive(releases.UBUNTU_MIRROR + "/dists/focal/Release")
    state = load_state()
    network.ensure(state)
    save_state(state)
    # debootstrap and apt are mostly waiting on the network: a few at once make good use of
    # 2 cores. Each release's packages are fetched as soon as its image is there.
    if any(r.distro == "ubuntu" for r in chosen):
        images.ubuntu_keyring()  # once, before the builds that share it
    with ThreadPoolExecutor(max_workers=3) as pool:
        tags = list(pool.map(prepare, chosen))
    image_of = {r.codename: tag for r, tag in zip(chosen, tags, strict=True)}
    state["images"] = {**state.get("images", {}), **image_of}
    try:
        aptrepo.ensure(chosen, image_of, state)
        registry.ensure(state)
        proxy.ensure(state)
    finally:
        save_state(state)
    log(f"test bed ready in {time.monotonic() - started:.0f}s")
    print(json.dumps(summary(state), indent=2))
    return 0


def cmd_repo(args: argparse.Namespace) -> int:
    """Rebuild only the repository (the host images and their packages are already there), each
    release's indexes swapped in when complete: hosts using it meanwhile see no broken repo."""
    started = time.monotonic()
    state = load_state()
    chosen = selected_releases(args.releases or ",".join(state.get("images", {})) or None)
    missing = [r.codename for r in chosen if r.codename not in state.get("images", {})]
    if missing:
        raise TestbedError(f"no host image for {', '.join(missing)}: run `python -m testbed up`")
    try:
        aptrepo.ensure(chosen, state["images"], state)
    finally:
        save_state(state)
    log(f"repository ready in {time.monotonic() - started:.0f}s")
    print(json.dumps(summary(state), indent=2))
    return 0


def prepare(release: releases.Release) -> str:
    """The release's host image, and its distribution packages for the repository."""
    tag = images.ensure_image(release)
    aptrepo.fetch(release, tag)
    return tag


def summary(state: dict[str, Any]) -> dict[str, Any]:
    repository = servers.url(state, "repo")
    registry_url = servers.url(state, "registry")
    net = network.inspect() if engine.docker_running() else None
    return {
        "ready": bool(repository and registry_url and net and net == state.get("network")),
        "network": net,
        "repository": repository,
        "registry": registry_url,
        "proxy": servers.url(state, "proxy"),
        "proxy_log": str(proxy.log_path()),
        # What a container on a host's default bridge fetches to prove it reaches the network.
        "network_url": f"{repository}/" if repository else None,
        "key_fingerprint": state.get("key_fingerprint"),
        "images": state.get("images", {}),
        "releases_in_repository": sorted(state.get("repo_built", {})),
    }


def cmd_status(args: argparse.Namespace) -> int:
    info = summary(load_state())
    info["hosts"] = [h.__dict__ for h in hosts.running()] if engine.docker_running() else []
    print(json.dumps(info, indent=2))
    return 0 if info["ready"] else 1


def role_vars(state: dict[str, Any]) -> dict[str, Any]:
    info = summary(state)
    if not info["ready"]:
        raise TestbedError("the test bed is not running: run `python -m testbed up` first")
    mirror = info["registry"]
    # What an air-gapped site sets: its own repository and key, a plain-HTTP mirror.
    return {
        "docker_apt_repository_url": info["repository"]
        + "/linux/{{ ansible_distribution | lower }}",
        "docker_apt_key_fingerprint": state["key_fingerprint"],
        "docker_registry_mirrors": [mirror],
        "docker_insecure_registries": [mirror.removeprefix("http://")],
    }


def cmd_vars(args: argparse.Namespace) -> int:
    print(json.dumps(role_vars(load_state()), indent=2))
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    state = load_state()
    if engine.docker_running():
        for host in hosts.running():
            hosts.stop(host.name)
    aptrepo.stop(state)
    registry.stop(state)
    proxy.stop(state)
    if engine.docker_running():
        network.remove(state)
    save_state(state)
    return 0


def parse_pairs(pairs: list[str]) -> list[tuple[str, str]]:
    parsed = []
    for pair in pairs:
        name, _, release = pair.partition("=")
        if not name or not release:
            raise TestbedError(f"expected NAME=RELEASE, got {pair!r}")
        parsed.append((name, release))
    return parsed


def cmd_hosts(args: argparse.Namespace) -> int:
    if args.action == "start":
        started = hosts.start_many(parse_pairs(args.names))
        if args.egress == "proxy":
            state = load_state()
            for host in started:
                proxy.block_direct(hosts.container(host.name), state)
        print(hosts.as_json(started))
    elif args.action == "stop":
        hosts.stop_many(args.names)
    elif args.action == "list":
        print(hosts.as_json(hosts.running()))
    elif args.action == "inventory":
        chosen = [h for h in hosts.running() if not args.names or h.name in args.names]
        print(json.dumps(hosts.inventory(chosen), indent=2))
    return 0


def cmd_proxy(args: argparse.Namespace) -> int:
    """The proxy alone (`up` starts it with everything else): start it, or say where it is."""
    state = load_state()
    if args.action == "up":
        try:
            proxy.ensure(state)
        finally:
            save_state(state)
    found = servers.url(state, "proxy")
    print(json.dumps({"proxy": found, "proxy_log": str(proxy.log_path())}, indent=2))
    return 0 if found else 1


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m testbed", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="install, build and start everything (idempotent)")
    up.add_argument(
        "--releases",
        help="comma-separated codenames (default: " + ",".join(releases.DEFAULT_RELEASES) + ")",
    )
    up.set_defaults(func=cmd_up)
    repo = sub.add_parser("repo", help="rebuild only the apt repository (after `up`)")
    repo.add_argument("action", choices=["up"])
    repo.add_argument("--releases", help="comma-separated codenames (default: those built)")
    repo.set_defaults(func=cmd_repo)
    sub.add_parser("status", help="what runs; exit 1 unless ready").set_defaults(func=cmd_status)
    sub.add_parser("down", help="stop servers and hosts (images stay cached)").set_defaults(
        func=cmd_down
    )
    sub.add_parser("vars", help="role variables pointing at the fixtures (JSON)").set_defaults(
        func=cmd_vars
    )
    host_cmd = sub.add_parser("hosts", help="start/stop/list host containers")
    host_cmd.add_argument("action", choices=["start", "stop", "list", "inventory"])
    host_cmd.add_argument("names", nargs="*", help="NAME=RELEASE for start; NAME otherwise")
    host_cmd.add_argument(
        "--egress",
        choices=["direct", "proxy"],
        default="direct",
        help="proxy: the hosts reach the repository and the registry through the proxy only",
    )
    host_cmd.set_defaults(func=cmd_hosts)
    proxy_cmd = sub.add_parser("proxy", help="start the forwarding proxy, or show it")
    proxy_cmd.add_argument("action", choices=["up", "status"])
    proxy_cmd.set_defaults(func=cmd_proxy)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except TestbedError as exc:
        print(f"testbed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

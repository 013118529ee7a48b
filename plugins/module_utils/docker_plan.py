# What the docker role changes on a host, decided in one place: make_plan(host, want, paths,
# rules) turns what docker_host_facts read (HOST), the role's variables (WANT), the managed paths
# and the role's constants (PATHS, RULES: vars/main.yml) into a plan. Pure: no I/O, so every
# decision is unit-tested case by case (tests/unit/plugins/module_utils/test_docker_plan.py).
#
# The plan (a dict of plain values; the role's tasks follow it, vars/main.yml only wires it):
#   resolved      the effective repository URL, key URL, fingerprint, architecture, release
#   problems      one sentence each; the run stops before any change when there are any
#   warnings      one sentence each; shown, the run goes on
#   needs         readings that cost a process or a connection and that a decision depends on
#                 ("engine": containers and live-restore, "candidate": apt's docker-ce candidate,
#                 "dpkg_audit"): the read module makes them and plans again (host["read"] lists
#                 those made)
#   changes       anything to do at all (the role includes its steps only then)
#   one dict per step, each with "needed": dpkg, legacy, prerequisites, repository, conflicts,
#   daemon, packages, service, users; absent (docker_state=absent)
#   restart       how dockerd takes this run's changes (engine_restart: the one restart rule)
# The tasks read only these fields; after an install, docker_apt_install returns the service and
# users steps again, by the same functions on what the maintainer scripts left
# (after_install_plan).
# Python 3.8: no newer syntax or library calls.
from __future__ import annotations

import fnmatch
import os
from typing import Any, Dict, List, Optional, Set, Tuple

from ansible_collections.provision.hosts.plugins.module_utils.docker_apt_sources import (
    is_docker_uri,
    normalize_uri,
    read_entries,
)
from ansible_collections.provision.hosts.plugins.module_utils.docker_files import to_json
from ansible_collections.provision.hosts.plugins.module_utils.docker_formats import (
    CHECKED_OPTIONS,
    SUPPORTED_ARCHITECTURES,
    TLS_OPTIONS,
    apt_auth_entry,
    masked,
    normalize_fingerprint,
    option_problem,
    without_credentials,
)
from ansible_collections.provision.hosts.plugins.module_utils.docker_plan_types import (
    AbsentDaemon,
    AbsentStep,
    AbsentUsers,
    AfterInstall,
    DaemonStep,
    DpkgStep,
    LegacyStep,
    PackagesStep,
    PrerequisitesStep,
    RepositoryStep,
    Resolved,
    Restart,
    Rewrite,
    ServiceStep,
    UsersStep,
)
from ansible_collections.provision.hosts.plugins.module_utils.docker_proxy import (
    apt_conf,
    cli_config_step,
    daemon_proxies,
    engine_problem,
    file_mode,
)
from ansible_collections.provision.hosts.plugins.module_utils.docker_versions import (
    is_glob,
    major,
    target,
)

# A reading, a variable set, a step: plain JSON-like values.
Data = Dict[str, Any]

DOCKER_REPOSITORY = "https://download.docker.com/linux/"
# The steps of each docker_state, in the order the role runs them.
PRESENT_STEPS = (
    "dpkg",
    "legacy",
    "prerequisites",
    "repository",
    "conflicts",
    "daemon",
    "packages",
    "service",
    "users",
    "cli_config",
)
ABSENT_STEPS = ("dpkg", "legacy", "absent")
ROOT_FILE = ("0644", 0, 0)
ROOT_DIR = ("0755", 0, 0)
SECRET_FILE = ("0600", 0, 0)
_MISSING = object()


# --- what the variables mean on this host -----------------------------------------------------


def resolve(os_release: Dict[str, str], architecture: str, want: Data) -> Resolved:
    """The effective values of the variables whose default depends on the host."""
    distribution = os_release.get("distribution", "")
    given = want.get("repository_url") or ""
    # Credentials in the URL go to apt's auth.conf.d (docker_apt_source), never into the plan,
    # docker.sources or a message.
    repository = without_credentials(given) if given else DOCKER_REPOSITORY + distribution
    key_url = want.get("key_url") or ""
    return {
        "distribution": distribution,
        "codename": os_release.get("codename", ""),
        "os_name": os_release.get("name", "an unknown OS"),
        "repository_url": repository,
        "repository_auth": bool(given) and apt_auth_entry(given) is not None,
        "key_url": without_credentials(key_url) if key_url else repository.rstrip("/") + "/gpg",
        "fingerprint": normalize_fingerprint(want.get("fingerprint", "")),
        "architecture": want.get("architecture") or architecture,
    }


def source_content(resolved: Resolved, want: Data, paths: Data, rules: Data) -> str:
    """docker.sources, deb822; its first line marks it as the role's."""
    return (
        "%s; local changes are overwritten.\n"
        "Types: deb\nURIs: %s\nSuites: %s\nComponents: %s\nArchitectures: %s\nSigned-By: %s\n"
        % (
            rules["source_marker"],
            resolved["repository_url"],
            resolved["codename"],
            want["channel"],
            resolved["architecture"],
            paths["key"],
        )
    )


def daemon_desired(want: Data) -> Data:
    """The daemon.json keys the role owns: docker_daemon_options plus the dedicated variables."""
    desired = dict(want.get("daemon_options") or {})
    if want.get("registry_mirrors"):
        desired["registry-mirrors"] = list(want["registry_mirrors"])
    if want.get("insecure_registries"):
        desired["insecure-registries"] = list(want["insecure_registries"])
    if want.get("live_restore") is not None:
        desired["live-restore"] = bool(want["live_restore"])
    proxies = daemon_proxies(want.get("proxy"))
    if proxies:
        desired["proxies"] = proxies
    hosts = desired.get("hosts")
    if isinstance(hosts, list) and "fd://" not in hosts:
        # the role manages docker.socket: dockerd keeps the socket systemd passes it
        desired["hosts"] = ["fd://"] + list(hosts)
    return desired


def hosts_dropin(rules: Data) -> str:
    """docker.service's drop-in for a daemon.json that sets "hosts": dockerd refuses a listener
    given both as -H (Docker's unit passes -H fd://) and in the file."""
    return (
        "%s; local changes are overwritten.\n"
        '# daemon.json sets "hosts": dockerd refuses -H next to it.\n'
        "[Service]\nExecStart=\nExecStart=%s\n" % (rules["source_marker"], rules["dockerd_command"])
    )


# --- small readings of the host ----------------------------------------------------------------


def in_place(
    state: Optional[Data], wanted: Tuple[str, int, int], content: Optional[str] = None
) -> bool:
    """STATE (docker_host_facts' reading of a path) is a file or directory with WANTED
    (mode, uid, gid) and, when given, exactly CONTENT."""
    if not state or not state.get("exists"):
        return False
    if (state.get("mode"), state.get("uid"), state.get("gid")) != wanted:
        return False
    if state.get("is_dir") != (wanted == ROOT_DIR):
        return False
    return content is None or state.get("content") == content


def installed(host: Data) -> List[str]:
    return sorted(
        n for n, p in (host.get("packages") or {}).items() if p.get("status") == "installed"
    )


def at_version(package: Data, version: str) -> bool:
    """PACKAGE (a dpkg reading) is installed at VERSION, a glob as apt takes it (5:27.*)."""
    return package.get("status") == "installed" and fnmatch.fnmatchcase(
        package.get("version", ""), version
    )


def record_keys(host: Data) -> List[str]:
    """The daemon.json keys the role owned after its last run (the record it keeps)."""
    record = (host.get("files") or {}).get("record") or {}
    data = record.get("json")
    keys = data.get("daemon_keys") if isinstance(data, dict) else None
    return [str(k) for k in keys] if isinstance(keys, list) else []


def unit_state(host: Data, name: str) -> Data:
    return (host.get("units") or {}).get(name) or {}


def engine_active(host: Data) -> bool:
    return unit_state(host, "docker").get("active") == "active"


def engine_config_stale(host: Data) -> bool:
    """dockerd runs with an older daemon.json than the one on disk: it was started before the
    file last changed, and the role did not reload it since (a run that failed after writing the
    file lost its restart)."""
    docker = unit_state(host, "docker")
    config = (host.get("files") or {}).get("daemon_json") or {}
    started = docker.get("started_at")
    if docker.get("active") != "active" or not started or not config.get("exists"):
        return False
    record = ((host.get("files") or {}).get("record") or {}).get("json")
    if isinstance(record, dict) and record.get("reloaded_mtime_ns") == config.get("mtime_ns"):
        return False
    return int(config.get("mtime", 0)) > int(started)


def supported_names(releases: Dict[str, Dict[str, str]]) -> str:
    """RULES' supported releases as a sentence names them: "Ubuntu 20.04, 22.04 and Debian 12"."""
    names = [
        "%s %s"
        % (
            {"ubuntu": "Ubuntu", "debian": "Debian"}.get(d, d),
            ", ".join(sorted(v.values(), key=lambda n: [int(x) for x in n.split(".")])),
        )
        for d, v in releases.items()
    ]
    return " and ".join(names)


# --- preflight ----------------------------------------------------------------------------------


def preflight(host: Data, want: Data, resolved: Resolved, rules: Data) -> List[str]:
    """What the role refuses to do on this host, one sentence each."""
    problems = []
    releases = rules["supported_releases"].get(resolved["distribution"]) or {}
    if resolved["codename"] not in releases or (
        not want.get("architecture") and resolved["architecture"] not in SUPPORTED_ARCHITECTURES
    ):
        problems.append(
            "The docker role supports %s on %s; this host runs %s (%s %s) on %s (dpkg"
            " architecture %s)."
            % (
                supported_names(rules["supported_releases"]),
                " or ".join(SUPPORTED_ARCHITECTURES),
                resolved["os_name"],
                resolved["distribution"],
                resolved["codename"] or "?",
                host.get("machine", "?"),
                host.get("architecture") or "?",
            )
        )
    values = {
        "docker_apt_key_fingerprint": want.get("fingerprint", ""),
        "docker_apt_repository_url": want.get("repository_url") or resolved["repository_url"],
        "docker_apt_key_url": want.get("key_url") or resolved["key_url"],
        "docker_registry_mirrors": want.get("registry_mirrors") or [],
        "docker_insecure_registries": want.get("insecure_registries") or [],
        "docker_daemon_options": want.get("daemon_options") or {},
        "docker_proxy": want.get("proxy") or {},
    }
    if want.get("architecture"):
        values["docker_apt_architecture"] = want["architecture"]
    for name in CHECKED_OPTIONS:
        if name not in values:
            continue
        problem = option_problem(name, values[name])
        if problem:
            shown = "" if isinstance(values[name], (list, dict)) else " %r" % values[name]
            problems.append(masked("%s%s %s." % (name, shown, problem.rstrip("."))))
    problems += tls_problems(host, want)
    daemon_json = (host.get("files") or {}).get("daemon_json") or {}
    if "json_error" in daemon_json or not isinstance(daemon_json.get("json", {}), dict):
        problems.append(
            "%s must hold a JSON object; fix or remove it (%s)."
            % (
                daemon_json.get("path", "daemon.json"),
                daemon_json.get("json_error", "it holds another JSON value"),
            )
        )
    if want["state"] == "present":
        unknown = [u for u in want.get("users") or [] if not (host.get("users") or {}).get(u)]
        if unknown:
            problems.append(
                "docker_users names users that do not exist on this host: %s. The role adds users"
                " to the docker group; it does not create them." % ", ".join(unknown)
            )
    return problems


def tls_problems(host: Data, want: Data) -> List[str]:
    """The TLS files docker_daemon_options names for a network listener: regular files on the
    host, the key readable by root alone (whoever reads it can pose as the daemon)."""
    options = want.get("daemon_options") or {}
    if want["state"] != "present" or option_problem("docker_daemon_options", options):
        return []  # a malformed value is reported as such
    found = host.get("tls_files") or {}
    problems = []
    for name in TLS_OPTIONS:
        path = options.get(name)
        if not isinstance(path, str):
            continue
        state = found.get(path) or {}
        if not state.get("exists") or not state.get("is_file"):
            problems.append(
                "docker_daemon_options %s %s is not a file on this host: put the daemon's TLS"
                " files in place before the role opens the daemon to the network." % (name, path)
            )
        elif name == "tlskey" and (state.get("uid") != 0 or int(state["mode"], 8) & 0o077):
            problems.append(
                "docker_daemon_options tlskey %s is %s uid %s: it must be root's alone (0600 or"
                " 0400), whoever reads it can pose as the daemon."
                % (path, state["mode"], state.get("uid"))
            )
    return problems


def warnings(resolved: Resolved, rules: Data) -> List[str]:
    found = []
    if resolved["codename"] in rules["end_of_life_releases"]:
        found.append(
            "%s (%s) has reached end of life for Docker: Docker no longer supports it or tests"
            " it, although its packages still install. Plan an upgrade of this host."
            % (resolved["os_name"], resolved["codename"])
        )
    return found


# --- the steps ------------------------------------------------------------------------------------


def dpkg_step(host: Data, apt_calls: bool) -> DpkgStep:
    """An interrupted dpkg (a pending journal, or packages dpkg --audit reports half-installed)
    makes apt refuse to work: dpkg --configure -a before the first apt call, when there is one."""
    dpkg = host.get("dpkg") or {}
    journal = list(dpkg.get("journal") or [])
    audit = (dpkg.get("audit") or "").strip()
    return {
        "needed": bool(apt_calls and (journal or audit)),
        "apt_calls": bool(apt_calls),
        "journal": journal,
        "audit": audit.splitlines()[:3],
    }


def rewritten(path: str, source: Data, content: str) -> Rewrite:
    """How a source file that keeps other repositories is written back, never wider than it may
    be (whoever can write a source file gets root at the next apt run): root:root, its mode
    without group/world write (and without set-id bits); a symlink edited where it points only
    when that is a root-owned regular file under /etc/apt, else replaced by a file of its own."""
    if source.get("link") and not source.get("target_ok"):
        return {"content": content, "dest": path, "mode": "0644"}
    mode = int(str(source.get("mode") or "0644"), 8) & 0o755
    return {"content": content, "dest": source.get("target") or path, "mode": "%04o" % mode}


def legacy_step(
    host: Data, resolved: Resolved, paths: Data, rules: Data
) -> Tuple[LegacyStep, List[str]]:
    """Docker sources and keys the role did not write: files holding only Docker's entries go,
    files that also hold other repositories lose only Docker's entries."""
    delete, rewrite, problems = [], {}, []
    shared_mirror = False  # an entry that stays is served from docker_apt_repository_url
    mirror = normalize_uri(resolved["repository_url"])
    own = paths["source"]
    for path, source in sorted((host.get("sources") or {}).items()):
        name, content = os.path.basename(path), source.get("content", "")
        if path == own and content.startswith(rules["source_marker"]):
            continue  # the role's own
        entries = read_entries(name, content, resolved["repository_url"])
        named = any(fnmatch.fnmatch(name, p) for p in rules["legacy_source_patterns"])
        shared_mirror = shared_mirror or (entries.other > 0 and mirror in entries.without_docker)
        if path == paths["main_list"]:
            if entries.docker:
                rewrite[path] = rewritten(path, source, entries.without_docker)
        elif entries.other == 0 and (entries.docker or named or path == own):
            delete.append(path)
        elif entries.docker and path == own:
            problems.append(
                "%s was not written by this role and holds other repositories besides Docker's:"
                " move them to another file (the role writes its own %s)." % (path, name)
            )
        elif entries.docker:
            rewrite[path] = rewritten(path, source, entries.without_docker)
    delete += [p for p in host.get("legacy_keys") or [] if p not in delete]
    docker_keys = {rules["official_key_fingerprint"], resolved["fingerprint"]}
    if shared_mirror:
        # the mirror's key may sign the distribution's entries it serves too: it stays trusted
        docker_keys.discard(resolved["fingerprint"])
        docker_keys.add(rules["official_key_fingerprint"])
    apt_keys = sorted(set(host.get("apt_key_fingerprints") or []) & docker_keys)
    return {
        "needed": bool(delete or rewrite or apt_keys),
        "delete": sorted(delete),
        "rewrite": rewrite,
        "apt_key_fingerprints": apt_keys,
    }, problems


def repository_step(
    host: Data, resolved: Resolved, content: str, paths: Data
) -> Tuple[RepositoryStep, List[str]]:
    """The key: kept when it is exactly one armored key with the expected fingerprint (only its
    owner and mode fixed when they differ), replaced by a verified download otherwise. The source:
    written when its content or attributes differ."""
    key = host.get("key") or {}
    found = "missing"
    if key.get("exists"):
        found = key.get("problem") or (
            "holds the key %s, not %s" % (key.get("fingerprint"), resolved["fingerprint"])
            if key.get("fingerprint") != resolved["fingerprint"]
            else ""
        )
    if found:
        key_action = "replace"
    elif not in_place(key, ROOT_FILE) or not in_place(
        (host.get("dirs") or {}).get(paths["keyring_dir"]), ROOT_DIR
    ):
        key_action = "attributes"
    else:
        key_action = "keep"
    source = (host.get("files") or {}).get("source") or {}
    source_content_changes = source.get("content") != content
    source_action = (
        "write"
        if source_content_changes
        else ("keep" if in_place(source, ROOT_FILE) else "attributes")
    )
    auth_action = auth_step(host, resolved)
    warning = []
    if key.get("exists") and found:
        warning.append(
            "%s %s: the role replaces it with the key from %s once that is verified."
            % (paths["key"], found, resolved["key_url"])
        )
    return {
        "needed": key_action != "keep" or source_action != "keep" or auth_action != "keep",
        "key": key_action,
        "source": source_action,
        "source_content": content,
        "auth": auth_action,
        # apt must read its lists again only when what it trusts, reads or logs in with changed
        "refresh_cache": key_action == "replace" or source_content_changes or auth_action != "keep",
        "apt_proxy": "keep",  # with_apt_proxy decides
        "apt_proxy_content": "",
    }, warning


def auth_step(host: Data, resolved: Resolved) -> str:
    """The repository's credentials file in auth.conf.d (root 0600): written when the URL has
    credentials and the file does not hold exactly them (docker_host_facts compares it on the
    host and returns only whether it matches), removed when the URL has none and the file is
    the role's."""
    auth = (host.get("files") or {}).get("auth") or {}
    if resolved["repository_auth"]:
        return "keep" if auth.get("current") and in_place(auth, SECRET_FILE) else "write"
    return "remove" if auth.get("exists") and auth.get("ours") else "keep"


def with_apt_proxy(
    step: RepositoryStep, host: Data, resolved: Resolved, want: Data, rules: Data
) -> RepositoryStep:
    """The repository step with the role's apt.conf.d file for Docker's host: written when
    docker_proxy names a proxy for the repository's scheme (root 0644, 0600 when the proxy
    carries credentials), deleted when it no longer does."""
    content = apt_conf(resolved["repository_url"], want.get("proxy"), rules["source_marker"])
    state = (host.get("files") or {}).get("apt_proxy") or {}
    if content:
        wanted = (file_mode(want.get("proxy")), 0, 0)
        action = "keep" if in_place(state, wanted, content) else "write"
    else:
        action = "delete" if state.get("exists") else "keep"
    step["apt_proxy"], step["apt_proxy_content"] = action, content
    step["needed"] = step["needed"] or action != "keep"
    return step


def daemon_step(
    host: Data, want: Data, paths: Data, rules: Data, replaced_engine: bool
) -> DaemonStep:
    """daemon.json: the role's keys merged in (keys it owned before and no longer sets go, every
    other key stays), written only when that changes the content, and how the running engine
    takes it (daemon_apply)."""
    files = host.get("files") or {}
    dirs = host.get("dirs") or {}
    state = files.get("daemon_json") or {}
    current: Data = state["json"] if isinstance(state.get("json"), dict) else {}
    desired = daemon_desired(want)
    dropped = set(record_keys(host)) - set(desired)
    merged = {k: v for k, v in current.items() if k not in dropped}
    merged.update(desired)
    changed = sorted(
        k for k in set(current) | set(merged) if current.get(k, _MISSING) != merged.get(k, _MISSING)
    )
    record = {"daemon_keys": sorted(desired)}
    record_state = files.get("record") or {}
    record_ok = (
        in_place(record_state, ROOT_FILE)
        and record_keys(host) == record["daemon_keys"]
        and (isinstance(record_state.get("json"), dict))
    )
    # root's alone when it holds the proxy's credentials (docker_proxy)
    attributes = (file_mode(want.get("proxy")), 0, 0)
    file_ok = in_place(state, attributes) or (not state.get("exists") and not merged)
    dirs_ok = all(
        in_place(dirs.get(d), ROOT_DIR) for d in (paths["docker_dir"], paths["facts_dir"])
    )
    dropin = hosts_dropin(rules) if "hosts" in merged else ""
    dropin_state = files.get("hosts_dropin") or {}
    dropin_ok = (
        in_place(dropin_state, ROOT_FILE, dropin) if dropin else not dropin_state.get("exists")
    )
    # a changed drop-in (ExecStart) takes a restart, like a changed key only a restart applies
    keys = changed + ([] if dropin_ok else ["docker.service ExecStart"])
    return {
        "needed": bool(changed) or not file_ok or not dirs_ok or not record_ok or not dropin_ok,
        "config": merged,
        "record": record,
        "changed_keys": keys,
        "dropin": dropin,
        "apply": daemon_apply(host, want, rules, keys, merged, replaced=replaced_engine),
    }


def refresh_mode(docker_changed: bool, legacy_removed: bool, no_candidate: bool) -> Tuple[str, str]:
    """Which of apt's lists are read again before the install, and why: "docker" (Docker's
    source may do alone: docker_apt_install checks that the distribution's lists are current,
    and refreshes every source otherwise or when the install fails) when only Docker's key
    or source changed; "full" when legacy sources went (apt's view of other sources changed
    too) or apt must install without a docker-ce candidate although the source stayed (a run
    that failed half-way must not break the next; the cause may be any list); "none"."""
    if legacy_removed:
        return "full", "legacy Docker sources or keys were removed"
    if docker_changed:
        return "docker", "Docker's key or source changed"
    if no_candidate:
        return "full", "apt has no docker-ce candidate to install"
    return "none", ""


def packages_step(
    host: Data, want: Data, docker_changed: bool, legacy_removed: bool
) -> PackagesStep:
    """Docker's packages apt must act on (missing, or not at docker_version), the dpkg selections
    to change (held with docker_version, released without), and how apt reads its lists again
    first (refresh_mode)."""
    packages = host.get("packages") or {}
    present = set(installed(host))
    version = want.get("version") or ""
    pinned = [p for p in want["packages"] if p in want["version_packages"]]
    install = [p for p in want["packages"] if p not in present]
    if version:
        install += [p for p in pinned if p in present and not at_version(packages[p], version)]
    specs = [p + "=" + version if version and p in pinned else p for p in want["packages"]]
    # apt-get install sets a package it installs back to "install": held again afterwards.
    held = [p for p in pinned if (packages.get(p) or {}).get("want") == "hold" and p not in install]
    hold = bool(version) or bool(want.get("hold"))
    selections = (
        {p: "hold" for p in pinned if p not in held} if hold else {p: "install" for p in held}
    )
    simulate, check_mode = host.get("candidate") is True, bool(host.get("check_mode"))
    refresh, why = refresh_mode(docker_changed, legacy_removed, bool(install) and not simulate)
    return {
        "needed": bool(install or selections or docker_changed or legacy_removed),
        "install": install,
        "specs": specs,
        "install_specs": [s for p, s in zip(want["packages"], specs) if p in install],
        # apt's candidate decides the refresh only when neither Docker's source nor a legacy
        # one changed; check mode asks apt to simulate the install only when it has one.
        "reads_candidate": bool(install)
        and (bool(host.get("check_mode")) or not (docker_changed or legacy_removed)),
        "selections": selections,
        "refresh": refresh,
        "refresh_why": why,
        "refresh_cache": refresh != "none",
        "apt": refresh != "none" or bool(install),
        "allow_downgrade": bool(version),
        # In check mode apt can simulate the install only with a docker-ce candidate (on a fresh
        # host the source is not written yet); without one, nothing is installed, so neither
        # is anything held.
        "simulate": simulate,
        "unplannable": bool(install) and check_mode and not simulate,
        "apply_selections": not check_mode or simulate,
    }


def prerequisites_step(host: Data, rules: Data, present: Set[str]) -> PrerequisitesStep:
    """The prerequisites to install, and how old apt's lists may be for that: any age apt
    trusts (an hour) when every one has a candidate, none otherwise (a fresh image, a component
    added since: apt would settle for a virtual package now and install the real one on the
    next run)."""
    missing = [p for p in rules["prerequisite_packages"] if p not in present]
    known = host.get("prerequisite_candidates") or {}
    return {
        "needed": bool(missing),
        "missing": missing,
        "cache_valid_time": 3600 if missing and all(known.get(p) for p in missing) else 0,
    }


def units_order(want: Data) -> List[str]:
    """containerd, the socket, then docker to start; the reverse to stop (a socket left listening
    would start dockerd again on the next connection)."""
    if want["service_state"] == "started":
        return ["containerd", "docker.socket", "docker"]
    return ["docker.socket", "docker", "containerd"]


def service_step(host: Data, want: Data, restart: Restart, settle: bool) -> ServiceStep:
    """The units not enabled/running as docker_service_enabled/_state say; RESTART
    (engine_restart) whether and why the role restarts dockerd; SETTLE: this run installs or
    reloads, so dockerd must prove it answers (a started unit can be crash-looping)."""
    enabled = "enabled" if want["service_enabled"] else "disabled"
    active = ("active",) if want["service_state"] == "started" else ("inactive", "failed")
    units = []
    for name in units_order(want):
        unit = unit_state(host, name)
        if not unit or unit.get("load") in ("", "not-found"):
            continue
        if unit.get("enabled") not in (enabled, "static") or unit.get("active") not in active:
            units.append(name)
    failed = unit_state(host, "docker").get("active") == "failed"
    prove = (
        want["service_state"] == "started"
        and not host.get("check_mode")  # nothing was installed or started
        and bool(units or restart["restart"] or settle)
    )
    return {
        "needed": bool(units or restart["restart"] or prove),
        "units": units,
        "restart": restart["restart"],
        # docker.service allows 3 starts a minute: a deliberate (re)start clears that limit first
        "reset_failed": restart["restart"] or failed,
        "prove": prove,
    }


def default_users(login_hint: Optional[str], login: str) -> List[str]:
    """docker_users' default (null): the user Ansible connects as (``ansible_user`` when the
    inventory names it, else LOGIN, what sudo names on the host), unless that is root. Read on
    the host so that the role needs no facts."""
    user = login_hint or login
    return [] if user in ("", "root") else [user]


def users_record(host: Data) -> Data:
    """The reading of the record users.yml keeps of the role's last docker_users."""
    return (host.get("files") or {}).get("users_record") or {}


def recorded_users(host: Data) -> List[str]:
    """The docker_users of the role's last run on this host."""
    data = users_record(host).get("json")
    users = data.get("users") if isinstance(data, dict) else None
    return [str(u) for u in users] if isinstance(users, list) else []


def group_members(host: Data) -> List[str]:
    """The docker group's members ([] when the group does not exist)."""
    group = host.get("group") or {}
    return list(group.get("members") or []) if group.get("exists") else []


def users_step(host: Data, want: Data) -> UsersStep:
    """docker_users is the whole list: every listed user in the docker group; a member the role
    was told before (the record of its last list) and is no longer listed removed; with
    docker_users_exclusive, every member not listed removed. Other members stay. The record then
    holds this list."""
    members = group_members(host)
    listed = list(dict.fromkeys(want.get("users") or []))
    add = [u for u in listed if u not in members]
    before = set(recorded_users(host))
    remove = [
        m for m in members if m not in listed and (want.get("users_exclusive") or m in before)
    ]
    state = users_record(host)
    record = {"users": sorted(listed)}
    record_ok = (
        in_place(state, ROOT_FILE) and state.get("json") == record
        if state.get("exists")
        else not listed
    )
    return {
        "needed": bool(add or remove or not record_ok),
        "add": add,
        "remove": remove,
        "record": record,
        "create_group": not (host.get("group") or {}).get("exists"),
    }


def absent_users(host: Data) -> AbsentUsers:
    """docker_state=absent: the members the role was told last time leave the docker group (the
    group stays, with the members the role never listed), and the record goes."""
    before = recorded_users(host)
    remove = [m for m in group_members(host) if m in before]
    recorded = bool(users_record(host).get("exists"))
    return {"needed": bool(remove or recorded), "remove": remove}


# --- the running engine: how this run's changes reach dockerd (one rule) ------------------------


def daemon_apply(
    host: Data, want: Data, rules: Data, changed: List[str], config: Data, *, replaced: bool
) -> str:
    """How a running dockerd takes daemon.json's CHANGED keys (CONFIG: the new content): "none"
    when nothing changed, the engine is not running, stays stopped or is about to be REPLACED
    (it first starts with the new file); "reload" (SIGHUP, no container stops) when dockerd
    reloads every changed key; "restart" otherwise. dockerd's reload applies only keys present
    in the file: a key dropped from it needs a restart."""
    if not changed or replaced or not engine_active(host) or want["service_state"] != "started":
        return "none"
    if all(k in rules["reloadable_daemon_keys"] and k in config for k in changed):
        return "reload"
    return "restart"


def engine_restart(
    host: Data, want: Data, rules: Data, daemon: Data, install: List[str]
) -> Restart:
    """Whether dockerd restarts in this run, by the role ("restart") or by the packages
    ("by_packages"), and why. The role restarts it when it runs an older daemon.json than the one
    on disk (a run that failed after writing the file lost its restart), or when daemon.json
    changes a key only a restart applies (DAEMON: the daemon step) and nothing is to INSTALL
    first: after an install, the reading after it tells (maintainer scripts that restarted
    dockerd leave nothing to do). Installing another version of the running engine's package
    restarts it (its maintainer scripts do)."""
    apply, started = daemon["apply"], want["service_state"] == "started"
    stale = started and engine_config_stale(host)
    by_role = started and apply == "restart" and not install
    engine = rules["engine_package"]
    by_packages = (
        engine in install and engine in installed(host) and engine_active(host) and started
    )
    if apply == "restart":
        why = "daemon.json changes %s, and dockerd applies that only on a restart" % ", ".join(
            daemon["changed_keys"]
        )
    elif stale:
        why = "it runs an older daemon.json than the one on disk"
    elif by_packages:
        why = "%s installs another version of the running %s" % (
            want.get("version_why") or "docker_version %s" % (want.get("version") or "?"),
            engine,
        )
    else:
        why = ""
    return {
        "restart": bool(stale or by_role),
        "by_packages": bool(by_packages),
        # a restart of either kind, pending in this run (also after an install that comes first)
        "pending": bool(stale or apply == "restart" or by_packages),
        "why": why,
    }


# --- the running engine: no surprise restart, no silent removal ------------------------------


def engine_rules(
    plan: Data, host: Data, want: Data, rules: Data
) -> Tuple[List[str], List[str], bool]:
    """Problems and warnings that depend on the containers the engine runs, and whether such a
    decision is pending and host["engine"] was not read yet."""
    restart = plan["restart"]
    replacing = rules["distribution_engine"] in plan["conflicts"]["remove"] and engine_active(host)
    if not (restart["pending"] or replacing):
        return [], [], False
    engine = host.get("engine")
    if engine is None:
        return [], [], True
    if replacing:
        engine_name = rules["distribution_engine"]
        problems, warned = removal_guard(
            engine,
            want,
            who="The distribution's Docker engine (%s)" % engine_name,
            removal="Replacing it with Docker CE removes %s" % engine_name,
            before="changing",
            removed=engine_name,
            kept=" (data in /var/lib/docker is kept)",
        )
        return problems, warned, False
    containers = engine.get("containers")
    problems, warned = [], []
    why = restart["why"]
    if containers is None:
        warned.append(
            "dockerd must restart (%s); it does not answer (%s), so the role restarts"
            " it." % (why, engine.get("error", "no answer"))
        )
    elif containers and not engine.get("live_restore"):
        if want["restart_running_engine"]:
            warned.append(
                "docker_restart_running_engine is true: dockerd restarts (%s) and its %d running"
                " container(s) stop: %s." % (why, len(containers), ", ".join(containers))
            )
        else:
            problems.append(
                "dockerd must restart (%s), and it runs %d container(s) that a restart stops"
                " (live-restore is off): %s. The role stopped before changing anything. Stop"
                " them and run again, or set docker_restart_running_engine=true to restart"
                " anyway (containers with a restart policy start again)."
                % (why, len(containers), ", ".join(containers))
            )
    return problems, warned, False


def removal_guard(
    engine: Data, want: Data, *, who: str, removal: str, before: str, removed: str, kept: str = ""
) -> Tuple[List[str], List[str]]:
    """The one guard on removing a running engine (ENGINE: its reading): WHO does not answer, or
    runs containers that REMOVAL stops, and the run stops before BEFORE anything, unless
    docker_remove_running_engine, which warns with them instead. Problems and warnings."""
    containers = engine.get("containers")
    if containers is None:
        return [
            "%s is active but does not answer (%s), so the role cannot tell whether it runs"
            " containers and stopped before %s anything. Set docker_remove_running_engine=true"
            " to remove it anyway." % (who, engine.get("error", "no answer"), before)
        ], []
    if not containers:
        return [], []
    if not want["remove_running_engine"]:
        return [
            "%s is running %d container(s): %s. %s and stops them, so the role stopped before"
            " %s anything. Stop or migrate those containers and run again, or set"
            " docker_remove_running_engine=true to remove the engine anyway%s."
            % (who, len(containers), ", ".join(containers), removal, before, kept)
        ], []
    return [], [
        "docker_remove_running_engine is true: %s is removed and its %d running container(s)"
        " stop: %s." % (removed, len(containers), ", ".join(containers))
    ]


def removal_rules(
    plan: Data, host: Data, want: Data, rules: Data
) -> Tuple[List[str], List[str], bool]:
    """docker_state=absent has the guard docker_state=present has (removal_guard): removing an
    engine that runs containers stops them. Returns problems, warnings and whether the engine
    must be read first."""
    if rules["engine_package"] not in plan["absent"]["packages"] or not engine_active(host):
        return [], [], False
    engine = host.get("engine")
    if engine is None:
        return [], [], True
    problems, warned = removal_guard(
        engine,
        want,
        who="dockerd",
        removal="docker_state=absent removes the engine",
        before="removing",
        removed="the engine",
    )
    return problems, warned, False


# --- which engine version: the upgrade policy -------------------------------------------------


def versioned_want(host: Data, want: Data, rules: Data) -> Tuple[Data, bool]:
    """WANT with docker_version resolved by docker_upgrade and docker_version's glob to the exact
    version this run installs (docker_versions.target), held; and whether apt's versions of the
    engine package must be read first. docker_upgrade=never with an exact or empty
    docker_version is WANT itself (today's behaviour, no reading)."""
    upgrade, pattern = want.get("upgrade") or "never", want.get("version") or ""
    if upgrade == "never" and not is_glob(pattern):
        return want, False
    if "versions" not in host.get("read", []):
        return dict(want, hold=True), True
    engine = (host.get("packages") or {}).get(rules["engine_package"]) or {}
    installed_version = engine.get("version") if engine.get("status") == "installed" else None
    chosen, why = target(installed_version, host.get("versions") or [], upgrade, pattern)
    return dict(want, hold=True, version=chosen or pattern, version_why=why), False


def upgrade_problems(want: Data) -> List[str]:
    upgrade, version = want.get("upgrade") or "never", want.get("version") or ""
    if upgrade != "never" and version and not is_glob(version):
        return [
            "docker_upgrade=%s moves the engine packages, and docker_version %s pins them: set"
            " one of them (a docker_version glob such as 5:27.* combines with it)."
            % (upgrade, version)
        ]
    return []


def upgrade_notes(plan: Data, host: Data, want: Data, rules: Data) -> List[str]:
    """What the upgrade policy moves the engine to (each host says it, in check mode too), and
    the warning Docker's documentation asks for: live-restore is not promised across a major
    upgrade."""
    engine_name = rules["engine_package"]
    if not want.get("version_why") or engine_name not in plan["packages"]["install"]:
        return []
    engine = (host.get("packages") or {}).get(engine_name) or {}
    before = engine.get("version") if engine.get("status") == "installed" else None
    after = want["version"] or "the newest version apt offers"
    notes = [
        "%s: %s %s %s."
        % (
            want["version_why"],
            engine_name,
            "moves from %s to" % before if before else "is installed at",
            after,
        )
    ]
    running = host.get("engine") or {}
    by_packages = plan["restart"]["by_packages"] and running.get("live_restore")
    if by_packages and before and want["version"] and major(before) != major(after):
        notes.append(
            "%s moves from major version %s to %s with live-restore on: Docker does not"
            " promise that running containers survive a major upgrade (%s)."
            % (
                engine_name,
                major(before),
                major(after),
                ", ".join(running.get("containers") or []) or "none run now",
            )
        )
    return notes


# --- the plan ----------------------------------------------------------------------------------


def make_plan(host: Data, want: Data, paths: Data, rules: Data) -> Data:
    resolved = resolve(host.get("os") or {}, host.get("architecture", ""), want)
    problems = preflight(host, want, resolved, rules)
    warned = warnings(resolved, rules)
    legacy, legacy_problems = legacy_step(host, resolved, paths, rules)
    problems += legacy_problems
    plan: Data = {"resolved": resolved, "legacy": legacy}
    needs_engine = needs_versions = False
    steps: Tuple[str, ...]
    if want["state"] == "absent":
        plan["absent"], kept = absent_step(host, want, paths, rules)
        plan["dpkg"] = dpkg_step(host, bool(plan["absent"]["packages"]))
        absent_problems, absent_warnings, needs_engine = removal_rules(plan, host, want, rules)
        problems += absent_problems
        warned += absent_warnings + kept
        steps = ABSENT_STEPS
    else:
        present = set(installed(host))
        plan["prerequisites"] = prerequisites_step(host, rules, present)
        plan["repository"], key_warnings = repository_step(
            host, resolved, source_content(resolved, want, paths, rules), paths
        )
        warned += key_warnings
        plan["repository"] = with_apt_proxy(plan["repository"], host, resolved, want, rules)
        remove = [p for p in want["conflicting_packages"] if p in present]
        remove = remove if want["remove_conflicting_packages"] else []
        plan["conflicts"] = {"needed": bool(remove), "remove": remove}
        replaced = rules["distribution_engine"] in remove
        plan["daemon"] = daemon_step(host, want, paths, rules, replaced)
        pinned, needs_versions = versioned_want(host, want, rules)
        problems += upgrade_problems(want)
        plan["packages"] = packages_step(
            host, pinned, plan["repository"]["refresh_cache"], legacy["needed"]
        )
        install = plan["packages"]["install"]
        restart = engine_restart(host, pinned, rules, plan["daemon"], install)
        settle = bool(install) or plan["daemon"]["apply"] == "reload"
        plan["service"] = service_step(host, want, restart, settle)
        plan["restart"] = restart
        plan["users"] = users_step(host, want)
        plan["cli_config"], cli_warnings = cli_config_step(
            list(want.get("users") or []), host.get("cli_configs") or {}, want.get("proxy")
        )
        warned += cli_warnings
        engine = (host.get("packages") or {}).get(rules["engine_package"]) or {}
        too_old = engine_problem(
            want.get("proxy"),
            want.get("version") or "",
            engine.get("version", "") if engine.get("status") == "installed" else "",
        )
        problems += [too_old] if too_old else []
        engine_problems, engine_warnings, needs_engine = engine_rules(plan, host, want, rules)
        problems += engine_problems
        warned += engine_warnings + upgrade_notes(plan, host, pinned, rules)
        apt_calls = any(plan[s]["needed"] for s in ("prerequisites", "conflicts", "packages"))
        plan["dpkg"] = dpkg_step(host, apt_calls)
        steps = PRESENT_STEPS
    plan["problems"], plan["warnings"] = problems, warned
    plan["changes"] = any(plan[s]["needed"] for s in steps)
    # Readings that cost a process or a connection, made only when a decision depends on them.
    plan["needs"] = [
        name
        for name, wanted in (
            ("engine", needs_engine),
            ("versions", needs_versions),
            ("candidate", bool((plan.get("packages") or {}).get("reads_candidate"))),
            ("dpkg_audit", plan["dpkg"]["apt_calls"] and not plan["dpkg"]["journal"]),
            (
                "prerequisite_candidates",
                bool((plan.get("prerequisites") or {}).get("missing")),
            ),
        )
        if wanted and name not in host.get("read", [])
    ]
    return plan


def after_install_plan(host: Data, want: Data, rules: Data, answered: bool) -> AfterInstall:
    """The service and users steps once the packages' maintainer scripts have run (they start the
    units and create the docker group), by the same rules on that reading; ANSWERED: dockerd
    answers on its socket already (else it must prove it does)."""
    nothing = {"apply": "none", "changed_keys": []}
    restart = engine_restart(host, want, rules, nothing, [])
    return {
        "service": service_step(host, want, restart, settle=not answered),
        "users": users_step(host, want),
    }


def absent_step(host: Data, want: Data, paths: Data, rules: Data) -> Tuple[AbsentStep, List[str]]:
    """docker_state=absent: Docker's packages, the source and key, the role's daemon.json keys
    (the file goes when nothing else is left in it), the record, and with docker_purge_data the
    data; and the warnings of what it keeps."""
    packages = host.get("packages") or {}
    purge = want.get("purge_data")
    remove = [
        p
        for p in list(want["packages"]) + list(rules["absent_extra_packages"])
        if (packages.get(p) or {}).get("status") == "installed"
        or (purge and (packages.get(p) or {}).get("status") == "config-files")
    ]
    files = host.get("files") or {}
    auth = files.get("auth") or {}
    existing = [
        path
        for path, state in (
            (paths["source"], files.get("source")),
            (paths["key"], host.get("key")),
            (paths["auth"], auth if auth.get("ours") else None),
            (paths["apt_proxy"], files.get("apt_proxy")),
        )
        if (state or {}).get("exists")
    ]
    state = files.get("daemon_json") or {}
    current = state.get("json") if state.get("exists") else None
    # "keep": what is there stays, exactly
    action, config = "keep", current if isinstance(current, dict) else {}
    record = files.get("record") or {}
    if isinstance(current, dict) and record.get("exists"):
        owned = set(record_keys(host))
        remaining = {k: v for k, v in state["json"].items() if k not in owned}
        if not remaining:
            action, config = "delete", {}
        elif remaining != state["json"]:
            action, config = "write", remaining
    dropin = files.get("hosts_dropin") or {}
    daemon: AbsentDaemon = {
        "needed": action != "keep" or bool(record.get("exists")) or bool(dropin.get("exists")),
        "action": action,
        "config": config,
    }
    data = list(host.get("data_dirs") or []) if purge else []
    warned: List[str] = []
    shared = host.get("containerd_users") or []
    if shared:
        # another containerd user (a kubelet, a CRI configuration) runs on containerd.io and
        # keeps its images in containerd's data: both stay
        kept = [p for p in remove if p == rules["containerd_package"]]
        kept += [p for p in data if p == paths["containerd_data"]]
        remove = [p for p in remove if p not in kept]
        data = [p for p in data if p not in kept]
        if kept:
            warned.append(
                "docker_state=absent keeps %s: another user of containerd is on this host (%s)."
                % (" and ".join(kept), "; ".join(shared))
            )
    users = absent_users(host)
    return {
        "needed": bool(remove or existing or daemon["needed"] or data or users["needed"]),
        "packages": remove,
        "files": existing,
        "daemon": daemon,
        "users": users,
        "data_dirs": data,
    }, warned


__all__ = ["after_install_plan", "is_docker_uri", "make_plan", "resolve", "to_json"]

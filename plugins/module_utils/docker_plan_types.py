# The contract between the docker role's plan (docker_plan.make_plan) and its tasks, written
# down: the shape of every step the YAML reads, as TypedDicts. make_plan builds plain dicts of
# exactly these keys (JSON crosses the module boundary); the unit tests prove each step's keys
# equal its type's, for both states, and that every docker__plan.X.Y (and docker__service.X,
# docker__users.X) the role's files read is declared here.
# Python 3.8, standard library only.
from __future__ import annotations

from typing import Any, Dict, List

try:
    from typing import TypedDict
except ImportError:  # Python < 3.8 cannot manage hosts anyway; the shapes stay documentation
    TypedDict = dict  # type: ignore[assignment]


class Resolved(TypedDict):
    """The effective values of the variables whose default depends on the host."""

    distribution: str
    codename: str
    os_name: str
    repository_url: str  # without credentials
    repository_auth: bool  # the URL has credentials: apt reads them from auth.conf.d
    key_url: str  # without credentials
    fingerprint: str
    architecture: str


class DpkgStep(TypedDict):
    needed: bool
    apt_calls: bool  # this run calls apt (else an interrupted dpkg is left to its owner)
    journal: List[str]
    audit: List[str]


class Rewrite(TypedDict):
    content: str
    dest: str  # where it is written: the file, or a safe symlink's target
    mode: str


class LegacyStep(TypedDict):
    needed: bool
    delete: List[str]
    rewrite: Dict[str, Rewrite]
    apt_key_fingerprints: List[str]


class PrerequisitesStep(TypedDict):
    needed: bool
    missing: List[str]
    cache_valid_time: int


class RepositoryStep(TypedDict):
    needed: bool
    key: str  # keep | attributes | replace
    source: str  # keep | attributes | write
    source_content: str
    auth: str  # keep | write | remove: the credentials file in auth.conf.d
    refresh_cache: bool
    # the role's apt.conf.d file for Docker's host (docker_proxy): keep | write | delete
    apt_proxy: str
    apt_proxy_content: str


class ConflictsStep(TypedDict):
    needed: bool
    remove: List[str]


class DaemonStep(TypedDict):
    needed: bool
    config: Dict[str, Any]
    record: Dict[str, Any]
    changed_keys: List[str]
    dropin: str  # docker.service's drop-in ("" = none)
    apply: str  # none | reload | restart


class PackagesStep(TypedDict):
    needed: bool
    install: List[str]
    specs: List[str]
    install_specs: List[str]
    reads_candidate: bool
    selections: Dict[str, str]
    refresh: str  # none | docker | full
    refresh_why: str
    refresh_cache: bool
    apt: bool
    allow_downgrade: bool
    simulate: bool
    unplannable: bool
    apply_selections: bool


class Restart(TypedDict):
    """How dockerd takes this run's changes (docker_plan.engine_restart)."""

    restart: bool
    by_packages: bool
    pending: bool
    why: str


class ServiceStep(TypedDict):
    needed: bool
    units: List[str]
    restart: bool
    reset_failed: bool
    prove: bool


class UsersStep(TypedDict):
    needed: bool
    add: List[str]
    remove: List[str]
    record: Dict[str, List[str]]
    create_group: bool


class CliConfigFile(TypedDict):
    user: str
    path: str
    uid: int
    gid: int


class CliConfigStep(TypedDict):
    needed: bool
    # each docker_users entry's ~/.docker/config.json to write (docker_proxy)
    write: List[CliConfigFile]


class AbsentDaemon(TypedDict):
    needed: bool
    action: str  # keep | write | delete
    config: Dict[str, Any]


class AbsentUsers(TypedDict):
    needed: bool
    remove: List[str]


class AbsentStep(TypedDict):
    needed: bool
    packages: List[str]
    files: List[str]
    daemon: AbsentDaemon  # the record of the role's keys goes with it
    users: AbsentUsers
    data_dirs: List[str]


class AfterInstall(TypedDict):
    """What docker_apt_install plans again after an install (docker_plan.after_install_plan)."""

    service: ServiceStep
    users: UsersStep


class PlanBase(TypedDict):
    """What every plan holds, whatever docker_state."""

    resolved: Resolved
    problems: List[str]
    warnings: List[str]
    needs: List[str]
    changes: bool
    dpkg: DpkgStep
    legacy: LegacyStep


class PresentPlan(PlanBase):
    prerequisites: PrerequisitesStep
    repository: RepositoryStep
    conflicts: ConflictsStep
    daemon: DaemonStep
    packages: PackagesStep
    restart: Restart
    service: ServiceStep
    users: UsersStep
    cli_config: CliConfigStep


class AbsentPlan(PlanBase):
    absent: AbsentStep

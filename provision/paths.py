"""Where the shipped Ansible collection, ansible.cfg and Vagrantfile live.

The role, its plugins and the site playbook are one Ansible collection, ``provision.hosts``,
whose root is the repository root. An installed wheel carries it in
``provision/_data/collections/ansible_collections/provision/hosts`` (hatch ``force-include``)
with ``ansible.cfg`` and the ``Vagrantfile`` beside ``collections/``; an editable checkout uses
the repository itself, reached through ``.collections/ansible_collections/provision/hosts``, a
link to the repository root. ``PROVISION_DATA_DIR`` overrides both (tests use it).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from provision.errors import ProvisionError

COLLECTION_NAMESPACE = "provision"
COLLECTION_NAME = "hosts"
COLLECTION = f"{COLLECTION_NAMESPACE}.{COLLECTION_NAME}"

_PACKAGE_DIR = Path(__file__).resolve().parent
_IN_COLLECTIONS_DIR = Path("ansible_collections") / COLLECTION_NAMESPACE / COLLECTION_NAME
_SHIPPED = Path("collections") / _IN_COLLECTIONS_DIR
_CHECKOUT_LINK = Path(".collections") / _IN_COLLECTIONS_DIR
_MARKER = Path("playbooks") / "site.yml"


def _candidates() -> list[Path]:
    override = os.environ.get("PROVISION_DATA_DIR")
    if override:
        return [Path(override).expanduser().resolve()]
    return [_PACKAGE_DIR / "_data", _PACKAGE_DIR.parent]


def data_dir() -> Path:
    """The directory holding ``ansible.cfg``, the ``Vagrantfile`` and the collection."""
    candidates = _candidates()
    for candidate in candidates:
        if (DataPaths(candidate).collection / _MARKER).is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise ProvisionError(
        f"the shipped Ansible collection was not found (looked in {tried}): reinstall provision"
    )


def ensure_checkout_link(root: Path) -> Path:
    """``root/.collections``, with the link that makes ``root`` the collection (idempotent)."""
    link = root / _CHECKOUT_LINK
    if not link.is_symlink():
        link.parent.mkdir(parents=True, exist_ok=True)
        # Another run may make it meanwhile.
        with contextlib.suppress(FileExistsError):
            link.symlink_to(Path("..", "..", ".."), target_is_directory=True)
    return root / ".collections"


@dataclass(frozen=True)
class DataPaths:
    """Resolved locations of the shipped content."""

    root: Path

    @property
    def shipped(self) -> bool:
        """True for an installed wheel: the collection is a copy under ``collections/``."""
        return (self.root / _SHIPPED).is_dir()

    @property
    def collection(self) -> Path:
        """The collection's root (``galaxy.yml``, ``roles/``, ``plugins/``, ``playbooks/``)."""
        return self.root / _SHIPPED if self.shipped else self.root

    def collections_path(self) -> Path:
        """The value of ANSIBLE_COLLECTIONS_PATH that finds the collection."""
        if self.shipped:
            return self.root / "collections"
        return ensure_checkout_link(self.root)

    @property
    def playbooks(self) -> Path:
        return self.collection / "playbooks"

    @property
    def roles(self) -> Path:
        return self.collection / "roles"

    @property
    def ansible_cfg(self) -> Path:
        return self.root / "ansible.cfg"

    @property
    def vagrantfile(self) -> Path:
        return self.root / "Vagrantfile"

    @property
    def site_playbook(self) -> Path:
        return self.playbooks / "site.yml"

    def role(self, name: str) -> Path:
        return self.roles / name


def data_paths() -> DataPaths:
    return DataPaths(data_dir())


def checks_dir() -> Path:
    """The shared pytest-testinfra host checks (``provision/checks``)."""
    return _PACKAGE_DIR / "checks"

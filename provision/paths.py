"""Where the shipped Ansible content and Vagrantfile live.

An installed wheel carries them in ``provision/_data`` (hatch ``force-include``); an editable
checkout reads them from the repository root. ``PROVISION_DATA_DIR`` overrides both (tests use
it to point at a fixture tree).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from provision.errors import ProvisionError

_PACKAGE_DIR = Path(__file__).resolve().parent
_MARKER = Path("playbooks") / "site.yml"


def _candidates() -> list[Path]:
    override = os.environ.get("PROVISION_DATA_DIR")
    if override:
        return [Path(override).expanduser().resolve()]
    return [_PACKAGE_DIR / "_data", _PACKAGE_DIR.parent]


def data_dir() -> Path:
    """The directory holding ``playbooks/``, ``roles/``, ``ansible.cfg`` and ``Vagrantfile``."""
    candidates = _candidates()
    for candidate in candidates:
        if (candidate / _MARKER).is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise ProvisionError(
        f"the shipped playbooks were not found (looked in {tried}): reinstall provision"
    )


@dataclass(frozen=True)
class DataPaths:
    """Resolved locations of the shipped content."""

    root: Path

    @property
    def playbooks(self) -> Path:
        return self.root / "playbooks"

    @property
    def roles(self) -> Path:
        return self.root / "roles"

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

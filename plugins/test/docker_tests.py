# Jinja tests of the docker role, over what library/docker_host_facts.py reads.
from __future__ import annotations

import fnmatch


def _owned(state, mode):
    return (
        bool(state)
        and state.get("exists")
        and (state.get("mode"), state.get("uid"), state.get("gid")) == (mode, 0, 0)
    )


def docker_dir_in_place(state, mode):
    """The path is a directory owned by root:root with MODE."""
    return bool(_owned(state, mode) and state.get("is_dir"))


def docker_file_in_place(state, mode, content=None):
    """The path is a file owned by root:root with MODE (and, when given, exactly CONTENT)."""
    if not _owned(state, mode) or state.get("is_dir"):
        return False
    return content is None or state.get("content") == content


def docker_at_version(package, packages, version):
    """PACKAGE is installed at VERSION, a glob as apt takes it (``5:27.*``)."""
    installed = (packages or {}).get(package, {})
    return installed.get("status") == "installed" and fnmatch.fnmatchcase(
        installed.get("version", ""), version
    )


def docker_held(package, packages):
    """PACKAGE's dpkg selection is "hold"."""
    return (packages or {}).get(package, {}).get("want") == "hold"


def docker_unit_in_state(unit, units, enabled, state):
    """UNIT is enabled at boot (or not) and active (state started) or inactive (stopped)."""
    found = (units or {}).get(unit, {})
    return found.get("enabled") == ("enabled" if enabled else "disabled") and found.get(
        "active"
    ) == ("active" if state == "started" else "inactive")


class TestModule:
    def tests(self):
        return {
            "docker_dir_in_place": docker_dir_in_place,
            "docker_file_in_place": docker_file_in_place,
            "docker_at_version": docker_at_version,
            "docker_held": docker_held,
            "docker_unit_in_state": docker_unit_in_state,
        }

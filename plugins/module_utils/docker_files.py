# Small root-owned files and directories, written atomically and only when they differ: what
# the docker role's modules share.
from __future__ import annotations

import os
import tempfile

ROOT_FILE = (0o644, 0, 0)
ROOT_DIR = (0o755, 0, 0)


def ownership(path):
    """(mode, uid, gid) of PATH."""
    info = os.stat(path)
    return info.st_mode & 0o7777, info.st_uid, info.st_gid


def read(path):
    """The bytes of PATH, or None when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def ensure_dir(module, directory):
    """DIRECTORY exists as root:root 0755; True when that took (or in check mode would take) a
    change."""
    if os.path.isdir(directory) and ownership(directory) == ROOT_DIR:
        return False
    if not module.check_mode:
        if not os.path.isdir(directory):
            os.makedirs(directory, mode=0o755)
        os.chmod(directory, 0o755)
        os.chown(directory, 0, 0)
    return True


def put(module, path, data, check=None):
    """PATH holds DATA as root:root 0644, replaced atomically; True when that took (or in check
    mode would take) a change. CHECK, if given, is called with the staged file before it replaces
    PATH, and may fail the module."""
    if read(path) == data and ownership(path) == ROOT_FILE:
        return False
    if module.check_mode:
        return True
    handle, staged = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".provision-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(staged, 0o644)
        os.chown(staged, 0, 0)
        if check is not None:
            check(staged)
        module.atomic_move(staged, path)
    finally:
        if os.path.exists(staged):
            os.unlink(staged)
    return True

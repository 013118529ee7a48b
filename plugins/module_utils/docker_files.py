# Small root-owned files and directories, written atomically and only when they differ, with
# the documented owner and mode whatever they had before: what the docker role's modules share.
# Every function honours check mode (reports the change, makes none).
# Python 3.8, standard library and ansible.module_utils only.
from __future__ import annotations

import grp
import json
import os
import pwd
import tempfile
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

if TYPE_CHECKING:
    from ansible.module_utils.basic import AnsibleModule

# (mode, uid, gid)
Attributes = Tuple[int, int, int]
Diff = List[Dict[str, Any]]

ROOT_FILE = (0o644, 0, 0)
ROOT_DIR = (0o755, 0, 0)


def to_json(value: Any) -> str:
    """The text the role writes for a JSON file (2-space indent, sorted keys, final newline)."""
    return json.dumps(value, indent=2, sort_keys=True) + "\n"


def json_bytes(value: Any) -> bytes:
    return to_json(value).encode("utf-8")


def ownership(path: str) -> Optional[Attributes]:
    """(mode, uid, gid) of PATH, or None when it does not exist."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_mode & 0o7777, info.st_uid, info.st_gid


def describe(attributes: Optional[Attributes]) -> str:
    """ "0640 root:adm" for (0o640, 0, 4)."""
    if attributes is None:
        return "absent"
    mode, uid, gid = attributes
    return "%04o %s:%s" % (mode, _name(pwd.getpwuid, uid), _name(grp.getgrgid, gid))


def _name(lookup: Callable[[int], Any], number: int) -> str:
    try:
        return str(lookup(number)[0])
    except KeyError:
        return str(number)


def read(path: str) -> Optional[bytes]:
    """The bytes of PATH, or None when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def attributes_diff(path: str, before: Optional[Attributes], after: Attributes) -> Dict[str, Any]:
    """A diff entry for an owner/mode change (Ansible renders dicts as JSON)."""
    return {
        "before_header": "%s (attributes)" % path,
        "after_header": "%s (attributes)" % path,
        "before": {"path": path, "mode_owner": describe(before)},
        "after": {"path": path, "mode_owner": describe(after)},
    }


def set_attributes(
    module: AnsibleModule, path: str, wanted: Attributes, diff: Optional[Diff] = None
) -> bool:
    """PATH gets WANTED (mode, uid, gid); True when that took (or would take) a change."""
    current = ownership(path)
    if current == wanted:
        return False
    if diff is not None:
        diff.append(attributes_diff(path, current, wanted))
    if not module.check_mode:
        mode, uid, gid = wanted
        os.chown(path, uid, gid)
        os.chmod(path, mode)  # after chown: chown may clear set-id bits
    return True


def ensure_dir(module: AnsibleModule, directory: str, diff: Optional[Diff] = None) -> bool:
    """DIRECTORY (and any parent it creates) exists as root:root 0755; True when that took (or
    in check mode would take) a change. A hardened umask does not change the mode."""
    missing = []
    path = directory
    while path and path != os.path.dirname(path) and not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    if missing:
        if diff is not None:
            diff.append(
                {
                    "before_header": directory,
                    "after_header": directory,
                    "before": "(absent)\n",
                    "after": "(directory, 0755 root:root)\n",
                }
            )
        if not module.check_mode:
            for created in reversed(missing):
                os.mkdir(created, 0o755)
                set_attributes(module, created, ROOT_DIR)
        return True
    return set_attributes(module, directory, ROOT_DIR, diff)


def put(
    module: AnsibleModule,
    path: str,
    data: bytes,
    *,
    check: Optional[Callable[[str], None]] = None,
    diff: Optional[Diff] = None,
    show: bool = True,
    attributes: Attributes = ROOT_FILE,
) -> bool:
    """PATH holds DATA with ATTRIBUTES (root:root 0644 unless given), replaced atomically;
    True when that took (or in check mode would take) a change. CHECK, if given, is called with
    the staged file before it replaces PATH, and may fail the module. DIFF, a list, gets the
    before/after entries (the content only when SHOW). A symlink at PATH is replaced, never
    written through."""
    current = read(path)
    # A symlink is replaced by a file of its own: chown/chmod would follow it to its target.
    if current == data and not os.path.islink(path):
        return set_attributes(module, path, attributes, diff)
    if diff is not None and show:
        diff.append(
            {
                "before_header": path,
                "after_header": path,
                "before": (current or b"").decode("utf-8", "replace"),
                "after": data.decode("utf-8", "replace"),
            }
        )
    if module.check_mode:
        return True
    handle, staged = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".provision-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        set_attributes(module, staged, attributes)
        if check is not None:
            check(staged)
        # atomic_move would copy the old file's owner and mode onto the new one by default.
        module.atomic_move(staged, path, keep_dest_attrs=False)
    finally:
        if os.path.exists(staged):
            os.unlink(staged)
    # Set them again: whatever atomic_move did, the file ends with the documented attributes.
    set_attributes(module, path, attributes)
    return True


def remove(module: AnsibleModule, path: str, diff: Optional[Diff] = None) -> bool:
    """PATH gone (a symlink itself, never what it points to); True when that took (or in check
    mode would take) a change. DIFF gets the content that goes."""
    if not os.path.lexists(path):
        return False
    if diff is not None:
        current = b"" if os.path.islink(path) else (read(path) or b"")
        diff.append(
            {
                "before_header": path,
                "after_header": "%s (removed)" % path,
                "before": current.decode("utf-8", "replace"),
                "after": "",
            }
        )
    if not module.check_mode:
        os.unlink(path)
    return True

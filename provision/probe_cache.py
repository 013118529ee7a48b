"""The ansible-core probe's answers, kept for inputs that have not changed.

Reading ``-i`` and ``-e`` with ansible-core costs a Python with ansible imported (about 0.4 s);
a re-run with the same files (a drift check, a scheduled job) gets the same answer. The answer is
kept under a digest of everything it depends on: the request, the working directory, the
environment's ``ANSIBLE_*`` names, the content of ansible.cfg, of every ``-e @FILE`` and of the
inventory file, and the versions of ansible-core and provision. Only inventories that are plain
files are kept: a directory, an executable script or an inventory plugin's configuration
(``plugin:``) may answer differently with no file changed. Refusals are never kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

SCHEMA = 1
# Answers kept at most: the newest, one per set of inputs.
KEEP = 64


def directory() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "provision" / "probe"


def _static_file(path: Path) -> bytes | None:
    """The file's bytes when it is a regular file that is not executable, else None."""
    try:
        info = path.stat()
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o111:
        return None
    try:
        return path.read_bytes()
    except OSError:
        return None


def key(request: Mapping[str, Any], env: Mapping[str, str], cwd: Path) -> str | None:
    """The digest of the probe's inputs, or None when they may change without a file changing."""
    paths = [Path(env["ANSIBLE_CONFIG"])] if env.get("ANSIBLE_CONFIG") else []
    paths += [Path(os.path.expanduser(i[1:])) for i in request["extra_vars"] if i[:1] == "@"]
    if request.get("inventory"):
        paths.append(Path(request["inventory"]))
    files: dict[str, str] = {}
    for path in paths:
        data = _static_file(cwd / path)
        if data is None:
            return None
        if path == paths[-1] and request.get("inventory") and b"\nplugin:" in b"\n" + data:
            return None  # an inventory plugin's configuration: its hosts come from elsewhere
        files[str(cwd / path)] = hashlib.sha256(data).hexdigest()
    try:
        versions = [metadata.version("ansible-core"), metadata.version("provision")]
    except metadata.PackageNotFoundError:
        return None
    inputs = {
        "schema": SCHEMA,
        "request": request,
        "cwd": str(cwd),
        "env": {k: v for k, v in sorted(env.items()) if k.startswith("ANSIBLE_")},
        "files": files,
        "versions": versions,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def load(digest: str | None) -> dict[str, Any] | None:
    if digest is None:
        return None
    try:
        answer = json.loads((directory() / f"{digest}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return answer if isinstance(answer, dict) and not answer.get("error") else None


def save(digest: str | None, answer: Mapping[str, Any]) -> None:
    """Keep an answer that refused nothing (best effort: a cache that cannot be written is
    only slower), and only the newest KEEP answers."""
    if digest is None or answer.get("error"):
        return
    target = directory() / f"{digest}.json"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(answer), encoding="utf-8")
        partial.replace(target)
        kept = sorted(target.parent.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for old in kept[:-KEEP]:
            old.unlink(missing_ok=True)
    except OSError:
        return

"""The ansible-core probe's answers, kept for inputs that have not changed.

Reading ``-i`` and ``-e`` with ansible-core costs a Python with ansible imported (about 0.4 s);
a re-run with the same files (a drift check, a scheduled job) gets the same answer. The answer is
kept under a digest of everything it depends on: the request, the working directory, the
environment's ``ANSIBLE_*`` names, the content of ansible.cfg, of every ``-e @FILE`` and of the
inventory file, and the versions of ansible-core and provision. Only inventories that are plain
files are kept: a directory, an executable script or an inventory plugin's configuration
(``plugin:``) may answer differently with no file changed. Refusals are never kept.

No ``-e`` value is kept (they hold passwords): a kept answer has the variables' names and types,
and each value as a span of its source (the ``-e`` item's text, or the ``@FILE``'s); on a hit the
values are cut from this run's own items. An answer whose values cannot be rebuilt that way
exactly is not kept. The directory is 0700 and files 0600, and a file or directory another user
could have written or replaced is a miss, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

SCHEMA = 2
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


_TRUE, _FALSE = (
    ("true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"),
    ("false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"),
)


def _sources(request: Mapping[str, Any], cwd: Path) -> list[str] | None:
    """The text each non-empty ``-e`` item's values come from (the child skips empty items)."""
    texts: list[str] = []
    for item in request["extra_vars"]:
        if item[:1] == "@":
            try:
                texts.append((cwd / os.path.expanduser(item[1:])).read_bytes().decode("utf-8"))
            except (OSError, UnicodeError):
                return None
        elif item:
            texts.append(item)
    return texts


def _template(value: Any, source: str) -> Any:
    """``value`` as names, types and spans of ``source``; ValueError when not found there."""
    if isinstance(value, dict):
        return {"map": {str(k): _template(v, source) for k, v in value.items()}}
    if isinstance(value, list):
        return {"list": [_template(v, source) for v in value]}
    if value is None:
        return {"type": "null"}
    kind = type(value).__name__
    words = (_TRUE if value else _FALSE) if isinstance(value, bool) else (str(value),)
    for word in words:
        start = source.find(word)
        if start >= 0:
            return {"type": kind, "span": [start, start + len(word)]}
    raise ValueError("not a span of its source")


def _rebuild(node: Any, source: str) -> Any:
    if "map" in node:
        return {k: _rebuild(v, source) for k, v in node["map"].items()}
    if "list" in node:
        return [_rebuild(v, source) for v in node["list"]]
    if node["type"] == "null":
        return None
    start, end = node["span"]
    text = source[start:end]
    convert: dict[str, Any] = {"str": str, "int": int, "float": float, "bool": lambda t: t in _TRUE}
    return convert[node["type"]](text)


def _leaves(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _leaves(v)]
    if isinstance(value, list):
        return [s for v in value for s in _leaves(v)]
    return [value] if isinstance(value, str) and len(value) >= 3 else []


def _safe_dir(path: Path) -> bool:
    """Ours, a real directory, and writable by nobody else (else a file in it may be planted)."""
    try:
        info = path.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o022


def load(digest: str | None, request: Mapping[str, Any], cwd: Path) -> dict[str, Any] | None:
    """The kept answer, its ``-e`` values cut from this run's items; None on any doubt."""
    if digest is None or not _safe_dir(directory()):
        return None
    try:
        fd = os.open(directory() / f"{digest}.json", os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
            return None
        try:
            kept = json.loads(file.read())
        except (OSError, ValueError):
            return None
    sources = _sources(request, cwd)
    try:
        if kept["schema"] != SCHEMA or sources is None or len(sources) != len(kept["extra_vars"]):
            return None
        items = [i for i in request["extra_vars"] if i]
        extra_vars = [
            {"item": item, "variables": _rebuild(e["variables"], text), "from_text": e["from_text"]}
            for item, text, e in zip(items, sources, kept["extra_vars"], strict=True)
        ]
        answer = {"extra_vars": extra_vars, "warnings": list(kept["warnings"])}
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None
    if "hosts" in kept:
        answer["hosts"] = kept["hosts"]
    return answer


def save(
    digest: str | None, answer: Mapping[str, Any], request: Mapping[str, Any], cwd: Path
) -> None:
    """Keep an answer that refused nothing, without its ``-e`` values (best effort: a cache that
    cannot be written is only slower), and only the newest KEEP answers."""
    if digest is None or answer.get("error"):
        return
    sources = _sources(request, cwd)
    entries = answer.get("extra_vars") or []
    if sources is None or len(sources) != len(entries):
        return
    kept: dict[str, Any] = {"schema": SCHEMA, "extra_vars": [], "warnings": answer.get("warnings")}
    for entry, text in zip(entries, sources, strict=True):
        try:
            template = _template(entry["variables"], text)
            exact = _rebuild(template, text)
        except ValueError:
            return
        # == holds for True and 1: the types are compared too, through the JSON text
        if json.dumps(exact, sort_keys=True) != json.dumps(entry["variables"], sort_keys=True):
            return
        kept["extra_vars"].append({"variables": template, "from_text": entry["from_text"]})
        warnings = json.dumps(kept["warnings"])
        if any(json.dumps(s)[1:-1] in warnings for s in _leaves(entry["variables"])):
            return  # a warning quotes a value
    if "hosts" in answer:
        kept["hosts"] = answer["hosts"]
    folder = directory()
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            return
        if stat.S_IMODE(info.st_mode) != 0o700:
            folder.chmod(0o700)  # mkdir's mode is cut by the umask; an older cache was 0755
        fd, partial = tempfile.mkstemp(dir=folder, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                os.fchmod(file.fileno(), 0o600)
                json.dump(kept, file)
            os.replace(partial, folder / f"{digest}.json")
        except BaseException:
            os.unlink(partial)
            raise
        old = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for path in old[:-KEEP]:
            path.unlink(missing_ok=True)
    except OSError:
        return

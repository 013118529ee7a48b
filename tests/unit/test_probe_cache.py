"""The probe's cache keeps no -e value and trusts no file another user could have written
(provision/probe_cache.py), through real probes: a child ansible-core, as test_ansible_probe.py."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from provision.ansible_probe import ExtraVars, probe
from provision.paths import data_paths
from provision.runner import ansible_env

SECRET = "s3cr3t-XYZ"


@pytest.fixture
def kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hosts").write_text("[web]\nweb1\n", encoding="utf-8")
    (tmp_path / "vars.yml").write_text(f"db_password: {SECRET}-file\nport: 5432\n", "utf-8")
    return tmp_path / "cache" / "provision" / "probe"


@pytest.fixture(params=[0o022, 0o000])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


ITEMS = (f"ansible_become_password={SECRET}", '{"token": "' + SECRET + '-json", "on": true}')


def read(*items: str) -> list[ExtraVars]:
    paths = data_paths()
    found = probe(
        paths=paths,
        env=ansible_env(paths),
        extra_vars=items or (*ITEMS, "@vars.yml"),
        inventory=Path("hosts"),
        inventory_arg="hosts",
    )
    assert found.hosts == ["web1"]
    return found.extra_vars


def test_no_secret_is_kept_and_the_answer_is_rebuilt(
    tmp_path: Path,
    kept: Path,
    monkeypatch: pytest.MonkeyPatch,
    unreachable_ansible_core: Callable[[], None],
) -> None:
    first = read()
    assert first[0].variables == {"ansible_become_password": SECRET}
    assert first[2].variables == {"db_password": f"{SECRET}-file", "port": 5432}
    files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert [p.suffix for p in files] == [".json"]
    for path in files:
        assert SECRET not in path.read_text(encoding="utf-8")
    unreachable_ansible_core()
    assert read() == first  # kept: from the cache, with this run's values


def test_modes_whatever_the_umask(kept: Path, umask: int) -> None:
    read()
    assert kept.stat().st_mode & 0o777 == 0o700
    assert [p.stat().st_mode & 0o777 for p in kept.iterdir()] == [0o600]


def test_an_existing_wider_directory_is_narrowed(kept: Path) -> None:
    kept.mkdir(parents=True)
    kept.chmod(0o755)
    read()
    assert kept.stat().st_mode & 0o777 == 0o700


def planted(kept: Path, cut_off: Callable[[], None]) -> Path:
    """The one kept file, after a first real probe; ansible-core cannot be asked from now on."""
    read()
    (path,) = kept.glob("*.json")
    cut_off()
    return path


@pytest.mark.parametrize("attack", ["mode 0644", "owner 65534", "symlink", "directory 0777"])
def test_a_file_another_user_could_write_is_a_miss(
    tmp_path: Path, kept: Path, attack: str, unreachable_ansible_core: Callable[[], None]
) -> None:
    path = planted(kept, unreachable_ansible_core)
    if attack == "mode 0644":
        path.chmod(0o644)
    elif attack == "owner 65534":
        os.chown(path, 65534, 65534)
    elif attack == "symlink":
        target = tmp_path / "elsewhere.json"
        path.rename(target)
        path.symlink_to(target)
    else:
        kept.chmod(0o777)
    # not trusted: asked again, and ansible-core cannot answer now
    with pytest.raises(Exception, match="ansible-core could not read the inputs"):
        read()


def test_a_kept_answer_never_replaces_the_runs_values(
    kept: Path, unreachable_ansible_core: Callable[[], None]
) -> None:
    """A file in the old format, or one whose spans were tampered with: the values are this
    run's own or the answer is a miss."""
    path = planted(kept, unreachable_ansible_core)
    record = json.loads(path.read_text(encoding="utf-8"))
    old_format = {
        "extra_vars": [
            {"item": ITEMS[0], "variables": {"ansible_become_password": "evil"}, "from_text": True}
        ],
        "hosts": ["web1"],
        "warnings": [],
    }
    for answer in (old_format, {**record, "extra_vars": record["extra_vars"][:1]}):
        path.write_text(json.dumps(answer), encoding="utf-8")
        with pytest.raises(Exception, match="ansible-core could not read the inputs"):
            read(ITEMS[0])
    # rebuilt from another run's item under the same digest: the values are that run's
    path.write_text(json.dumps(record), encoding="utf-8")
    assert read()[0].variables == {"ansible_become_password": SECRET}

"""docker_apt_source on real files, downloading keys made by gpg from an HTTP server on
127.0.0.1: only exactly the pinned key is ever installed (re-armored from what was verified), a
refused download changes nothing, an installed key that is anything more is replaced, and the
key and source end root:root 0644 whatever they were."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.provision.hosts.plugins.modules import docker_apt_source
from ansible_collections.provision.hosts.tests.unit.plugins import gpg_keys
from ansible_collections.provision.hosts.tests.unit.plugins.modules.conftest import (
    attributes,
    run_module,
    umask,
)

DATA = Path(__file__).resolve().parents[1] / "module_utils" / "data"
TEST_KEY = "93438B4689AB4A1AB710DB6C3A11C6C5A91AECE4"
SOURCE = "Types: deb\nURIs: http://127.0.0.1/linux/ubuntu\nSuites: focal\n"
# Nothing listens on the discard port: a download from it fails at once.
NO_SERVER = "http://127.0.0.1:9/gpg"


class KeyServer:
    """Serves one body at /gpg; counts the requests."""

    def __init__(self) -> None:
        self.body = b""
        self.requests = 0
        self.logins: list[str | None] = []  # each request's Authorization header
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                outer.logins.append(self.headers.get("Authorization"))
                self.send_response(200)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/gpg"


@pytest.fixture
def server() -> Iterator[KeyServer]:
    served = KeyServer()
    thread = threading.Thread(
        target=served.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield served
    finally:
        served.server.shutdown()
        served.server.server_close()


def key(name: str) -> bytes:
    return (DATA / name).read_bytes()


def args(tmp_path: Path, url: str) -> dict[str, Any]:
    return {
        "key_url": url,
        "fingerprint": TEST_KEY.lower(),
        "key_path": str(tmp_path / "keyrings" / "docker.asc"),
        "source_path": str(tmp_path / "docker.sources"),
        "source_content": SOURCE,
    }


def run(
    capsys: pytest.CaptureFixture[str], arguments: dict[str, Any], check_mode: bool = False
) -> dict[str, Any]:
    return run_module(docker_apt_source.main, capsys, arguments, check_mode=check_mode)


def test_the_verified_key_and_the_source_are_installed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], server: KeyServer
) -> None:
    server.body = b"\n" + key("test-key.asc").replace(
        b"BLOCK-----\n", b"BLOCK-----\nComment: from a mirror\n", 1
    )
    arguments = args(tmp_path, server.url)
    with umask(0o027):
        result = run(capsys, arguments)
    assert result["changed"]
    assert result["key_changed"]
    assert result["source_changed"]
    assert result["fingerprint"] == TEST_KEY
    # What was verified, not the raw download.
    assert Path(arguments["key_path"]).read_bytes() == key("test-key.asc")
    assert Path(arguments["source_path"]).read_text() == SOURCE
    assert attributes(arguments["key_path"]) == ("0644", 0, 0)
    assert attributes(arguments["source_path"]) == ("0644", 0, 0)
    assert attributes(str(tmp_path / "keyrings")) == ("0755", 0, 0)
    key_diff = next(d for d in result["diff"] if d["before_header"] == arguments["key_path"])
    assert (key_diff["before"], key_diff["after"]) == (
        "no key\n",
        f"the key {TEST_KEY} (verified, from {server.url})\n",
    )
    # Kept as it is from now on: no second download.
    assert run(capsys, arguments)["changed"] is False
    assert server.requests == 1


@pytest.mark.parametrize(
    ("body", "found"),
    [
        (key("test-key.asc") + key("second-key.asc"), "holds 2 armored blocks, not one"),
        (key("two-keys.asc"), "holds 2 primary keys"),
        (key("test-key.gpg"), "is binary OpenPGP data"),
        (key("test-key.asc") + b"tail\n", "has data after the END line"),
        (key("second-key.asc"), "holds the key 1F7DB1A6C4ED070DABC01477C596657E594A77F9, not"),
    ],
)
def test_a_download_that_is_more_or_other_than_the_pinned_key_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], server: KeyServer, body: bytes, found: str
) -> None:
    server.body = body
    result = run(capsys, args(tmp_path, server.url))
    assert result["failed"] is True
    assert f"The key downloaded from {server.url} {found}" in result["msg"]
    assert "Nothing was installed and the source was not written" in result["msg"]
    assert "\n" not in result["msg"]
    assert sorted(os.listdir(tmp_path)) == []


@pytest.mark.parametrize(
    "installed",
    [
        key("test-key.asc") + key("second-key.asc"),  # a second key appended
        key("test-key.gpg"),  # binary at the .asc path
        key("two-keys.asc"),
    ],
)
def test_an_installed_key_that_is_more_than_the_pinned_key_is_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], server: KeyServer, installed: bytes
) -> None:
    server.body = key("test-key.asc")
    arguments = args(tmp_path, server.url)
    run(capsys, arguments)
    Path(arguments["key_path"]).write_bytes(installed)
    result = run(capsys, arguments)
    assert result["key_changed"] is True
    assert result["key_found"].startswith("a file that ")
    assert Path(arguments["key_path"]).read_bytes() == key("test-key.asc")


def test_the_pinned_key_with_wrong_attributes_is_corrected_without_a_download(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], server: KeyServer
) -> None:
    server.body = key("test-key.asc")
    arguments = args(tmp_path, server.url)
    run(capsys, arguments)
    os.chmod(arguments["key_path"], 0o640)
    os.chmod(arguments["source_path"], 0o600)
    os.chown(arguments["source_path"], 0, 4)
    result = run(capsys, {**arguments, "key_url": NO_SERVER})
    assert result["key_changed"]
    assert result["source_changed"]
    assert attributes(arguments["key_path"]) == ("0644", 0, 0)
    assert attributes(arguments["source_path"]) == ("0644", 0, 0)
    assert run(capsys, {**arguments, "key_url": NO_SERVER})["changed"] is False


def test_check_mode_verifies_and_shows_the_change_but_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], server: KeyServer
) -> None:
    server.body = key("test-key.asc")
    result = run(capsys, args(tmp_path, server.url), check_mode=True)
    assert result["changed"] is True
    assert sorted(os.listdir(tmp_path)) == []
    source_diff = next(d for d in result["diff"] if d.get("after") == SOURCE)
    assert source_diff["before"] == ""
    server.body = key("test-key.asc") + key("second-key.asc")
    assert run(capsys, args(tmp_path, server.url), check_mode=True)["failed"] is True


def test_an_unreachable_key_url_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(capsys, args(tmp_path, NO_SERVER))
    assert result["failed"] is True
    assert result["msg"].startswith(f"Could not download the repository key from {NO_SERVER}")
    assert sorted(os.listdir(tmp_path)) == []


def test_the_pinned_key_with_another_keys_secret_packets_is_never_installed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], server: KeyServer
) -> None:
    """A download of the pinned key with an impostor's secret key spliced into its block is
    refused; the same file already installed is not in place and is replaced by the pinned key
    alone (keys made by gpg, ../gpg_keys.py)."""
    keys = gpg_keys.made_keys()
    spliced = gpg_keys.with_impostors_secret_key(keys)
    arguments = {**args(tmp_path, server.url), "fingerprint": keys.pinned}
    server.body = spliced
    result = run(capsys, arguments)
    assert result["failed"] is True
    assert (
        f"The key downloaded from {server.url} holds a secret-key packet (tag 5) as packet 4 of"
        f" 8 besides the public key {keys.pinned}: refused;" in result["msg"]
    )
    assert "\n" not in result["msg"]
    assert sorted(os.listdir(tmp_path)) == []

    server.body = keys.pinned_asc
    run(capsys, arguments)
    Path(arguments["key_path"]).write_bytes(spliced)
    result = run(capsys, arguments)
    assert result["key_changed"] is True
    assert result["key_found"].startswith("a file that holds a secret-key packet (tag 5)")
    assert Path(arguments["key_path"]).read_bytes() == keys.pinned_asc


def test_repository_credentials_go_to_auth_conf_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], server: KeyServer
) -> None:
    """A repository URL with user:token@: the key download from that host logs in, apt's login is
    written 0600 under the role's marker, and the token is in no result or diff; a URL without
    credentials later takes the file away."""
    server.body = key("test-key.asc")
    port = server.server.server_address[1]
    arguments = {
        **args(tmp_path, server.url),
        "repository_url": f"http://ops:s3cret%2Btoken@127.0.0.1:{port}/linux/ubuntu/",
        "auth_path": str(tmp_path / "auth.conf.d" / "docker.conf"),
        "source_marker": "# marker",
    }
    with umask(0o000):
        result = run(capsys, arguments)
    assert result["auth_changed"]
    assert server.logins == ["Basic b3BzOnMzY3JldCt0b2tlbg=="]  # ops:s3cret+token
    auth = Path(arguments["auth_path"])
    assert auth.read_text() == (
        "# marker; the login for docker_apt_repository_url.\n"
        f"machine http://127.0.0.1:{port}/linux/ubuntu login ops password s3cret+token\n"
    )
    assert attributes(str(auth)) == ("0600", 0, 0)
    assert "s3cret" not in repr(result)
    assert run(capsys, arguments)["changed"] is False

    os.chmod(auth, 0o644)  # widened by someone: put back
    assert run(capsys, arguments)["auth_changed"]
    assert attributes(str(auth)) == ("0600", 0, 0)

    without = {**arguments, "repository_url": f"http://127.0.0.1:{port}/linux/ubuntu"}
    result = run(capsys, without)
    assert result["auth_changed"]
    assert not auth.exists()
    auth.write_text("machine 127.0.0.1 login theirs password kept\n")  # not the role's
    assert run(capsys, without)["changed"] is False
    assert auth.exists()

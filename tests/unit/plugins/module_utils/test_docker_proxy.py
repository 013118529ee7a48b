"""docker_proxy's meaning for each part of the role's work (plugins/module_utils/docker_proxy.py),
and the plan's use of it: the apt.conf.d file scoped to Docker's host, daemon.json "proxies"
under the guarded restart, the key download's proxy read from apt's configuration."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.provision.hosts.plugins.module_utils import docker_plan, docker_proxy
from ansible_collections.provision.hosts.tests.unit.plugins.docker_role import REPOSITORY, state

PROXY = {"http": "http://proxy.corp:3128", "https": "http://proxy.corp:3128", "no_proxy": []}
MARKER = "# Written by the Ansible role docker"


@pytest.mark.parametrize(
    ("host", "no_proxy", "bypassed"),
    [
        ("mirror.internal", ["*"], True),
        ("mirror.internal", ["mirror.internal"], True),
        ("a.mirror.internal", [".mirror.internal"], True),
        ("a.mirror.internal", ["mirror.internal"], True),
        ("notmirror.internal", ["mirror.internal"], False),
        ("10.1.2.3", ["10.0.0.0/8"], True),
        ("192.168.1.1", ["10.0.0.0/8"], False),
        ("mirror.internal", ["mirror.internal:8080"], True),
        ("download.docker.com", [], False),
    ],
)
def test_no_proxy_rules(host: str, no_proxy: list[str], bypassed: bool) -> None:
    assert docker_proxy.bypassed(host, no_proxy) is bypassed


def test_the_proxy_follows_the_url_scheme_and_no_proxy() -> None:
    only_https = {"https": "http://p:1", "no_proxy": ["local.mirror"]}
    assert docker_proxy.proxy_for("https://download.docker.com/linux/ubuntu/gpg", only_https) == (
        "http://p:1"
    )
    assert docker_proxy.proxy_for("http://download.docker.com/gpg", only_https) is None
    assert docker_proxy.proxy_for("https://local.mirror/gpg", only_https) is None
    assert docker_proxy.proxy_for("https://x/gpg", {}) is None


DUMP = """Acquire "";
Acquire::http "";
Acquire::http::Proxy "http://apt-proxy:3142";
Acquire::http::Proxy::direct.example "DIRECT";
Acquire::https::Proxy::secure.example "http://secure-proxy:8080/";
APT::Architecture "amd64";
"""


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://10.213.7.1:8000/linux/ubuntu/gpg", "http://apt-proxy:3142"),
        ("http://direct.example/gpg", None),
        ("https://secure.example/gpg", "http://secure-proxy:8080/"),
        # apt's https method falls back to http's proxy
        ("https://download.docker.com/linux/ubuntu/gpg", "http://apt-proxy:3142"),
    ],
)
def test_apt_proxy_is_read_as_apt_reads_it(url: str, expected: str | None) -> None:
    assert docker_proxy.apt_proxy(DUMP, url) == expected


def test_no_apt_proxy() -> None:
    assert docker_proxy.apt_proxy('APT::Architecture "amd64";\n', "https://x/gpg") is None


def test_apt_conf_is_scoped_to_the_repository_host() -> None:
    conf = docker_proxy.apt_conf("https://download.docker.com/linux/ubuntu", PROXY, MARKER)
    assert conf.splitlines()[1] == (
        'Acquire::https::Proxy::download.docker.com "http://proxy.corp:3128";'
    )
    direct = dict(PROXY, no_proxy=[".docker.com"])
    assert 'Proxy::download.docker.com "DIRECT";' in docker_proxy.apt_conf(
        "https://download.docker.com/linux/ubuntu", direct, MARKER
    )
    assert docker_proxy.apt_conf("https://download.docker.com/linux/ubuntu", {}, MARKER) == ""
    only_http = {"http": "http://p:1"}
    assert docker_proxy.apt_conf("https://download.docker.com/x", only_http, MARKER) == ""


def test_daemon_proxies() -> None:
    assert docker_proxy.daemon_proxies({}) is None
    assert docker_proxy.daemon_proxies(dict(PROXY, no_proxy=["localhost", ".corp"])) == {
        "http-proxy": "http://proxy.corp:3128",
        "https-proxy": "http://proxy.corp:3128",
        "no-proxy": "localhost,.corp",
    }


# --- the plan -------------------------------------------------------------------------------


def test_without_a_proxy_nothing_changes(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    plan = docker_plan.make_plan(host, want, paths, rules)
    assert plan["changes"] is False
    assert plan["repository"]["apt_proxy"] == "keep"
    assert "proxies" not in plan["daemon"]["config"]


def test_a_proxy_writes_apt_conf_and_daemon_proxies_with_a_guarded_restart(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    want["proxy"] = PROXY
    host["engine"] = {"containers": ["web"], "live_restore": False}
    host["read"].append("engine")
    plan = docker_plan.make_plan(host, want, paths, rules)
    host_name = REPOSITORY.split("/")[2].split(":")[0]
    assert plan["repository"]["apt_proxy"] == "write"
    assert (
        f'Proxy::{host_name} "http://proxy.corp:3128";' in (plan["repository"]["apt_proxy_content"])
    )
    assert plan["daemon"]["config"]["proxies"]["http-proxy"] == "http://proxy.corp:3128"
    # dockerd does not reload "proxies": a restart, refused while a container runs
    assert plan["daemon"]["apply"] == "restart"
    (problem,) = plan["problems"]
    assert "daemon.json changes proxies" in problem
    assert "web" in problem


def test_a_converged_proxy_host_needs_nothing_and_dropping_the_proxy_removes_the_file(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    want["proxy"] = PROXY
    first = docker_plan.make_plan(host, want, paths, rules)
    host["files"]["apt_proxy"] = state("0644", content=first["repository"]["apt_proxy_content"])
    host["files"]["daemon_json"]["json"] = first["daemon"]["config"]
    host["files"]["record"]["json"] = first["daemon"]["record"]
    assert docker_plan.make_plan(host, want, paths, rules)["changes"] is False
    want["proxy"] = {}
    plan = docker_plan.make_plan(host, want, paths, rules)
    assert plan["repository"]["apt_proxy"] == "delete"
    assert "proxies" in plan["daemon"]["changed_keys"]
    want["state"] = "absent"
    assert paths["apt_proxy"] in docker_plan.make_plan(host, want, paths, rules)["absent"]["files"]


def test_the_secrets_are_the_passwords_and_tokens() -> None:
    assert docker_proxy.secrets({"http": "http://u:pw@p:1", "https": "http://tok@p:1"}) == [
        "pw",
        "tok",
    ]
    assert docker_proxy.secrets(PROXY) == []
    assert docker_proxy.file_mode(PROXY) == "0644"
    assert docker_proxy.file_mode({"https": "http://u:pw@p:1"}) == "0600"


def test_a_proxy_with_a_password_keeps_its_files_roots_alone(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    want["proxy"] = {"http": "http://user:s3cret@proxy.corp:3128"}
    first = docker_plan.make_plan(host, want, paths, rules)
    assert first["problems"] == []
    content = first["repository"]["apt_proxy_content"]
    host["files"]["daemon_json"]["json"] = first["daemon"]["config"]
    host["files"]["record"]["json"] = first["daemon"]["record"]
    # the right content, readable by others: both corrected to 0600
    host["files"]["apt_proxy"] = state("0644", content=content)
    plan = docker_plan.make_plan(host, want, paths, rules)
    assert plan["repository"]["apt_proxy"] == "write"
    assert plan["daemon"]["needed"] is True
    assert plan["daemon"]["changed_keys"] == []
    host["files"]["apt_proxy"] = state("0600", content=content)
    host["files"]["daemon_json"].update(mode="0600")
    assert docker_plan.make_plan(host, want, paths, rules)["changes"] is False


@pytest.mark.parametrize(
    ("version", "major"),
    [("5:26.1.3-1~ubuntu.20.04~focal", 26), ("20.10.24+dfsg1-1", 20), ("5:27.*", 27), ("", None)],
)
def test_engine_major(version: str, major: int | None) -> None:
    assert docker_proxy.engine_major(version) == major


def test_a_proxy_with_an_engine_older_than_23_is_refused(
    host: dict[str, Any], want: dict[str, Any], paths: dict[str, Any], rules: dict[str, Any]
) -> None:
    want["proxy"] = PROXY
    assert docker_plan.make_plan(host, want, paths, rules)["problems"] == []  # 26 installed
    host["packages"]["docker-ce"]["version"] = "5:20.10.24-1~ubuntu.20.04~focal"
    (problem,) = docker_plan.make_plan(host, want, paths, rules)["problems"]
    assert problem.startswith("docker_proxy needs Docker Engine 23 or later")
    assert "the installed docker-ce is 5:20.10.24" in problem
    want["version"] = "5:24.0.*"  # an upgrade the role makes first: allowed
    assert docker_plan.make_plan(host, want, paths, rules)["problems"] == []
    want["proxy"] = {}
    want["version"] = ""
    assert docker_plan.make_plan(host, want, paths, rules)["problems"] == []

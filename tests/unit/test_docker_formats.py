"""The role options' format rules (plugins/module_utils/docker_formats.py), shared by the role's
preflight and the CLI: accepted and refused values, and that the file stays Python 3.8 code."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from provision.role_options import docker_formats

REPO = Path(__file__).resolve().parents[2]
FORMATS_FILE = REPO / "plugins" / "module_utils" / "docker_formats.py"
formats = docker_formats()


@pytest.mark.parametrize(
    "value",
    [
        "9DC858229FC7DD38854AE2D88D81803C0EBFCD88",
        "9dc8 5822 9fc7 dd38 854a  e2d8 8d81 803c 0ebf cd88",
        " 9DC858229FC7DD38854AE2D88D81803C0EBFCD88 ",
    ],
)
def test_fingerprints_accepted(value: str) -> None:
    assert formats.fingerprint_problem(value) is None
    assert formats.normalize_fingerprint(value) == "9DC858229FC7DD38854AE2D88D81803C0EBFCD88"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("ABCD", "found 4"),
        ("9DC858229FC7DD38854AE2D88D81803C0EBFCD8", "found 39"),
        ("9DC858229FC7DD38854AE2D88D81803C0EBFCD88A", "found 41"),
        ("0x9DC858229FC7DD38854AE2D88D81803C0EBFCD", "other than 0-9 and A-F"),
        ("9DC8-5822-9FC7-DD38-854A-E2D8-8D81-803C-0EBF", "other than 0-9 and A-F"),
        ("", "found 0"),
        (40, "40 hexadecimal digits"),
    ],
)
def test_fingerprints_refused(value: object, says: str) -> None:
    problem = formats.fingerprint_problem(value)
    assert problem is not None
    assert "40 hexadecimal digits" in problem
    assert says in problem


@pytest.mark.parametrize(
    "value",
    [
        "https://download.docker.com/linux/ubuntu",
        "http://127.0.0.1:8080/linux/debian",
        "http://[::1]:8080/linux/ubuntu",
        "https://mirror.example.internal",
        "https://mirror.example.internal./x/y?z=1",
    ],
)
def test_urls_accepted(value: str) -> None:
    assert formats.url_problem(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "not a url",
        "download.docker.com/linux/ubuntu",
        "ftp://download.docker.com/linux/ubuntu",
        "file:///srv/repo",
        "https://",
        "https:///linux/ubuntu",
        "https://bad_host/linux",
        "https://host:notaport/",
        "https://host:0/",
        "",
        None,
    ],
)
def test_urls_refused(value: object) -> None:
    problem = formats.url_problem(value)
    assert problem is not None
    assert problem.startswith("must be an http:// or https:// URL")


def test_mirrors() -> None:
    assert formats.registry_mirror_problem("http://127.0.0.1:5000") is None
    assert formats.registry_mirror_problem("https://mirror.gcr.io/") is None
    for bad in ("not a url", "mirror.gcr.io", "https://m/?q=1", "https://m/#f", "https://u:p@m/"):
        problem = formats.registry_mirror_problem(bad)
        assert problem is not None
        assert "mirror URL" in problem, bad


@pytest.mark.parametrize(
    "value",
    ["registry.internal:5000", "registry.internal", "10.0.0.0/8", "127.0.0.1:5000", "[::1]:5000"],
)
def test_insecure_registries_accepted(value: str) -> None:
    assert formats.insecure_registry_problem(value) is None


@pytest.mark.parametrize(
    "value",
    ["http://registry.internal:5000", "registry.internal:port", "a b", "10.0.0.0/99", "", ":5000"],
)
def test_insecure_registries_refused(value: str) -> None:
    problem = formats.insecure_registry_problem(value)
    assert problem is not None
    assert "host[:port]" in problem


@pytest.mark.parametrize("value", ["0.0.0.0/0", "::/0", "10.1.2.3/0"])
def test_an_insecure_registry_covering_every_address_is_refused(value: str) -> None:
    problem = formats.insecure_registry_problem(value)
    assert problem is not None
    assert "turns off TLS verification for every registry" in problem


TLS = {"tlsverify": True, "tlscacert": "/etc/docker/ca.pem", "tlscert": "/etc/docker/cert.pem"}


@pytest.mark.parametrize(
    ("options", "refused"),
    [
        ({"log-driver": "local"}, None),
        ({"hosts": ["unix:///var/run/docker.sock", "fd://"]}, None),
        ({"hosts": ["tcp://0.0.0.0:2376"], **TLS, "tlskey": "/etc/docker/key.pem"}, None),
        ({"hosts": ["tcp://0.0.0.0:2375"]}, "opens the daemon to the network"),
        ({"hosts": ["tcp://0.0.0.0:2376"], **TLS}, "missing: tlskey"),
        (
            {"hosts": ["tcp://0.0.0.0:2376"], **TLS, "tlsverify": False, "tlskey": "/k.pem"},
            "client verification",
        ),
        (
            {"hosts": ["tcp://10.0.0.1:2376"], **TLS, "tlskey": "key.pem"},
            "missing: tlskey",
        ),
        ({"hosts": ["ssh://me@host"]}, "must be unix://, fd:// or tcp://"),
        ({"hosts": "tcp://0.0.0.0:2375"}, "must be a list"),
        ({"insecure-registries": ["0.0.0.0/0"]}, "insecure-registries item 1"),
        # the credential rule of docker_registry_mirrors, and the credentials not quoted back
        ({"registry-mirrors": ["https://me:s3cret@mirror.internal"]}, "without a user name"),
    ],
)
def test_daemon_options_declare_the_daemons_exposure(
    options: dict[str, object], refused: str | None
) -> None:
    problem = formats.option_problem("docker_daemon_options", options)
    if refused is None:
        assert problem is None
    else:
        assert problem is not None
        assert refused in problem
        assert "s3cret" not in problem


def test_masked_hides_the_user_information_of_every_url() -> None:
    text = "https://u:tok@a.example/x and http://user@b.example:80/ but not a@b or x://@"
    assert formats.masked(text) == (
        "https://***@a.example/x and http://***@b.example:80/ but not a@b or x://@"
    )


def test_architectures() -> None:
    assert formats.SUPPORTED_ARCHITECTURES == ("amd64", "arm64")
    assert formats.architecture_problem("arm64") is None
    problem = formats.architecture_problem("sparc")
    assert problem == "must be one of amd64, arm64 (Debian architecture names)"
    assert formats.architecture_problem("x86_64") is not None  # Ansible's name, not Debian's


def test_option_problem_applies_the_rule_of_each_variable() -> None:
    assert formats.option_problem("docker_users", ["x y"]) is None  # no format rule
    assert formats.option_problem("docker_apt_key_fingerprint", "ABCD") is not None
    assert formats.option_problem("docker_registry_mirrors", "not a list") is None  # type: spec
    problem = formats.option_problem("docker_registry_mirrors", ["http://ok:5000", "not a url"])
    assert problem is not None
    assert problem.startswith("item 2 ('not a url') must be an http:// or https:// mirror URL")
    assert set(formats.CHECKED_OPTIONS) == {
        "docker_apt_key_fingerprint",
        "docker_apt_repository_url",
        "docker_apt_key_url",
        "docker_apt_architecture",
        "docker_registry_mirrors",
        "docker_insecure_registries",
        "docker_daemon_options",
        "docker_proxy",
    }


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"http": "http://proxy.corp:3128", "https": "http://proxy.corp:3128/"},
        {"https": "https://10.0.0.1:8443", "no_proxy": ["localhost", ".corp", "10.0.0.0/8"]},
        {"http": "", "https": "", "no_proxy": []},
        {"https": "http://user:s3cret@proxy.corp:3128"},
    ],
)
def test_proxies_accepted(value: dict[str, object]) -> None:
    assert formats.option_problem("docker_proxy", value) is None


@pytest.mark.parametrize(
    ("value", "start"),
    [
        (
            {"http": "proxy.corp:3128"},
            "http 'proxy.corp:3128' must be an http:// or https:// proxy",
        ),
        (
            {"https": "http://proxy/path"},
            "https 'http://proxy/path' must be an http:// or https:// proxy URL without a path",
        ),
        ({"http": "socks5://proxy:1080"}, "http 'socks5://proxy:1080' must be an http://"),
        ({"https": "http://u:pw@proxy:3128/x"}, "https 'http://***@proxy:3128/x' must be an"),
        ({"no_proxy": ["a,b"]}, "no_proxy item 1 ('a,b') must be a host"),
    ],
)
def test_proxies_refused(value: dict[str, object], start: str) -> None:
    problem = formats.option_problem("docker_proxy", value)
    assert problem is not None
    assert problem.startswith(start), problem
    assert "pw" not in problem


def test_checked_options_are_role_options() -> None:
    from provision.role_options import load_ansible_yaml

    spec = load_ansible_yaml(REPO / "roles" / "docker" / "meta" / "argument_specs.yml")
    options = spec["argument_specs"]["main"]["options"]
    assert set(formats.CHECKED_OPTIONS) <= set(options)


def test_the_module_is_python_3_8_code() -> None:
    """It runs on focal's Python 3.8: the grammar of 3.8 parses it, and it imports only the
    standard library."""
    source = FORMATS_FILE.read_text(encoding="utf-8")
    tree = ast.parse(source, feature_version=(3, 8))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        str(node.module).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}
    # 3.9+ library calls ast cannot see
    for newer in ("removeprefix", "removesuffix", "functools.cache", "zoneinfo"):
        assert newer not in source


def test_credentials_in_finds_every_urls_secret_at_any_depth() -> None:
    value = {
        "proxies": {"http-proxy": "http://u:p%40ss@proxy:3128", "no-proxy": "corp"},
        "labels": ["see https://token@repo.corp/x", "http://plain.corp/"],
    }
    assert formats.credentials_in(value) == ["p%40ss", "p@ss", "token"]
    assert formats.credentials_in({"hosts": ["unix:///var/run/docker.sock"]}) == []


def test_daemon_options_hold_no_credentials_and_the_refusal_does_not_show_them() -> None:
    problem = formats.daemon_options_problem({"proxies": {"https-proxy": "http://u:s3cr3t@p:1"}})
    assert problem is not None
    assert problem.startswith("proxies must hold no credentials")
    assert "docker_proxy" in problem
    assert "s3cr3t" not in problem

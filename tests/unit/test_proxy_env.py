"""provision up's reading of the machine's own proxy (provision/proxy_env.py): what it passes to
the VM's role as docker_proxy, and when it says why it passes nothing."""

from __future__ import annotations

from provision.proxy_env import from_environment


def test_no_proxy_in_the_environment_passes_nothing_and_says_nothing() -> None:
    assert from_environment({"NO_PROXY": "corp"}) is None


def test_the_proxy_and_no_proxy_are_passed_lower_case_first_and_masked_in_the_line() -> None:
    found = from_environment(
        {
            "http_proxy": "http://px:s3cret@proxy.corp:3128",
            "HTTP_PROXY": "http://other.corp:8080",
            "HTTPS_PROXY": "http://proxy.corp:3128",
            "no_proxy": " registry.corp, .internal ,10.0.0.0/8,",
        }
    )
    assert found is not None
    assert found.proxy == {
        "http": "http://px:s3cret@proxy.corp:3128",
        "https": "http://proxy.corp:3128",
        "no_proxy": ["registry.corp", ".internal", "10.0.0.0/8"],
    }
    assert "s3cret" not in found.line
    assert found.line.startswith("passing this machine's proxy to the VM's role")


def test_a_proxy_on_this_machines_loopback_is_not_passed() -> None:
    for url in ("http://127.0.0.1:3128", "http://localhost:3128", "http://[::1]:3128"):
        found = from_environment({"HTTPS_PROXY": url})
        assert found is not None
        assert found.proxy is None
        assert "loopback" in found.line


def test_a_malformed_proxy_is_not_passed_and_the_line_says_why() -> None:
    found = from_environment({"HTTPS_PROXY": "http://u:pw@proxy.corp:3128/path"})
    assert found is not None
    assert found.proxy is None
    assert "without a path" in found.line
    assert "pw@" not in found.line

"""``provision apply --serial/--max-fail-percentage``: the values Ansible's keywords take, one
clear line and exit 2 for anything else, and the batch summary --json reports."""

from __future__ import annotations

import io

import pytest

from provision import cli, rolling
from provision.errors import EXIT_USAGE
from provision.output import Output


@pytest.mark.parametrize("value", ["1", "2", "25%", "100%"])
def test_batch_sizes_ansible_takes(value: str) -> None:
    assert rolling.serial_arg(value) == value


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--serial", "0"], "'0' is not a batch size"),
        (["--serial", "101%"], "'101%' is not a batch size"),
        (["--serial", "two"], "'two' is not a batch size"),
        (["--max-fail-percentage", "101"], "'101' is not a percentage"),
        (["--max-fail-percentage", "-1"], "'-1' is not a percentage"),
    ],
)
def test_bad_values_are_one_line_and_exit_2(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["apply", "-i", "hosts.yml", *argv])
    err = capsys.readouterr().err.strip()
    assert code == EXIT_USAGE
    assert len(err.splitlines()) == 1
    assert words in err


def test_the_play_keywords_are_set_only_when_asked() -> None:
    assert rolling.play_vars(None, None) == {}
    assert rolling.play_vars("2", 0) == {
        rolling.SERIAL_VAR: "2",
        rolling.MAX_FAIL_VAR: 0,
    }


def test_the_summary_names_the_hosts_no_batch_reached() -> None:
    summary = rolling.summary([["b", "a"]], ["a", "b", "c", "d"])
    assert summary == {
        "batches": [{"number": 1, "hosts": ["a", "b"]}],
        "ran": ["a", "b"],
        "not_run": ["c", "d"],
    }


def test_the_recap_lists_each_batch_and_the_hosts_not_run() -> None:
    out = io.StringIO()
    Output(stdout=out).batches(rolling.summary([["a", "b"]], ["a", "b", "c"]))
    assert out.getvalue().splitlines() == [
        "  batch 1: a, b",
        "  not run (a failed batch stopped the run before them): c",
    ]

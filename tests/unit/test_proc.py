"""provision.proc.stream: a real child's stdout, line by line as it comes."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from provision import proc
from provision.errors import PrerequisiteError

# Prints its stdin's first line, then waits for a file before it prints the second line: the
# first can only be read while the child still runs.
CHILD = """
import os, sys, time
print(sys.stdin.readline().strip(), flush=True)
go = sys.argv[1]
for _ in range(600):
    if os.path.exists(go):
        break
    time.sleep(0.05)
print("second", flush=True)
sys.stderr.write("said twice\\n")
sys.exit(3)
"""


def test_lines_arrive_while_the_child_runs(tmp_path: Path) -> None:
    go = tmp_path / "go"
    argv = [sys.executable, "-c", CHILD, str(go)]
    with proc.stream(argv=argv, input_text="first\n") as child:
        assert child.readline(deadline=time.monotonic() + 30) == "first"
        go.touch()  # only now may the child go on
        assert child.readline(deadline=time.monotonic() + 30) == "second"
        assert child.readline(deadline=time.monotonic() + 30) is None
        assert child.wait() == (3, "said twice\n")


def test_no_line_by_the_deadline(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", CHILD, str(tmp_path / "never")]
    with proc.stream(argv=argv, input_text="first\n") as child:
        assert child.readline(deadline=time.monotonic() + 30) == "first"
        with pytest.raises(TimeoutError):
            child.readline(deadline=time.monotonic() + 0.2)
    # leaving the block killed the child, which would have waited 30 s for the file


def test_a_missing_program_is_a_prerequisite_error(tmp_path: Path) -> None:
    with (
        pytest.raises(PrerequisiteError, match="cannot be started"),
        proc.stream(argv=[str(tmp_path / "missing")]),
    ):
        pass


# Says it is ready, then sleeps; on SIGTERM it writes a file (its cleanup) and exits.
TERMINABLE = """
import signal, sys, time
def cleanup(*_):
    open(sys.argv[1], "w").write("cleaned")
    sys.exit(0)
signal.signal(signal.SIGTERM, cleanup)
print("ready", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize(("grace", "cleaned"), [(10.0, True), (0.0, False)])
def test_a_child_left_running_gets_its_grace_before_the_kill(
    tmp_path: Path, grace: float, cleaned: bool
) -> None:
    done = tmp_path / "cleaned"
    argv = [sys.executable, "-c", TERMINABLE, str(done)]
    with proc.stream(argv=argv, grace=grace) as child:
        assert child.readline(deadline=time.monotonic() + 30) == "ready"
        pid = child.pid
    assert done.exists() is cleaned
    assert not Path(f"/proc/{pid}").exists()  # ended (and reaped) when the block ended

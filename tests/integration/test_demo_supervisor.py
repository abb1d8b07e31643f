"""`make run`'s supervisor (demo/supervise.py) with tiny real processes: a dying process is named
with its exit code and restarted with a doubling backoff while the others keep running, a crash loop
is given up with a clear message, and a killed process is named by its signal and restarted."""

from __future__ import annotations

import os
import signal
import sys
import time

from demo.supervise import Supervisor


def _until(condition, supervisor: Supervisor, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "supervisor did not get there in time"
        supervisor.poll()
        time.sleep(0.02)


def test_a_dying_process_is_named_and_restarted_while_the_others_keep_running(tmp_path):
    marker = tmp_path / "starts"
    lines: list[str] = []
    supervisor = Supervisor(
        [
            ("steady", [sys.executable, "-c", "import time; time.sleep(120)"]),
            (
                "registry",
                [sys.executable, "-c", f"open({str(marker)!r}, 'a').write('x'); raise SystemExit(3)"],
            ),
        ],
        backoff_start=0.05,
        backoff_max=0.2,
        fast_failure=5.0,
        max_fast_failures=4,
        echo=lines.append,
    )
    supervisor.start()
    try:
        steady, registry = supervisor.program("steady"), supervisor.program("registry")
        pid = steady.process.pid
        _until(lambda: registry.gave_up, supervisor)

        assert registry.exits == [3, 3, 3, 3]
        assert registry.starts == 4
        assert marker.read_text() == "xxxx"  # really run again each time, not just counted
        died = [line for line in lines if line.startswith("==> registry exited with code 3")]
        assert len(died) == 4
        assert [line.split("restarting in ")[1] for line in died[:3]] == [
            "0.05 s; still running: steady",
            "0.1 s; still running: steady",
            "0.2 s; still running: steady",
        ]
        assert "not restarted again" in died[3]
        assert "failed 4 times in a row" in died[3]
        assert lines.count("==> restarting registry (start 2)") == 1
        assert steady.running
        assert steady.process.pid == pid
        assert steady.starts == 1

        os.kill(pid, signal.SIGKILL)
        _until(lambda: steady.starts == 2 and steady.running, supervisor)
        assert any(line.startswith("==> steady was killed by signal SIGKILL") for line in lines)
        assert steady.process.pid != pid
    finally:
        supervisor.stop(timeout=5)
    assert not supervisor.program("steady").running


def test_stop_ends_every_process(tmp_path):
    supervisor = Supervisor(
        [(f"p{i}", [sys.executable, "-c", "import time; time.sleep(120)"]) for i in range(3)],
        echo=lambda _line: None,
    )
    supervisor.start()
    supervisor.poll()
    assert all(p.running for p in supervisor.programs)
    supervisor.stop(timeout=5)
    assert [p.process.returncode for p in supervisor.programs] == [-signal.SIGTERM] * 3

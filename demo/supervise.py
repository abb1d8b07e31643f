"""A small process supervisor for `make run`: when one process dies the others keep running, the
dead one is named (with its exit code or signal) and restarted after a backoff that doubles from
``backoff_start`` to ``backoff_max``; after ``max_fast_failures`` failures in a row that each came
within ``fast_failure`` seconds of the start, it gives up on that process with a clear message.

Why our own loop and not a process manager from PyPI: honcho (Procfile runner) stops everything
when one process exits and never restarts; supervisor (supervisord) restarts, but it is a daemon
with its own configuration file, log files and control socket, which is much for a zero-setup demo
started and stopped with Ctrl+C in one terminal. This loop is about a hundred lines, keeps every
process's output on the console, and is tested with tiny commands (tests/integration/test_demo_supervisor.py).
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Program:
    """One supervised command and its restart state."""

    name: str
    argv: Sequence[str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    starts: int = 0
    fast_failures: int = 0
    delay: float = 0.0
    restart_at: float | None = None
    gave_up: bool = False
    exits: list[int] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def describe_exit(code: int) -> str:
    """Popen's return code in words: a negative code is the signal that ended the process."""
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class Supervisor:
    """Start, watch and restart ``programs``; ``poll`` does one round, ``run`` loops until stopped."""

    def __init__(
        self,
        programs: Sequence[tuple[str, Sequence[str]]],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        backoff_start: float = 1.0,
        backoff_max: float = 30.0,
        fast_failure: float = 10.0,
        max_fast_failures: int = 5,
        echo: Callable[[str], None] = lambda line: print(line, flush=True),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.programs = [Program(name, list(argv)) for name, argv in programs]
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self.backoff_start = backoff_start
        self.backoff_max = backoff_max
        self.fast_failure = fast_failure
        self.max_fast_failures = max_fast_failures
        self.echo = echo
        self.clock = clock
        self.stopping = False

    def program(self, name: str) -> Program:
        return next(p for p in self.programs if p.name == name)

    def start(self) -> None:
        for program in self.programs:
            self.echo(f"==> starting {program.name}")
            self._spawn(program)

    def _spawn(self, program: Program) -> None:
        program.process = subprocess.Popen(program.argv, cwd=self.cwd, env=self.env)  # noqa: S603
        program.started_at = self.clock()
        program.starts += 1
        program.restart_at = None

    def poll(self) -> None:
        """Notice processes that died, schedule their restart, and restart those whose time has come."""
        now = self.clock()
        for program in self.programs:
            if program.gave_up or self.stopping:
                continue
            if program.process is not None and program.restart_at is None:
                code = program.process.poll()
                if code is None:
                    continue
                program.exits.append(code)
                self._died(program, code, now)
            if program.restart_at is not None and now >= program.restart_at:
                self.echo(f"==> restarting {program.name} (start {program.starts + 1})")
                self._spawn(program)

    def _died(self, program: Program, code: int, now: float) -> None:
        lived = now - program.started_at
        if lived < self.fast_failure:
            program.fast_failures += 1
            program.delay = min(self.backoff_max, program.delay * 2 if program.delay else self.backoff_start)
        else:  # it ran for a while: a fresh failure, not a crash loop
            program.fast_failures = 1
            program.delay = self.backoff_start
        others = [p.name for p in self.programs if p is not program and p.running]
        still = f"; still running: {', '.join(others)}" if others else ""
        if program.fast_failures >= self.max_fast_failures:
            program.gave_up = True
            self.echo(
                f"==> {program.name} {describe_exit(code)} after {lived:.1f} s; it failed "
                f"{program.fast_failures} times in a row within {self.fast_failure:g} s of starting, "
                f"so it is not restarted again (fix the cause and rerun make run){still}"
            )
            return
        program.restart_at = now + program.delay
        self.echo(
            f"==> {program.name} {describe_exit(code)} after {lived:.1f} s; "
            f"restarting in {program.delay:g} s{still}"
        )

    @property
    def all_gave_up(self) -> bool:
        return all(p.gave_up for p in self.programs)

    def run(self, interval: float = 0.5) -> int:
        """Supervise until ``stop`` (or Ctrl+C); 1 if every program was given up, else 0."""
        try:
            while not self.stopping and not self.all_gave_up:
                self.poll()
                time.sleep(interval)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
        return 1 if self.all_gave_up else 0

    def request_stop(self, *_args: object) -> None:
        self.stopping = True

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every running process, wait up to ``timeout`` seconds in all, then kill."""
        self.stopping = True
        running = [p.process for p in self.programs if p.process is not None and p.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

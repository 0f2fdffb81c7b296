"""Searching many schedules of one scenario.

A scenario is a *builder*: a function that returns a fresh :class:`~tryalloc.kernel.machine.Kernel`
with its tasks spawned and its interrupt sources declared.  The search is stateless (as loom's and
CHESS's): every execution builds the scenario anew and replays a prefix of choices.

* :func:`explore` walks every schedule depth-first, within a *preemption bound* (switches away from
  a CPU that could have gone on; CHESS and loom find most bugs within 2) and the interrupt budgets
  the scenario declared.  It is exhaustive for those bounds.
* :func:`random_search` draws schedules from a seeded generator, for breadth on larger scenarios.
* :func:`replay` reruns one schedule from its replay string.

A detector's report ends an execution; the search records it (with its replay string) and, unless
told to go on, stops.  ``check(kernel, result)`` runs after every completed execution (invariants).

**Boot once.**  Called as ``explore(setup, boot=Config(...))`` (or ``boot=dict(nr_cpus=2, ...)``, the
:class:`~tryalloc.kernel.machine.Kernel` options), the search boots that machine once, snapshots it
(:mod:`tryalloc.kernel.snapshot`) and, before each execution, restores the booted state and calls
``setup(kernel)`` on it to spawn the tasks and declare the interrupts; ``restore=False`` boots a fresh
machine for each execution instead (the same executions, only slower).  Without ``boot`` the first
argument is a builder as before, called for every execution: a builder may do anything before it
spawns (boot two machines, keep references across calls), so only the caller can say that its
scenario starts from a plainly booted machine.
"""
from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ..config import Config
from ..errors import KernelReport, ReplayError
from .machine import Kernel
from .sched import RUN, Random, Replay, RunResult, Strategy, decode
from .snapshot import restore as restore_state
from .snapshot import snapshot


@dataclass
class ExploreResult:
    """What a search saw: executions run, reports found (each with ``.replay``), the outcome
    counts returned by ``outcome(kernel, result)``, and whether the search space was exhausted."""

    executions: int = 0
    failures: list = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    complete: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def raise_first(self) -> None:
        """Re-raise the first report found, if any."""
        if self.failures:
            raise self.failures[0]


class _DFS(Strategy):
    """Follow ``prefix``, then always the first allowed option; remember the alternatives."""

    def __init__(self, prefix: list[int], bound: int | None):
        self.prefix = prefix
        self.bound = bound
        self.alternatives: dict[int, list[int]] = {}
        self.choices: list[int] = []  # the run's own list of choices, shared by reference

    def choose(self, run, options):
        self.choices = run.choices
        pos = run.nchoices
        allowed = list(range(len(options)))
        if self.bound is not None and run.preemptions >= self.bound and run.last is not None:
            last = (RUN, run.last.id)
            if last in options:  # the last CPU can go on: switching to another would preempt it
                allowed = [i for i, o in enumerate(options) if o[0] != RUN or o == last]
        self.alternatives[pos] = allowed
        return self.prefix[pos] if pos < len(self.prefix) else allowed[0]

    def next_prefix(self) -> list[int] | None:
        choices = self.choices
        for pos in range(len(choices) - 1, -1, -1):
            allowed = self.alternatives.get(pos)
            if allowed:
                i = allowed.index(choices[pos])
                if i + 1 < len(allowed):
                    return choices[:pos] + [allowed[i + 1]]
        return None


def _machine(build: Callable, boot: Config | dict | None, restore: bool) -> Callable[[], Kernel]:
    """What each execution calls for its machine: ``build()``, or with ``boot``, the booted machine
    (restored, or booted anew) after ``build(kernel)`` set the scenario up on it."""
    if boot is None:
        return build

    def boot_kernel() -> Kernel:
        return Kernel(boot) if isinstance(boot, Config) else Kernel(**boot)

    if not restore:
        def fresh() -> Kernel:
            kernel = boot_kernel()
            build(kernel)
            return kernel
        return fresh
    kernel = boot_kernel()
    booted = snapshot(kernel)

    def restored() -> Kernel:
        restore_state(kernel, booted)
        build(kernel)
        return kernel
    return restored


def _execute(build: Callable, strategy: Strategy, check, outcome, result: ExploreResult) -> None:
    kernel = build()
    try:
        res = kernel.run(strategy)
        if check is not None:
            check(kernel, res)
        if outcome is not None:
            result.outcomes[outcome(kernel, res)] += 1
    except KernelReport as report:
        if report.replay is None:  # raised by check() after the run ended
            report.with_replay(kernel.last_replay)
        result.failures.append(report)
    finally:
        result.executions += 1


def explore(build: Callable, *, preemption_bound: int | None = 2, max_executions: int = 1_000_000,
            stop_on_failure: bool = True, check: Callable | None = None,
            outcome: Callable | None = None, boot: Config | dict | None = None,
            restore: bool = True) -> ExploreResult:
    """Run every schedule of ``build()`` (with ``boot``: of ``build(kernel)``) within the bounds;
    see the module docstring."""
    build = _machine(build, boot, restore)
    result = ExploreResult()
    start = time.perf_counter()
    prefix: list[int] | None = []
    while prefix is not None and result.executions < max_executions:
        dfs = _DFS(prefix, preemption_bound)
        failures = len(result.failures)
        _execute(build, dfs, check, outcome, result)
        if stop_on_failure and len(result.failures) > failures:
            break
        prefix = dfs.next_prefix()
    result.complete = prefix is None
    result.seconds = time.perf_counter() - start
    return result


def random_search(build: Callable, *, seed: int = 0, executions: int = 1000, stop_on_failure: bool = True,
                  check: Callable | None = None, outcome: Callable | None = None,
                  boot: Config | dict | None = None, restore: bool = True) -> ExploreResult:
    """Run ``executions`` schedules drawn from ``random.Random(seed)``; each is replayable.  ``boot``
    and ``restore`` as for :func:`explore`."""
    build = _machine(build, boot, restore)
    result = ExploreResult()
    start = time.perf_counter()
    seeds = random.Random(seed)
    for _ in range(executions):
        before = len(result.failures)
        _execute(build, Random(seeds.randrange(2**32)), check, outcome, result)
        if stop_on_failure and len(result.failures) > before:
            break
    result.seconds = time.perf_counter() - start
    return result


def replay(build: Callable, replay_string: str, *, boot: Config | dict | None = None) -> RunResult:
    """Rerun the schedule ``replay_string`` on a fresh ``build()`` (with ``boot``: ``build(kernel)`` on
    a freshly booted machine); it reproduces the original run event for event (and raises the same
    report, if it raised one)."""
    fingerprint, _ = decode(replay_string)
    kernel = _machine(build, boot, restore=False)()
    shape = (len(kernel.cpus), len(kernel._sources))
    if shape != fingerprint:
        raise ReplayError(f"replay {replay_string!r} was recorded on {fingerprint[0]} CPUs with "
                          f"{fingerprint[1]} interrupt sources; this scenario has {shape[0]} and {shape[1]}")
    return kernel.run(Replay(replay_string))

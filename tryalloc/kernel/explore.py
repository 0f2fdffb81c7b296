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
told to go on, stops.  ``check(kernel, result)`` runs after every completed execution (invariants);
``check_step(run)`` runs at every scheduling point of every execution, before the step the running
CPU announced (per-step invariants, :mod:`tryalloc.mm.invariants`); without it the runs pay nothing.

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

import os
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ..config import Config
from ..errors import InvalidArgumentError, KernelReport, ReplayError
from .checkpoint import load_frontier, save_frontier, settle
from .frontier import SleepBlocked, Tree
from .machine import Kernel
from .progress import Progress
from .sched import Random, Replay, RunResult, Strategy, decode
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
    pruned: int = 0  # executions dropped by the reduction once every option left was asleep
    skipped: int = 0  # options the reduction never tried (each a whole subtree)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def shortest(self) -> KernelReport | None:
        """The failure with the fewest scheduling choices: the easiest counterexample to read."""
        if not self.failures:
            return None
        def size(failure):
            choices = decode(failure.replay)[1]
            return len(choices), sum(choices)  # fewest decisions, then the least unusual ones

        return min(self.failures, key=size)

    def summary(self) -> str:
        """A few lines for a person: how much was searched and the shortest counterexample."""
        rate = self.executions / self.seconds if self.seconds else 0.0
        lines = [f"{self.executions} executions{' (complete)' if self.complete else ''} in "
                 f"{self.seconds:.2f} s ({rate:,.0f}/s); {len(self.failures)} failure(s)"]
        if self.pruned or self.skipped:
            lines.append(f"reduction: {self.skipped} subtrees skipped, {self.pruned} executions cut short")
        short = self.shortest
        if short is not None:
            lines.append(f"shortest counterexample: {short.title}\n  replay: {short.replay}")
        return "\n".join(lines)

    def raise_first(self) -> None:
        """Re-raise the first report found, if any."""
        if self.failures:
            raise self.failures[0]


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


def _execute(build: Callable, strategy: Strategy, check, outcome, result: ExploreResult,
             check_step: Callable | None = None) -> None:
    kernel = build()
    try:
        res = kernel.run(strategy, check_step=check_step)
        if check is not None:
            check(kernel, res)
        if outcome is not None:
            result.outcomes[outcome(kernel, res)] += 1
    except SleepBlocked:
        result.pruned += 1
        return
    except KernelReport as report:
        if report.replay is None:  # raised by check() after the run ended
            report.with_replay(kernel.last_replay)
        result.failures.append(report)
    result.executions += 1


def explore(build: Callable, *, preemption_bound: int | None = 2, max_executions: int = 1_000_000,
            stop_on_failure: bool = True, check: Callable | None = None,
            outcome: Callable | None = None, reduce: bool = False, progress: bool = False,
            frontier: str | os.PathLike | None = None, executor=None, workers: int | None = None,
            split_depth: int = 6, boot: Config | dict | None = None, restore: bool = True,
            check_step: Callable | None = None) -> ExploreResult:
    """Run every schedule of ``build()`` (with ``boot``: of ``build(kernel)``) within the bounds; see the
    module docstring.

    ``reduce=True`` skips schedules that only reorder commuting steps (sleep sets,
    :mod:`tryalloc.kernel.por`): the same outcomes from fewer executions, with or without a
    preemption bound (under one, an order is skipped only if the order that covers it costs no more
    preemptions).  ``progress=True`` shows
    a progress bar (executions, rate, what the reduction skipped).  ``frontier`` names a JSON file:
    a search that stops early (``max_executions``, a failure, Ctrl-C) saves where it was there, and
    the next call with the same file resumes from it (:mod:`tryalloc.kernel.frontier`); a parallel
    search saves and resumes the subtrees it has not finished.
    ``executor`` (a process pool, a ``dask.distributed.Client``) or ``workers=N`` (a local process
    pool) splits the tree at ``split_depth`` choices and explores the subtrees in parallel
    (:mod:`tryalloc.kernel.parallel`); ``build``, ``check`` and ``outcome`` must then be picklable.
    The result's :attr:`~ExploreResult.shortest` is the failure with the fewest choices.  ``boot`` (a
    :class:`~tryalloc.config.Config` or its keywords) boots the machine once and restores it before each
    execution (``restore=False``: boots it anew each time); a serial search only.  ``check_step(run)``
    runs at every scheduling point (see the module docstring); a serial search only.
    """
    if executor is not None or workers is not None:
        if check_step is not None:
            raise InvalidArgumentError("check_step= runs in this process's scheduler: a parallel search takes "
                                       "check= only")
        if boot is not None:
            raise InvalidArgumentError("boot= restores one machine in this process: run a parallel search with a "
                                       "picklable build() that boots its own")
        from .parallel import explore_parallel
        return explore_parallel(build, executor=executor, workers=workers, split_depth=split_depth,
                                preemption_bound=preemption_bound, max_executions=max_executions,
                                stop_on_failure=stop_on_failure, check=check, outcome=outcome,
                                reduce=reduce, progress=progress, frontier=frontier)
    build = _machine(build, boot, restore)
    tree = Tree(preemption_bound, reduce)
    result = ExploreResult()
    saved = load_frontier(frontier, build, check, tree, result) if frontier is not None else None
    prefix = tree.prefix() if saved else []
    start = time.perf_counter() - result.seconds
    bar = Progress(progress, result, tree)
    try:
        prefix = search_tree(build, tree, prefix, result, max_executions, stop_on_failure, check, outcome, bar,
                             check_step)
    except KeyboardInterrupt:
        if frontier is not None:
            result.seconds = time.perf_counter() - start
            save_frontier(frontier, tree, result, preemption_bound, reduce)
        raise
    finally:
        bar.close()
    result.complete = prefix is None
    result.skipped = tree.skipped
    result.seconds = time.perf_counter() - start
    return settle(frontier, result, lambda: save_frontier(frontier, tree, result, preemption_bound, reduce),
                  progress)


def search_tree(build, tree: Tree, prefix, result: ExploreResult, max_executions: int,
                stop_on_failure: bool, check, outcome, bar=None, check_step=None) -> list[int] | None:
    """Walk ``tree`` from ``prefix`` until it is exhausted (``None``), or until the executions
    reach ``max_executions`` or a failure stops it (the prefix to resume from)."""
    while prefix is not None and result.executions < max_executions:
        failures = len(result.failures)
        _execute(build, tree, check, outcome, result, check_step)
        if bar is not None:
            bar.update()
        prefix = tree.next_prefix()
        if stop_on_failure and len(result.failures) > failures:
            break
    return prefix


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


def replay(build: Callable, replay_string: str, *, boot: Config | dict | None = None,
           check_step: Callable | None = None) -> RunResult:
    """Rerun the schedule ``replay_string`` on a fresh ``build()`` (with ``boot``: ``build(kernel)`` on
    a freshly booted machine); it reproduces the original run event for event (and raises the same
    report, if it raised one; a report of the search's ``check_step`` needs the same ``check_step``)."""
    fingerprint, _ = decode(replay_string)
    kernel = _machine(build, boot, restore=False)()
    shape = (len(kernel.cpus), len(kernel._sources))
    if shape != fingerprint:
        raise ReplayError(f"replay {replay_string!r} was recorded on {fingerprint[0]} CPUs with "
                          f"{fingerprint[1]} interrupt sources; this scenario has {shape[0]} and {shape[1]}")
    return kernel.run(Replay(replay_string), check_step=check_step)

"""Costs of the simulated machine: scheduling steps, whole executions, interrupt injection.

Prints a table; every figure is the median of 5 repetitions (time.perf_counter).  Run from the
project root:  .venv/bin/python benchmarks/bench_core.py
Targets (issue "The simulation core"): a step <= 3 us with detectors on; >= 10,000 executions per
second for a 20-step two-CPU scenario.
"""
from __future__ import annotations

import platform
import statistics
import sys
import time

from tryalloc import Kernel, explore
from tryalloc.kernel.locking import spin_lock_irqsave, spin_trylock_irqsave, spin_unlock_irqrestore, spinlock_t
from tryalloc.kernel.sched import RUN, Strategy, inject_interrupt

#: The smallest whole machine: every Kernel boots the page allocator too, so searches use tiny zones.
SMALL = dict(nr_cpus=2, pages_per_node=64, max_order=3, pageblock_order=3, memcg=False)


def median(fn, reps=5):
    return statistics.median(fn() for _ in range(reps))


class Alternate(Strategy):
    """Switch CPU at every point: the worst case for greenlet switching."""

    def choose(self, run, options):
        runs = [i for i, (kind, _) in enumerate(options) if kind == RUN]
        return runs[-1]


def step_cost(strategy_cls, pairs=2000, trace=True):
    """Per scheduling point: each CPU takes and releases its own lock (no contention, so the figure is
    the cost of a point, a decision and, with Alternate, a switch to the other CPU's greenlet)."""
    def once():
        k = Kernel(**SMALL)

        def task(lock):
            def run():
                for _ in range(pairs):
                    f = spin_lock_irqsave(lock)
                    spin_unlock_irqrestore(lock, f)
            return run

        k.spawn(0, task(spinlock_t("L0")))
        k.spawn(1, task(spinlock_t("L1")))
        t = time.perf_counter()
        k.run(strategy_cls(), trace=trace)
        dt = time.perf_counter() - t
        return dt / (2 * 2 * pairs) * 1e6  # two CPUs, two scheduling points (lock, unlock) per pair
    return median(once)


def twenty_step_setup(k):
    """Two CPUs, each: lock, trylock, unlock, unlock (with irqsave): ~20 scheduling points with the
    start events; one NMI on CPU 0 that trylocks."""
    a, b = spinlock_t("A"), spinlock_t("B")

    def task(x, y):
        def run():
            for _ in range(2):
                f = spin_lock_irqsave(x)
                g = spin_trylock_irqsave(y)
                if g:
                    spin_unlock_irqrestore(y, g)
                spin_unlock_irqrestore(x, f)
        return run

    def nmi():
        f = spin_trylock_irqsave(a)
        if f:
            spin_unlock_irqrestore(a, f)

    k.spawn(0, task(a, b))
    k.spawn(1, task(b, a))
    k.on_interrupt(0, "nmi", nmi)


def twenty_step_scenario():
    """The stateless builder of the same scenario: a fresh machine for every execution."""
    def build():
        k = Kernel(**SMALL)
        twenty_step_setup(k)
        return k
    return build


def executions_per_second():
    """Executions per second of an exhaustive search, and the share of each execution spent booting
    the fresh machine it runs on (stateless search: every execution builds its scenario anew)."""
    build = twenty_step_scenario()
    probe = build().run()
    points = sum(1 for e in probe.events if e[3] not in ("acquired", "trylock-failed", "exit"))

    def once():
        res = explore(build, preemption_bound=1, max_executions=3000)
        return res.executions / res.seconds

    def booted_once():
        res = explore(twenty_step_setup, boot=SMALL, preemption_bound=1, max_executions=3000)
        return res.executions / res.seconds

    def boot_us():
        t = time.perf_counter()
        for _ in range(500):
            Kernel(**SMALL)
        return (time.perf_counter() - t) / 500 * 1e6
    return median(once), points, median(boot_us), median(booted_once)


def injection_cost(n=5000):
    def once():
        k = Kernel(nr_cpus=1)

        def task():
            t = time.perf_counter()
            for _ in range(n):
                inject_interrupt("nmi", _noop)
            return time.perf_counter() - t

        return k.call(task) / n * 1e6
    return median(once)


def _noop():
    return None


def call_ns(n=1_000_000):
    """Calibration: one plain Python function call in a loop, so figures can be compared across
    machines (the research notes measured 37 ns on this kind of machine; this VM varies)."""
    def once():
        f = _noop
        t = time.perf_counter()
        for _ in range(n):
            f()
        return (time.perf_counter() - t) / n * 1e9
    return median(once)


def main():
    print(f"# bench_core.py — Python {sys.version.split()[0]} on {platform.machine()}, "
          f"median of 5 runs; command: .venv/bin/python benchmarks/bench_core.py\n")
    rows = [
        ("calibration: a plain Python function call in a loop (ns)", f"{call_ns():.0f}", ""),
        ("scheduling point, one CPU after the other, detectors on, trace on (us)",
         f"{step_cost(_first_strategy()):.2f}", "<= 3"),
        ("scheduling point, switching CPU at every point, detectors on (us)", f"{step_cost(Alternate):.2f}", "<= 3"),
        ("scheduling point, one CPU after the other, trace off (us)",
         f"{step_cost(_first_strategy(), trace=False):.2f}", ""),
    ]
    eps, points, boot, booted_once = executions_per_second()
    rows.append((f"executions per second, 2 CPUs + 1 NMI, {points} scheduling points each (explore)",
                 f"{eps:,.0f}", ">= 10,000"))
    rows.append(("of which: booting the 64-page machine each execution (us)", f"{boot:.0f}", ""))
    rows.append(("executions per second, booting once and restoring the snapshot (explore(setup, boot=...))",
                 f"{booted_once:,.0f}", ">= 10,000"))
    rows.append(("executions per second without the boot (run + search bookkeeping)",
                 f"{1e6 / (1e6 / eps - boot):,.0f}", ""))
    rows.append(("interrupt injection, empty NMI handler (us per injection)", f"{injection_cost():.2f}", ""))
    print("| measure | value | target |\n|---|---|---|")
    for name, value, target in rows:
        print(f"| {name} | {value} | {target} |")


def _first_strategy():
    from tryalloc import Serial
    return Serial


if __name__ == "__main__":
    main()

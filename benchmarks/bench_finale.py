"""The finale's profiler: run ``.venv/bin/python benchmarks/bench_finale.py``.

The search of :func:`tryalloc.book.finale_scenarios.profiler_build` (2 CPUs, one NMI each, the
any-context arena) with no preemption and with one preemption allowed: executions, whether the
search was complete, failures, and wall time (time.perf_counter around ``explore``); then the
chapter's memory.max sweep (:func:`~tryalloc.book.finale_scenarios.limit_sweep`, 4 CPUs, 20 seeds per
limit): runs per second and the samples recorded and lost per limit.
"""
from __future__ import annotations

import time

import tryalloc
from tryalloc.book import finale_scenarios as F


def search(bound: int) -> None:
    t = time.perf_counter()
    found = tryalloc.explore(F.profiler_build(tryalloc), preemption_bound=bound,
                             check=F.profiler_check(tryalloc), outcome=F.profiler_outcome)
    seconds = time.perf_counter() - t
    print(f"search, preemption bound {bound}: {found.executions:,} executions, complete={found.complete}, "
          f"{len(found.failures)} failures, {seconds:.1f} s ({found.executions / seconds:,.0f}/s)")


def sweep() -> None:
    t = time.perf_counter()
    results = F.limit_sweep(tryalloc, seeds=range(20))
    seconds = time.perf_counter() - t
    runs = sum(r["runs"] for r in results.values())
    print(f"memory.max sweep: {runs} runs in {seconds:.1f} s ({runs / seconds:,.0f} runs/s)")
    for limit, r in results.items():
        print(f"  memory.max {limit:>3}: recorded {r['samples']:>4}, lost {r['lost']}, deferred {r['deferred']}")


def main() -> None:
    search(0)
    search(1)
    sweep()


if __name__ == "__main__":
    main()

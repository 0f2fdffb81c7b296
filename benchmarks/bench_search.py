"""The search's figures: executions per second, the reduction factor, the whole search time, and the
process-pool speedup, on the reference scenario "2 CPUs allocating and freeing, one NMI each".

Command: .venv/bin/python benchmarks/bench_search.py [--dask]
Every comparison asserts that both searches saw the same outcomes before printing a factor.  The
serial searches boot the machine once and restore it before each execution (``explore(setup,
boot=...)``); the pool and the Dask cluster take the picklable builder, which boots its own.
"""
import os
import platform
import sys
import time
from functools import partial

from tryalloc import explore
from tryalloc.mm import scenarios as S

BOOT = S.alloc_free_options(nr_cpus=2)
REFERENCE = partial(S.alloc_free_setup, nmis=1)
NO_NMI = partial(S.alloc_free_setup, nmis=0)
REFERENCE_BUILD = partial(S.alloc_free, nr_cpus=2, nmis=1)  # for a parallel search


def search(build, **kw):
    start = time.perf_counter()
    cpu = time.process_time()
    res = explore(build, outcome=S.alloc_free_outcome, stop_on_failure=False, **kw)
    res.wall, res.cpu = time.perf_counter() - start, time.process_time() - cpu
    assert res.complete and res.ok, res.summary()
    return res


def row(what, value, target=""):
    print(f"| {what} | {value} | {target} |")


def reduction(what, full, red, target=""):
    """Print the executions of a search without and with reduction, after asserting the same outcomes."""
    assert set(red.outcomes) == set(full.outcomes)
    runs = red.executions + red.pruned
    row(f"{what}: executions without / with reduction", f"{full.executions:,} / {runs:,} ({red.pruned} cut short)")
    row("  reduction factor (same outcomes, asserted)", f"{full.executions / runs:.2f}x", target)
    row("  time without / with reduction (s, wall)", f"{full.wall:.1f} / {red.wall:.1f}")


def main():
    print(f"# bench_search.py — Python {sys.version.split()[0]} on {platform.machine()}, "
          f"{os.cpu_count()} CPUs; command: .venv/bin/python benchmarks/bench_search.py"
          f"{' --dask' if '--dask' in sys.argv else ''}\n")
    print("| measure | value | target |\n|---|---|---|")
    ref = search(REFERENCE, boot=BOOT, preemption_bound=2)
    row("reference scenario (2 CPUs alloc+free, one NMI each, preemption bound 2): executions", f"{ref.executions:,}")
    row("  the whole search, one process (s, wall)", f"{ref.wall:.1f}", "<= 60")
    row("  executions per second on one core (CPU time of this process)", f"{ref.executions / ref.cpu:,.0f}",
        ">= 10,000")
    row("  distinct outcomes (where the pages ended up)", len(ref.outcomes))

    bounded = search(REFERENCE, boot=BOOT, preemption_bound=2, reduce=True)
    reduction("reference scenario, preemption bound 2", ref, bounded, ">= 8x")
    full = search(NO_NMI, boot=BOOT, preemption_bound=None)
    reduction("2 CPUs alloc+free, no NMI, no bound", full,
              search(NO_NMI, boot=BOOT, preemption_bound=None, reduce=True))

    par = search(REFERENCE_BUILD, preemption_bound=2, workers=2, split_depth=6)
    assert par.outcomes == ref.outcomes and par.executions == ref.executions
    row("reference scenario on a 2-process pool (s, wall; same executions and outcomes, asserted)",
        f"{par.wall:.1f}")
    row("  speedup over one process", f"{ref.wall / par.wall:.2f}x", "~2x on 2 idle cores")

    if "--dask" in sys.argv:
        import distributed
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                      dashboard_address=None) as cluster, distributed.Client(cluster) as client:
            das = search(REFERENCE_BUILD, preemption_bound=2, executor=client, split_depth=6)
        assert das.outcomes == ref.outcomes
        row("reference scenario on a local Dask cluster of 2 worker processes (s, wall)", f"{das.wall:.1f}")


if __name__ == "__main__":
    main()

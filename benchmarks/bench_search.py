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

    full = search(NO_NMI, boot=BOOT, preemption_bound=None)
    red = search(NO_NMI, boot=BOOT, preemption_bound=None, reduce=True)
    assert set(red.outcomes) == set(full.outcomes)
    factor = full.executions / (red.executions + red.pruned)
    row("2 CPUs alloc+free, no NMI, no bound: executions without / with reduction",
        f"{full.executions:,} / {red.executions + red.pruned:,} ({red.pruned} cut short)")
    row("  reduction factor (same outcomes, asserted)", f"{factor:.1f}x", ">= 8x")
    row("  time without / with reduction (s)", f"{full.wall:.2f} / {red.wall:.2f}")

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

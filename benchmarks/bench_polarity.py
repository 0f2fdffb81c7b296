"""The flipped polarity of ``gfpflags_allow_spinning()`` on the memcg charge path (S9.5.1, S9.5.2):
run ``.venv/bin/python benchmarks/bench_polarity.py``.

The kernel test robot's regressions (202503101254.cfd454df-lkp@intel.com) came from ordinary charges
that never refilled the per-CPU stock once the helper's test was inverted.  Two measures, each with the
helper as posted and as fixed, on level 6 (the ``spin_polarity`` switch) and on 6.15 (the mutant
``as-posted-polarity`` of ``tryalloc.series.mutants``):

* work, counted on the model (:func:`tryalloc.book.memcg_scenarios.charge_cost`): a task two memcgs
  below root allocates ``N_COUNT`` pages with ``gfp | __GFP_ACCOUNT`` and frees none; the calls of
  ``page_counter_try_charge`` per charge and the page counters those calls charged per charge (each
  call charges the memcg and its two ancestors).  These are exact, not timings;
* time: ``N_TIME`` one-page ``try_charge_memcg`` calls in a row, inside one ``Kernel.call``
  (time.perf_counter, median of 5 runs), on the package as written, fixed against the mutant.
  Model time, not kernel time: it shows the extra path a charge takes, not the robot's percentages.
"""
from __future__ import annotations

import statistics
import time

import tryalloc
from tryalloc import Kernel, series
from tryalloc.book.memcg_scenarios import CHARGE_COST_MEMCGS, charge_cost
from tryalloc.include.gfp import GFP_ATOMIC, GFP_KERNEL, GFP_NOWAIT
from tryalloc.mm import memcontrol as M
from tryalloc.series import mutants

N_COUNT = 1024
N_TIME = 5_000
MASKS = {"GFP_KERNEL": GFP_KERNEL, "GFP_NOWAIT": GFP_NOWAIT, "GFP_ATOMIC": GFP_ATOMIC}


def counted_rows():
    L6 = series.load("6")
    runs = {"level 6, as posted": lambda gfp: charge_cost(L6, gfp, N_COUNT, spin_polarity="as_posted"),
            "level 6, fixed": lambda gfp: charge_cost(L6, gfp, N_COUNT),
            "6.15": lambda gfp: charge_cost(tryalloc, gfp, N_COUNT)}
    for name, gfp in MASKS.items():
        for label, run in runs.items():
            yield name, label, run(gfp)
        with mutants.enabled("as-posted-polarity"):
            yield name, "6.15 + as-posted-polarity", charge_cost(tryalloc, gfp, N_COUNT)


def charges(k, memcg, gfp):
    t = time.perf_counter()
    for _ in range(N_TIME):
        M.try_charge_memcg(memcg, gfp, 1)
    return (time.perf_counter() - t) / N_TIME


def median_us(gfp):
    runs = []
    for _ in range(5):
        k = Kernel(nr_cpus=1, pages_per_node=512)
        memcg = None
        for name in CHARGE_COST_MEMCGS:
            memcg = M.mem_cgroup_create(k, name, parent=memcg)
        runs.append(k.call(charges, k, memcg, gfp) * 1e6)
    return statistics.median(runs)


def main() -> None:
    print(f"| mask | run | page_counter_try_charge calls per charge | page counters charged per charge "
          f"| (of {N_COUNT} charges) |\n|---|---|---|---|---|")
    for name, label, run in counted_rows():
        print(f"| {name} | {label} | {run['calls_per_charge']:.4f} | {run['counters_per_charge']:.4f} "
              f"| {run['calls'][-1]} calls |")
    print("\n| one-page try_charge_memcg, GFP_KERNEL (µs per charge, median of 5) | value |\n|---|---|")
    fixed = median_us(GFP_KERNEL)
    with mutants.enabled("as-posted-polarity"):
        posted = median_us(GFP_KERNEL)
    print(f"| 6.15 (fixed) | {fixed:.2f} |\n| 6.15 + as-posted-polarity | {posted:.2f} |")


if __name__ == "__main__":
    main()

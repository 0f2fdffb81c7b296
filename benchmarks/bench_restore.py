"""The reference search of issue 13: 2 CPUs allocating and freeing, one NMI each, preemption bound 2.

Run from the project root:  .venv/bin/python benchmarks/bench_restore.py
Each CPU's task allocates and frees an order-0 page (``alloc_pages`` + ``__free_pages``); an NMI may
arrive once on each CPU, at any scheduling point, and allocates and frees one with ``try_alloc_pages``
+ ``free_pages_nolock``; page conservation is checked after every execution.  The search runs three
ways, alternating, best of 2 rounds each (``bench_restore.py N`` for N; the VM is shared, and load
only ever adds time): booting once and restoring the booted snapshot before each execution
(``explore(setup, boot=...)``, the default), booting a fresh machine for each (``restore=False``),
and the stateless builder form.  A plain Python call is timed in the same run.  Targets: >= 10,000
executions per second on one core; the whole search <= 60 s.
"""
from __future__ import annotations

import sys
import time

from tryalloc import Kernel, explore
from tryalloc.include.gfp import GFP_KERNEL
from tryalloc.mm import page_alloc as A
from tryalloc.mm.debug import check_invariants

BOOT = dict(nr_cpus=2, pages_per_node=64, max_order=3, pageblock_order=3, memcg=False)


def task():
    A.__free_pages(A.alloc_pages(GFP_KERNEL, 0), 0)


def nmi():
    page = A.try_alloc_pages(0, 0)
    if page is not None:
        A.free_pages_nolock(page, 0)


def setup(k):
    for cpu in (0, 1):
        k.spawn(cpu, task)
        k.on_interrupt(cpu, "nmi", nmi)


def build():
    k = Kernel(**BOOT)
    setup(k)
    return k


def check(k, res):
    check_invariants(k)


MODES = {"boot once, restore each execution": lambda: explore(setup, boot=BOOT, check=check),
         "boot a fresh machine each execution": lambda: explore(setup, boot=BOOT, restore=False, check=check),
         "stateless builder (build() each execution)": lambda: explore(build, check=check)}


def _noop():
    return None


def plain_call_ns(n=1_000_000):
    noop = _noop
    t = time.perf_counter()
    for _ in range(n):
        noop()
    return (time.perf_counter() - t) / n * 1e9


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    print(f"command: {sys.executable} {' '.join(sys.argv)}")
    best = {name: None for name in MODES}
    calls = []
    for _ in range(rounds):
        calls.append(plain_call_ns())
        for name, search in MODES.items():
            res = search()
            assert res.ok and res.complete
            if best[name] is None or res.seconds < best[name].seconds:
                best[name] = res
    call = min(calls)
    print(f"plain call: {call:.0f} ns (fastest of {rounds})")
    print("| search | executions | seconds | executions/s | us per execution in plain calls |\n|---|---|---|---|---|")
    for name, res in best.items():
        per = res.seconds / res.executions
        print(f"| {name} | {res.executions:,} | {res.seconds:.2f} | {res.executions / res.seconds:,.0f} | "
              f"{per * 1e9 / call:,.0f} |")


if __name__ == "__main__":
    main()

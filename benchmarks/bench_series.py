"""The series' own paths: the nolock pair on the pcp fast path, and the exhaustive NMI searches.

Run from the project root:  .venv/bin/python benchmarks/bench_series.py
Targets (issue "Patches 1 and 2"): a try_alloc_pages + free_pages_nolock pair <= 4 us; the search
"an NMI at every scheduling point of alloc_pages on CPU 0 calls try_alloc_pages or free_pages_nolock"
<= 10 s with zero deadlocks and conservation after every execution; the same search with
alloc_pages(GFP_ATOMIC) in the NMI finding the deadlock.
"""
from __future__ import annotations

import platform
import statistics
import sys
import time

from tryalloc import Kernel, explore
from tryalloc.include.gfp import GFP_ATOMIC, GFP_KERNEL
from tryalloc.mm import page_alloc as A
from tryalloc.mm.debug import check_invariants

N = 20_000


def nolock_pair_us() -> float:
    """try_alloc_pages + free_pages_nolock on a warm pcp list, event log off, median of 5 runs."""
    def once():
        k = Kernel(memcg=False, pages_per_node=4096)
        out = []

        def task():
            A.free_pages_nolock(A.try_alloc_pages(0, 0), 0)
            t = time.perf_counter()
            for _ in range(N):
                A.free_pages_nolock(A.try_alloc_pages(0, 0), 0)
            out.append((time.perf_counter() - t) / N * 1e6)

        k.spawn(0, task)
        k.run(trace=False)
        return out[0]
    return statistics.median(once() for _ in range(5))


def nmi_search(nmi_call: str, nr_cpus: int, bound: int):
    """CPU 0 (and CPU 1 when ``nr_cpus`` is 2) allocate and free an order-0 and an order-4 block with
    GFP_KERNEL; one NMI on CPU 0, placed at every scheduling point, runs ``nmi_call`` (the nolock pair
    frees what it got); ``bound`` preemptions.  The machine is booted once and restored before each
    execution.  Returns (executions, reports, seconds, complete)."""
    boot = dict(nr_cpus=nr_cpus, pages_per_node=256, max_order=5, pageblock_order=5, memcg=False,
                detectors={"lockdep": "off"})

    def setup(k):
        A.setup_per_zone_wmarks(k, 0)
        victim = k.call(A.alloc_pages, GFP_KERNEL, 0)

        def task():
            for order in (0, 4):
                A.__free_pages(A.alloc_pages(GFP_KERNEL, order), order)

        def nmi():
            if nmi_call == "try_alloc_pages":
                page = A.try_alloc_pages(0, 0)
                if page is not None:
                    A.free_pages_nolock(page, 0)
            elif nmi_call == "free_pages_nolock":
                A.free_pages_nolock(victim, 0)
            else:
                A.alloc_pages(GFP_ATOMIC, 0)

        for cpu in range(nr_cpus):
            k.spawn(cpu, task)
        k.on_interrupt(0, "nmi", nmi)

    res = explore(setup, boot=boot, preemption_bound=bound, stop_on_failure=False,
                  check=lambda k, r: check_invariants(k))
    return res.executions, len(res.failures), res.seconds, res.complete


def main():
    print(f"# bench_series.py — Python {sys.version.split()[0]} on {platform.machine()}; "
          f"command: .venv/bin/python benchmarks/bench_series.py\n")
    print("| measure | value | target |\n|---|---|---|")
    print(f"| try_alloc_pages + free_pages_nolock, pcp fast path (us per pair, median of 5) | "
          f"{nolock_pair_us():.2f} | <= 4 |")
    for call in ("try_alloc_pages", "free_pages_nolock", "alloc_pages(GFP_ATOMIC)"):
        for cpus, bound in ((1, 0), (2, 1)):
            runs, fails, secs, complete = nmi_search(call, cpus, bound)
            want = "finds the deadlock" if call.startswith("alloc_pages") else "0 reports, <= 10 s"
            print(f"| NMI on CPU0 calling {call}; {cpus} CPU(s) alloc+free order 0 and 4, preemption bound "
                  f"{bound}: executions / reports / seconds{'' if complete else ' (incomplete)'} | "
                  f"{runs} / {fails} / {secs:.2f} | {want} |")

if __name__ == "__main__":
    main()

"""The cost of one order-0 allocation and free through the public API, as a ratio to a plain call.

Run from the project root:  .venv/bin/python benchmarks/bench_pair.py  (add ``--fast`` for a
quicker, rougher run).  pyperf times, in worker processes, a plain Python function call and the two
pairs, ``alloc_pages`` + ``__free_pages`` and ``try_alloc_pages`` + ``free_pages_nolock``, on a warm
pcp list with the event log off; the VM is shared and noisy, so each pair is reported as a ratio to the
plain call measured in the same run, with the absolute figures beside it.  The Python calls one pair
makes are counted with cProfile; ``--calls`` prints them per function instead of timing anything (where
to cut next).  Target (issue 13): each pair <= 120 plain calls' worth.
"""
from __future__ import annotations

import cProfile
import pstats
import time

import pyperf

from tryalloc import Kernel
from tryalloc.include.gfp import GFP_KERNEL
from tryalloc.mm import page_alloc as A

COUNTED = 2000


def _noop():
    return None


def plain_call(loops: int) -> float:
    f = _noop
    t = time.perf_counter()
    for _ in range(loops):
        f()
    return time.perf_counter() - t


def _kernel_alloc():
    return A.alloc_pages(GFP_KERNEL, 0)


def _kernel_free(page):
    A.__free_pages(page, 0)


def _nolock_alloc():
    return A.try_alloc_pages(0, 0)


def _nolock_free(page):
    A.free_pages_nolock(page, 0)


PAIRS = {"alloc_pages + __free_pages": (_kernel_alloc, _kernel_free),
         "try_alloc_pages + free_pages_nolock": (_nolock_alloc, _nolock_free)}


def _on_cpu0(body):
    """Run ``body()`` as CPU 0's task of a fresh machine, with the event log off; return its result."""
    k = Kernel(memcg=False, pages_per_node=4096)
    A.pageset_update(k.zones[0].pcp(0), 1024, 1024, 32)
    out = []
    k.spawn(0, lambda: out.append(body()))
    k.run(trace=False)
    return out[0]


def pair_loop(name: str):
    alloc, free = PAIRS[name]

    def timed(loops: int) -> float:
        def body():
            free(alloc())  # warm the list
            t = time.perf_counter()
            for _ in range(loops):
                free(alloc())
            return time.perf_counter() - t
        return _on_cpu0(body)
    return timed


def profile_pairs(name: str) -> pstats.Stats:
    """cProfile's statistics over ``COUNTED`` pairs on a warm list."""
    alloc, free = PAIRS[name]

    def body():
        free(alloc())
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(COUNTED):
            free(alloc())
        prof.disable()
        return pstats.Stats(prof)
    return _on_cpu0(body)


def calls_per_pair(name: str) -> float:
    return profile_pairs(name).total_calls / COUNTED


def print_calls() -> None:
    """Per pair: how many times each function is called, most called first."""
    for name in PAIRS:
        stats = profile_pairs(name)
        print(f"\n{name}: {stats.total_calls / COUNTED:.0f} Python calls per pair")
        rows = sorted(((counts[1] / COUNTED, f"{func[2]} ({func[0].rsplit('/', 1)[-1]}:{func[1]})")
                       for func, counts in stats.stats.items()), key=lambda row: (-row[0], row[1]))
        for calls, func in rows:
            if calls >= 1:
                print(f"  {calls:4.0f}  {func}")


def main():
    runner = pyperf.Runner()
    runner.metadata["description"] = __doc__.splitlines()[0]
    runner.argparser.add_argument("--calls", action="store_true", help="print the calls per function of one pair")
    args = runner.parse_args()
    if args.calls:
        print_calls()
        return
    call = runner.bench_time_func("plain call", plain_call)
    pairs = {name: runner.bench_time_func(name, pair_loop(name)) for name in PAIRS}
    if args.worker or call is None:  # a worker process: pyperf's parent prints the table
        return
    # the fastest of pyperf's values: load on the shared VM only ever adds time
    base = min(call.get_values())
    print("\n| measure | Python calls | fastest | ratio to a plain call | target |\n|---|---|---|---|---|")
    print(f"| plain call | 1 | {base * 1e9:.0f} ns | 1 | |")
    for name, bench in pairs.items():
        fastest = min(bench.get_values())
        print(f"| order-0 {name} | {calls_per_pair(name):.0f} | {fastest * 1e6:.2f} us | "
              f"{fastest / base:.0f} | <= 120 |")


if __name__ == "__main__":
    main()

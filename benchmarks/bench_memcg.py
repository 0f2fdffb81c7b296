"""The memcg charge path (patches 4 and 5): run ``.venv/bin/python benchmarks/bench_memcg.py``.

Three ways through ``try_charge_memcg`` for one page, each timed inside one ``Kernel.call`` (the
median of 5 runs, time.perf_counter), on the package as written:

* stock hit: this CPU's stock holds pages of the memcg, ``consume_stock`` takes one;
* stock miss: the stock is empty (a spinning charge takes a batch and refills the stock; the
  non-spinning one of patch 4 charges the one page to the counter);
* trylock failure: a non-spinning charge from a context that finds ``stock_lock`` already held on
  its CPU (the NMI case, here a re-entry inside the section, which the trylock cannot tell apart),
  so ``consume_stock`` gives up and the page counter is charged directly; its uncharge takes the
  same direct path through ``refill_stock``.

Every charge is uncharged again in the loop so the counters stay level; the uncharge is included.
"""
from __future__ import annotations

import statistics
import time

from tryalloc import Kernel
from tryalloc.include.gfp import __GFP_ACCOUNT, __GFP_NOMEMALLOC, __GFP_NOWARN, __GFP_ZERO, GFP_KERNEL
from tryalloc.kernel.locking import local_lock_irqsave, local_unlock_irqrestore
from tryalloc.mm import memcontrol as M

N = 20_000
NOSPIN = __GFP_NOWARN | __GFP_ZERO | __GFP_NOMEMALLOC | __GFP_ACCOUNT


def stock_hit(k, memcg):
    """Charge one page from a warm stock and give it back to the stock."""
    M.try_charge_memcg(memcg, GFP_KERNEL, 1)
    M.refill_stock(memcg, 1)
    t = time.perf_counter()
    for _ in range(N):
        M.try_charge_memcg(memcg, GFP_KERNEL, 1)
        M.refill_stock(memcg, 1)
    return (time.perf_counter() - t) / N


def stock_miss(gfp):
    def run(k, memcg):
        """Charge one page with the stock drained each time, then uncharge it (and the surplus)."""
        t = time.perf_counter()
        for _ in range(N // 4):
            M.try_charge_memcg(memcg, gfp, 1)
            M.refill_stock(memcg, 1)
            M.drain_local_stock()
        return (time.perf_counter() - t) / (N // 4)
    return run


def trylock_failure(k, memcg):
    """Charge and uncharge one page while this CPU is inside stock_lock: both take the direct path."""
    lock = k.memcg.stock_lock
    flags = local_lock_irqsave(lock)
    t = time.perf_counter()
    for _ in range(N):
        M.try_charge_memcg(memcg, NOSPIN, 1)
        M.refill_stock(memcg, 1)
    elapsed = (time.perf_counter() - t) / N
    local_unlock_irqrestore(lock, flags)
    return elapsed


def median_us(fn):
    runs = []
    for _ in range(5):
        k = Kernel(nr_cpus=1, pages_per_node=512)
        memcg = M.mem_cgroup_create(k, "bench")
        runs.append(k.call(fn, k, memcg) * 1e6)
    return statistics.median(runs)


def main() -> None:
    rows = [
        ("stock hit: GFP_KERNEL charge + refill of 1 page (µs/pair)", stock_hit),
        ("stock miss, GFP_KERNEL: batch charge + refill + drain (µs/round)", stock_miss(GFP_KERNEL)),
        ("stock miss, non-spinning: counter charge of 1 + refill + drain (µs/round)", stock_miss(NOSPIN)),
        ("trylock failure, non-spinning: direct charge + direct uncharge (µs/pair)", trylock_failure),
    ]
    print("| memcg charge path | median of 5 |\n|---|---|")
    for name, fn in rows:
        print(f"| {name} | {median_us(fn):.2f} |")


if __name__ == "__main__":
    main()

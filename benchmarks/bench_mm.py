"""Page allocator speed and memory: run ``.venv/bin/python benchmarks/bench_mm.py``.

Each figure is the median of 5 runs (time.perf_counter), measured inside one ``Kernel.call`` so the
model's allocator, not the per-call scenario setup, is timed.  Targets (from the project brief):
order-0 alloc+free through the pcp <= 2 us, buddy split+merge <= 5 us/op, memory map <= 40 B/page and
<= 2 s to create at 2**20 pages.
"""
from __future__ import annotations

import statistics
import sys
import time
import tracemalloc

from tryalloc import Kernel
from tryalloc.include.gfp import GFP_KERNEL
from tryalloc.kernel.locking import spin_lock_irqsave, spin_unlock_irqrestore
from tryalloc.mm import page_alloc as A
from tryalloc.mm.page import MemMap

N = 20_000


def pcp_fast_path(k):
    """order-0 alloc + free that hit this CPU's pcp list (a warm list, below high)."""
    pcp = k.zones[0].pcp(0)
    A.pageset_update(pcp, 1024, 1024, 32)
    alloc, free = A.alloc_pages, A.__free_pages
    free(alloc(GFP_KERNEL, 0), 0)
    t = time.perf_counter()
    for _ in range(N):
        free(alloc(GFP_KERNEL, 0), 0)
    return (time.perf_counter() - t) / N


def buddy_churn(k):
    """order-4 alloc + free (not pcp-cached): each splits a block and merges it back under zone->lock."""
    alloc, free = A.alloc_pages, A.__free_pages
    t = time.perf_counter()
    for _ in range(N // 4):
        free(alloc(GFP_KERNEL, 4), 4)
    return (time.perf_counter() - t) / (N // 4)


def max_order_split(k):
    """an order-0 page taken from a fresh max-order block and freed back (merges up max_order levels)."""
    z = k.zones[0]
    t = time.perf_counter()
    for _ in range(N // 4):
        flags = spin_lock_irqsave(z.lock)
        page = A.__rmqueue_smallest(z, 0, 1)
        A.__free_one_page(page, page.pfn, z, 0, 1, A.FPI_NONE)
        spin_unlock_irqrestore(z.lock, flags)
    return (time.perf_counter() - t) / (N // 4)


def median_us(fn):
    runs = []
    for _ in range(5):
        k = Kernel(memcg=False, pages_per_node=4096)
        runs.append(_timed(k, fn))
    return statistics.median(runs) * 1e6


def _timed(k, fn):
    """Run ``fn(k)`` as CPU 0's task with the event log off (``trace=False``)."""
    seconds = []
    k.spawn(0, lambda: seconds.append(fn(k)))
    k.run(trace=False)
    return seconds[0]


def memmap_cost():
    sizes, secs = [], []
    for _ in range(5):
        tracemalloc.start()
        t = time.perf_counter()
        mm = MemMap(1 << 20)
        secs.append(time.perf_counter() - t)
        sizes.append(tracemalloc.get_traced_memory()[1] / (1 << 20))
        tracemalloc.stop()
        del mm
    t_boot = []
    for _ in range(5):
        t = time.perf_counter()
        Kernel(memcg=False, pages_per_node=1 << 20)
        t_boot.append(time.perf_counter() - t)
    return statistics.median(sizes), statistics.median(secs), statistics.median(t_boot)


def main():
    print(f"command: {sys.executable} {' '.join(sys.argv)}")
    print(f"{'benchmark':<52}{'median of 5':>14}{'target':>10}")
    print(f"{'order-0 alloc+free, pcp fast path (us/pair)':<52}{median_us(pcp_fast_path):>14.2f}{'<= 2':>10}")
    print(f"{'order-4 alloc+free, buddy split+merge (us/op)':<52}{median_us(buddy_churn):>14.2f}{'<= 5':>10}")
    print(f"{'order-0 from a max-order block and back (us/op)':<52}{median_us(max_order_split):>14.2f}{'':>10}")
    per_page, create, boot = memmap_cost()
    print(f"{'memory map at 2**20 pages (bytes/page, tracemalloc)':<52}{per_page:>14.1f}{'<= 40':>10}")
    print(f"{'memory map creation at 2**20 pages (s)':<52}{create:>14.3f}{'<= 2':>10}")
    print(f"{'Kernel boot with 2**20 pages, allocator ready (s)':<52}{boot:>14.3f}{'':>10}")


if __name__ == "__main__":
    main()

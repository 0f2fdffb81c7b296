"""Randomized stress: many allocations and frees on several CPUs, interrupts at seeded random points.

Where a search covers every schedule of a few operations, stress covers a few schedules of very many:
each CPU's task draws operations from a seeded generator (allocate an order 0..3 block, charged to a
memcg or not; free one of the blocks it holds), and at every scheduling point the strategy may inject
a hard interrupt (``GFP_ATOMIC`` allocation and free) or, from patch 2 on, an NMI
(``try_alloc_pages`` and ``free_pages_nolock``).  Along the way a ledger of the pages handed out
catches a page given to two holders; at the end every task frees what it holds and the page
conservation invariant (:func:`~tryalloc.mm.debug.check_invariants`), memcg's books
(:func:`~tryalloc.mm.memcontrol.memcg_invariants`, with nothing left charged) and an empty ledger
must all hold.  ``benchmarks/bench_stress.py`` runs 10**6 operations; the tests run 10**4.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from functools import partial

from ..errors import InvariantError
from ..include.gfp import GFP_ATOMIC, GFP_KERNEL, GFP_KERNEL_ACCOUNT
from ..kernel.sched import IRQ, RUN, Strategy
from . import memcontrol, page_alloc
from .debug import check_invariants
from .page import page_to_pfn
from .scenarios import small_machine

MAX_HELD = 8  # blocks a task holds at most before it frees one


class Ledger:
    """Which pages are handed out: a page given to a second holder before it came back is a bug."""

    def __init__(self, nr_pages: int):
        self.out = bytearray(nr_pages)
        self.ops = 0

    def taken(self, page, order: int) -> None:
        self.ops += 1
        if page is None:
            return
        pfn, n = page_to_pfn(page), 1 << order
        if any(self.out[pfn:pfn + n]):
            raise InvariantError(f"pfn {pfn:#x} (order {order}) handed out while already held")
        self.out[pfn:pfn + n] = b"\x01" * n

    def returned(self, page, order: int) -> None:
        self.ops += 1
        pfn, n = page_to_pfn(page), 1 << order
        self.out[pfn:pfn + n] = bytes(n)


class Sprinkle(Strategy):
    """A seeded random schedule that injects an interrupt with probability ``rate`` at each point
    where one may arrive (a uniform choice would spend every budget in the first few points)."""

    def __init__(self, seed: int, rate: float):
        self.rng = random.Random(seed)
        self.rate = rate

    def choose(self, run, options):
        rng = self.rng
        irqs = [i for i, (kind, _) in enumerate(options) if kind == IRQ]
        if irqs and rng.random() < self.rate:
            return rng.choice(irqs)
        runs = [i for i, (kind, _) in enumerate(options) if kind == RUN]
        return rng.choice(runs)


@dataclass
class StressResult:
    ops: int
    seconds: float
    injections: int

    @property
    def ops_per_second(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0


def _task(ledger: Ledger, ops: int, seed: int) -> None:
    rng = random.Random(seed)
    held: list = []
    for _ in range(ops):
        if held and (len(held) >= MAX_HELD or rng.random() < 0.5):
            page, order = held.pop(rng.randrange(len(held)))
            ledger.returned(page, order)  # before the free: once freed, an interrupt may get it again
            page_alloc.__free_pages(page, order)
        else:
            order = rng.choice((0, 0, 0, 1, 2, 3))
            page = page_alloc.alloc_pages(rng.choice((GFP_KERNEL, GFP_KERNEL_ACCOUNT)), order)
            ledger.taken(page, order)
            if page is not None:
                held.append((page, order))
    for page, order in held:
        ledger.returned(page, order)
        page_alloc.__free_pages(page, order)


def _hardirq(ledger: Ledger) -> None:
    page = page_alloc.alloc_pages(GFP_ATOMIC, 0)
    ledger.taken(page, 0)
    if page is not None:
        ledger.returned(page, 0)
        page_alloc.__free_pages(page, 0)


# @since 2
def _nmi(ledger: Ledger) -> None:
    page = page_alloc.try_alloc_pages(page_alloc.NUMA_NO_NODE, 0)
    ledger.taken(page, 0)
    if page is not None:
        ledger.returned(page, 0)
        page_alloc.free_pages_nolock(page, 0)
# @end


def stress(ops: int = 10_000, nr_cpus: int = 4, seed: int = 0, pages: int = 1024, rate: float = 0.01) -> StressResult:
    """Run about ``ops`` operations (each an allocation or a free) split over ``nr_cpus`` tasks, with
    interrupts injected at a fraction ``rate`` of the points; raise on any broken invariant."""
    k = small_machine(nr_cpus, pages, max_order=5, memcg=True)
    memcg = memcontrol.mem_cgroup_create(k, "stress")
    ledger = Ledger(pages)
    seeds = random.Random(seed)
    per_cpu = ops // nr_cpus
    budget = max(1, int(per_cpu * rate))
    for cpu in range(nr_cpus):
        memcontrol.task_set_memcg(k, cpu, memcg)
        k.spawn(cpu, partial(_task, ledger, per_cpu, seeds.randrange(2**32)))
        k.on_interrupt(cpu, "hardirq", partial(_hardirq, ledger), budget=budget, name="hardirq_alloc")
        k.on_interrupt(cpu, "nmi", partial(_nmi, ledger), budget=budget, name="nmi_try_alloc")  # @since 2
    start = time.perf_counter()
    result = k.run(Sprinkle(seeds.randrange(2**32), rate), trace=False)
    seconds = time.perf_counter() - start
    check_after(k, ledger)
    return StressResult(ledger.ops, seconds, result.injections)


def check_after(kernel, ledger: Ledger) -> None:
    """Everything was given back: no page held, conservation holds, memcg's books balance."""
    if any(ledger.out):
        raise InvariantError(f"{sum(ledger.out)} pages still marked handed out after every holder freed them")
    check_invariants(kernel)
    memcontrol.memcg_invariants(kernel)
    charged = memcontrol._state(kernel).charged
    if charged:
        raise InvariantError(f"{len(charged)} pages still charged to a memcg after every page was freed")

"""Scenarios for searches, tests and benchmarks: small machines and the allocator's reference workload.

Every builder is a module-level function (or a :func:`functools.partial` of one), so a parallel
search can pickle it (:mod:`tryalloc.kernel.parallel`).  The reference scenario of the search's
figures is :func:`alloc_free`: CPUs allocating and freeing an order-0 page while an NMI on each calls
``try_alloc_pages`` and ``free_pages_nolock``; :func:`alloc_free_outcome` is what a run leaves.
"""
from __future__ import annotations

from ..include.gfp import GFP_KERNEL
from ..kernel.machine import Kernel
from . import page_alloc
from .page import page_to_pfn


def small_machine(nr_cpus: int = 2, pages_per_node: int = 256, max_order: int = 5, **options) -> Kernel:
    """A Kernel whose zone has ``pages_per_node`` pages in pageblocks of ``2**max_order`` pages, with
    memcg off and the watermarks set to zero so every page can be taken."""
    options.setdefault("pageblock_order", max_order)
    options.setdefault("memcg", False)
    k = Kernel(nr_cpus=nr_cpus, pages_per_node=pages_per_node, max_order=max_order, **options)
    page_alloc.setup_per_zone_wmarks(k, 0)
    return k


def alloc_then_free() -> int:
    """A task: allocate an order-0 page and free it; returns its pfn."""
    page = page_alloc.alloc_pages(GFP_KERNEL, 0)
    pfn = page_to_pfn(page)
    page_alloc.__free_pages(page, 0)
    return pfn


# @since 2
def nmi_try_alloc_then_free() -> None:
    """An NMI handler (a BPF program's part): ``try_alloc_pages``, and give the page back with
    ``free_pages_nolock`` (patches 1 and 2; before them the scenario has no NMI)."""
    page = page_alloc.try_alloc_pages(page_alloc.NUMA_NO_NODE, 0)
    if page is not None:
        page_alloc.free_pages_nolock(page, 0)
# @end


def alloc_free(nr_cpus: int = 2, nmis: int = 1, pages: int = 64, **options) -> Kernel:
    """``nr_cpus`` CPUs each running :func:`alloc_then_free`, with ``nmis`` NMIs that may arrive on
    each CPU running :func:`nmi_try_alloc_then_free`."""
    k = small_machine(nr_cpus, pages, max_order=3, **options)
    for cpu in range(nr_cpus):
        k.spawn(cpu, alloc_then_free)
        if nmis:  # @since 2
            k.on_interrupt(cpu, "nmi", nmi_try_alloc_then_free, budget=nmis)  # @since 2
    return k


def alloc_free_outcome(kernel: Kernel, result) -> tuple:
    """Where the pages ended up: each task's pfn, each CPU's pcp count, the zone's free pages and
    its deferred list (a JSON-friendly tuple)."""
    z = kernel.zones[0]
    #~ deferred = 0  # @until 2
    deferred = len(z.trylock_free_pages)  # @since 2
    return (tuple(sorted(result.results.items())), tuple(p.count for p in z.per_cpu_pageset),
            tuple(len(lst) for area in z.free_area for lst in area.free_list), deferred)

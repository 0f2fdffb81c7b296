"""Scenarios for searches, tests and benchmarks: small machines and the allocator's reference workload.

Every builder is a module-level function (or a :func:`functools.partial` of one), so a parallel
search can pickle it (:mod:`tryalloc.kernel.parallel`).  The reference scenario of the search's
figures is :func:`alloc_free`: CPUs allocating and freeing an order-0 page while an NMI on each calls
``try_alloc_pages`` and ``free_pages_nolock``; :func:`alloc_free_outcome` is what a run leaves.

A search that boots once takes the same scenarios in two parts: the machine's options
(:func:`small_options`, :func:`alloc_free_options`) and a setup run on the booted machine
(:func:`no_watermarks`, :func:`alloc_free_setup`), as ``explore(setup, boot=options)``.
"""
from __future__ import annotations

from ..include.gfp import GFP_KERNEL
from ..kernel.machine import Kernel
from . import page_alloc
from .page import page_to_pfn


def small_options(nr_cpus: int = 2, pages_per_node: int = 256, max_order: int = 5, **options) -> dict:
    """The :class:`~tryalloc.kernel.machine.Kernel` options of a zone of ``pages_per_node`` pages in
    pageblocks of ``2**max_order`` pages, with memcg off."""
    options.setdefault("pageblock_order", max_order)
    options.setdefault("memcg", False)
    return dict(nr_cpus=nr_cpus, pages_per_node=pages_per_node, max_order=max_order, **options)


def no_watermarks(k: Kernel) -> None:
    """Set the watermarks to zero, so every page can be taken (a step after boot, between runs)."""
    page_alloc.setup_per_zone_wmarks(k, 0)


def small_machine(nr_cpus: int = 2, pages_per_node: int = 256, max_order: int = 5, **options) -> Kernel:
    """A booted :func:`small_options` machine with :func:`no_watermarks`."""
    k = Kernel(**small_options(nr_cpus, pages_per_node, max_order, **options))
    no_watermarks(k)
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


def alloc_free_options(nr_cpus: int = 2, pages: int = 64, **options) -> dict:
    """The machine of :func:`alloc_free`."""
    return small_options(nr_cpus, pages, max_order=3, **options)


def alloc_free_setup(k: Kernel, nmis: int = 1) -> None:
    """On a booted machine: every CPU runs :func:`alloc_then_free`, with ``nmis`` NMIs that may
    arrive on each running :func:`nmi_try_alloc_then_free`."""
    no_watermarks(k)
    for cpu in range(len(k.cpus)):
        k.spawn(cpu, alloc_then_free)
        if nmis:  # @since 2
            k.on_interrupt(cpu, "nmi", nmi_try_alloc_then_free, budget=nmis)  # @since 2


def alloc_free(nr_cpus: int = 2, nmis: int = 1, pages: int = 64, **options) -> Kernel:
    """:func:`alloc_free_setup` on a freshly booted :func:`alloc_free_options` machine (the form a
    parallel search pickles)."""
    k = Kernel(**alloc_free_options(nr_cpus, pages, **options))
    alloc_free_setup(k, nmis)
    return k


def alloc_free_outcome(kernel: Kernel, result) -> tuple:
    """Where the pages ended up: each task's pfn, each CPU's pcp count, the zone's free pages and
    its deferred list (a JSON-friendly tuple)."""
    z = kernel.zones[0]
    #~ deferred = 0  # @until 2
    deferred = len(z.trylock_free_pages)  # @since 2
    return (tuple(sorted(result.results.items())), tuple(p.count for p in z.per_cpu_pageset),
            tuple(len(lst) for area in z.free_area for lst in area.free_list), deferred)

"""BPF maps and their memcg-accounted pages (``kernel/bpf/syscall.c``), as of v6.13.

A map remembers the memcg of whoever created it (``bpf_map_save_memcg``: it keeps that memcg's objcg,
so if the memcg is later removed the map's charges go to the parent, as the objcg is reparented).
:func:`bpf_map_alloc_pages` charges every page it allocates to that memcg by making it the active
memcg around the allocations (``set_active_memcg``).  Patch 6 of the series (v6 6/6, mainline
c9eb8102e21e, unchanged in 6.15) drops its ``gfp`` argument: :func:`__bpf_alloc_page` picks the
sleeping allocator where :func:`can_alloc_pages` says the context may sleep and ``try_alloc_pages``
everywhere else, and a failed call gives its pages back with ``free_pages_nolock`` (R6.1-R6.4).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidArgumentError

#~ from ..include.gfp import __GFP_ACCOUNT, check_gfp  # @until 6
from ..include.gfp import __GFP_ACCOUNT, __GFP_NOWARN, __GFP_ZERO, GFP_KERNEL  # @since 6
from ..kernel.preempt import irqs_disabled, preempt_count  # @since 6
from ..kernel.sched import running
from ..mm.memcontrol import ENOMEM, __get_obj_cgroup_from_memcg, memcg_check_usable, set_active_memcg

#~ from ..mm.page_alloc import NUMA_NO_NODE, __free_page, alloc_pages_node  # @until 6
# @since 6 @until 6.15
#~ from ..mm.page_alloc import NUMA_NO_NODE, alloc_pages_node, free_pages_nolock, try_alloc_pages
# @end
# @since 6.15
from ..mm.page_alloc import NUMA_NO_NODE, alloc_pages_node, alloc_pages_nolock, free_pages_nolock, try_alloc_pages
from ..series.mutants import fixed

# @end

#: The map types the model has (``enum bpf_map_type``, by name).
BPF_MAP_TYPE_ARRAY = "array"
BPF_MAP_TYPE_ARENA = "arena"


@dataclass(eq=False)
class bpf_map:
    """``struct bpf_map``: its type, flags and size, and the objcg it charges (``None``: root)."""

    map_type: str
    map_flags: int
    max_entries: int
    objcg: object
    kernel: object

    def __repr__(self) -> str:
        return f"<bpf_map {self.map_type} max_entries={self.max_entries}>"


def bpf_map_init_from_attr(kernel, map_type: str, max_entries: int, map_flags: int = 0, memcg=None) -> bpf_map:
    """A map created by a task in ``memcg`` (``None``: the root memcg, nothing charged).

    ``bpf_map_init_from_attr`` + ``bpf_map_save_memcg``; the kernel takes the creating task's memcg,
    the model takes it as an argument.  An offline memcg or one of another machine, or a bad size,
    raises :class:`~tryalloc.errors.InvalidArgumentError`.
    """
    if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 0:
        raise InvalidArgumentError(f"bpf map: max_entries must be an int >= 0, got {max_entries!r}")
    if isinstance(map_flags, bool) or not isinstance(map_flags, int) or map_flags < 0:
        raise InvalidArgumentError(f"bpf map: map_flags must be an int >= 0, got {map_flags!r}")
    objcg = None
    if memcg is not None:
        memcg_check_usable(kernel, memcg, "bpf_map_init_from_attr")
        objcg = __get_obj_cgroup_from_memcg(memcg)
    return bpf_map(map_type, map_flags, max_entries, objcg, kernel)


def bpf_map_get_memcg(map: bpf_map):
    """The memcg the map charges: its objcg's memcg now, or root (``bpf_map_get_memcg``)."""
    if map.objcg is not None:
        return map.objcg.memcg
    return map.kernel.memcg.root_mem_cgroup


# @since 6
def can_alloc_pages() -> bool:
    """May this context use the sleeping allocator (``can_alloc_pages``, patch 6)?

    True only with a zero ``preempt_count()`` (task context, no softirq, hard-IRQ or NMI, preemption
    and bottom halves enabled), interrupts on and ``CONFIG_PREEMPT_RT`` off (R6.1, R6.2).  The model
    always has ``CONFIG_PREEMPT_COUNT``; a kernel without it reads 0 even under a spinlock, where the
    answer would be wrong (the caveat of R6.1).
    """
    return preempt_count() == 0 and not irqs_disabled() and not running().kernel.config.preempt_rt


def __bpf_alloc_page(nid: int):
    """One zeroed, memcg-accounted, order-0 page that warns on no failure (``__bpf_alloc_page``,
    R6.3): ``try_alloc_pages`` where :func:`can_alloc_pages` is false, else ``alloc_pages_node`` with
    ``GFP_KERNEL | __GFP_ZERO | __GFP_ACCOUNT | __GFP_NOWARN``.  ``try_alloc_pages`` zeroes, adds
    ``__GFP_NOWARN`` and charges the active memcg itself (patches 1 and 5).  At level 6.15 the call
    follows the machine's release: ``alloc_pages_nolock(nid, 0)`` from 6.16, and from 6.18
    ``alloc_pages_nolock(__GFP_ACCOUNT, nid, 0)``, since only that flag gets the page charged (S9.9.3)."""
    if not can_alloc_pages():
        #~ return try_alloc_pages(nid, 0)  # @until 6.15
        # @since 6.15
        if not fixed("nolock-rename"):
            return try_alloc_pages(nid, 0)
        if not fixed("nolock-gfp-argument"):
            return alloc_pages_nolock(nid, 0)
        return alloc_pages_nolock(__GFP_ACCOUNT, nid, 0)
        # @end
    return alloc_pages_node(nid, GFP_KERNEL | __GFP_ZERO | __GFP_ACCOUNT | __GFP_NOWARN, 0)
# @end


#~ def bpf_map_alloc_pages(map: bpf_map, gfp: int, nid: int, nr_pages: int, pages: list) -> int:  # @until 6
def bpf_map_alloc_pages(map: bpf_map, nid: int, nr_pages: int, pages: list) -> int:  # @since 6
    """Allocate ``nr_pages`` order-0 pages charged to the map's memcg into ``pages[0:nr_pages]``.

    ``kernel/bpf/syscall.c: bpf_map_alloc_pages``.  With the map's memcg active, each page comes
    from the allocator; at the first failure the pages allocated so far are freed and the result is
    ``-ENOMEM`` (all or nothing).  Returns 0.  Before patch 6 the caller passes ``gfp`` and each page
    is ``alloc_pages_node(nid, gfp | __GFP_ACCOUNT, 0)``, freed with ``__free_page``; from patch 6
    each page is :func:`__bpf_alloc_page` and a failure frees with ``free_pages_nolock`` (R6.4), so
    the call is safe in any context.  ``pages`` is the caller's array: a list with room for
    ``nr_pages``; on failure the model resets the slots it wrote to ``None`` (the kernel leaves the
    freed pointers there).  Bad arguments raise :class:`~tryalloc.errors.InvalidArgumentError` before
    anything is allocated.
    """
    #~ check_gfp(gfp)  # @until 6
    kernel = running().kernel
    if map.kernel is not kernel:
        raise InvalidArgumentError(f"bpf_map_alloc_pages: {map!r} belongs to another machine")
    if isinstance(nr_pages, bool) or not isinstance(nr_pages, int) or nr_pages < 0:
        raise InvalidArgumentError(f"bpf_map_alloc_pages: nr_pages must be an int >= 0, got {nr_pages!r}")
    if not isinstance(pages, list) or len(pages) < nr_pages:
        raise InvalidArgumentError(f"bpf_map_alloc_pages: pages must be a list with room for {nr_pages} pages")
    if nid != NUMA_NO_NODE and (isinstance(nid, bool) or not isinstance(nid, int)
                                or not 0 <= nid < kernel.config.nr_nodes):
        raise InvalidArgumentError(f"bpf_map_alloc_pages: no node {nid!r} (NUMA_NO_NODE or 0.."
                                   f"{kernel.config.nr_nodes - 1})")
    memcg = bpf_map_get_memcg(map)
    old_memcg = set_active_memcg(memcg)
    ret = 0
    for i in range(nr_pages):
        #~ pg = alloc_pages_node(nid, gfp | __GFP_ACCOUNT, 0)  # @until 6
        pg = __bpf_alloc_page(nid)  # @since 6
        if pg is not None:
            pages[i] = pg
            continue
        for j in range(i):
            #~ __free_page(pages[j])  # @until 6
            free_pages_nolock(pages[j], 0)  # @since 6
            pages[j] = None
        ret = -ENOMEM
        break
    set_active_memcg(old_memcg)
    return ret

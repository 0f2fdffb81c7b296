"""The buddy page allocator as of about v6.13 (``mm/page_alloc.c``): level 0 of the series.

Allocation: ``alloc_pages`` -> ``__alloc_pages`` -> ``prepare_alloc_pages`` -> ``get_page_from_freelist``
(walks the zonelist, checks the watermark) -> ``rmqueue`` -> ``rmqueue_pcplist`` (pcp trylock; refills
an empty list with ``rmqueue_bulk`` under ``zone->lock``) or ``rmqueue_buddy`` (``zone->lock``) ->
``__rmqueue_smallest``/``expand``.  A failed fast path enters the slow path (kswapd wake, a retry at the
min watermark with reserves, a drain of every pcp, ``warn_alloc``).

Free: ``__free_pages`` (with the non-compound tail rule, spec 1.2) -> ``free_unref_page`` ->
``free_pages_prepare`` -> ``free_unref_page_commit`` onto the pcp (bulk free past ``high`` through
``free_pcppages_bulk``), or ``free_one_page`` -> ``split_large_buddy`` -> ``__free_one_page``.

At this level every ``zone->lock`` acquisition is an unconditional ``spin_lock_irqsave``, and the
tracepoints ``mm_page_alloc_zone_locked`` and ``mm_page_pcpu_drain`` fire while it is held: a probe
there that allocates spins on the lock its own CPU holds.  That is the deadlock the series removes.

Model choices (each said again where it applies): bad input (an order out of range, an unknown node)
raises :class:`~tryalloc.errors.InvalidArgumentError` where the kernel WARNs and returns NULL; a bad
free raises :class:`~tryalloc.errors.BadPageError` (or, for a compound page freed with another order,
the ``VM_BUG_ON_PAGE`` report :class:`~tryalloc.errors.VmBugError`) before any state changes; no reclaim, compaction
or OOM (the slow path's effects on locks and contexts only); pcp ``high`` is fixed.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from ..errors import InvalidArgumentError
from ..include.gfp import (
    __GFP_ACCOUNT,
    __GFP_COMP,
    __GFP_DIRECT_RECLAIM,
    __GFP_HIGH,
    __GFP_HIGHMEM,
    __GFP_KSWAPD_RECLAIM,
    __GFP_NOFAIL,
    __GFP_NOMEMALLOC,
    __GFP_NOWARN,
    __GFP_THISNODE,
    __GFP_ZERO,
    check_gfp,
    format_gfp,
    gfp_migratetype,
    gfpflags_allow_blocking,
)
from ..kernel.locking import (
    spin_lock,
    spin_lock_irqsave,
    spin_trylock,
    spin_trylock_irqsave,
    spin_unlock,
    spin_unlock_irqrestore,
)
from ..kernel.machine import initcall
from ..kernel.percpu import per_cpu_ptr, this_cpu_ptr
from ..kernel.preempt import (
    in_hardirq,
    in_nmi,
    local_irq_restore,
    local_irq_save,
    might_sleep,
    migrate_disable,
    migrate_enable,
    preempt_disable,
    preempt_enable,
)
from ..kernel.sched import event, running
from ..lib.debugobjects import debug_check_no_obj_freed
from ..lib.llist import llist_add, llist_del_all, llist_empty, llist_for_each
from ..trace import trace_mm_page_alloc, trace_mm_page_alloc_zone_locked, trace_mm_page_free, trace_mm_page_pcpu_drain
from . import memcontrol, page_owner
from .mmzone import (
    MIGRATE_HIGHATOMIC,
    MIGRATE_ISOLATE,
    MIGRATE_MOVABLE,
    MIGRATE_PCPTYPES,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
    NR_FREE_PAGES,
    NR_LOWORDER_PCP_LISTS,
    PAGE_ALLOC_COSTLY_ORDER,
    WMARK_HIGH,
    WMARK_LOW,
    WMARK_MIN,
    migratetype_is_mergeable,
    zone,
)
from .page import (
    CONTENT_POISON,
    CONTENT_ZERO,
    Page,
    PageBuddy,
    PageHead,
    PageTail,
    PG_buddy,
    bad_page,
    clear_compound_page,
    compound_order,
    page_ref_count,
    page_zone,
    prep_compound_page,
    put_page_testzero,
    set_page_private,
    set_page_refcounted,
    vm_bug_on_page,
)

# free-page-internal flags
FPI_NONE = 0
FPI_SKIP_REPORT_NOTIFY = 1 << 0
FPI_TO_TAIL = 1 << 1
FPI_TRYLOCK = 1 << 2  # @since 2  free without spinning: defer to a llist when zone->lock is busy

# allocator-internal flags (mm/internal.h)
ALLOC_WMARK_MIN = WMARK_MIN
ALLOC_WMARK_LOW = WMARK_LOW
ALLOC_WMARK_HIGH = WMARK_HIGH
ALLOC_NO_WATERMARKS = 0x04
ALLOC_WMARK_MASK = ALLOC_NO_WATERMARKS - 1
ALLOC_OOM = 0x08
ALLOC_NON_BLOCK = 0x10
ALLOC_MIN_RESERVE = 0x20
ALLOC_CPUSET = 0x40
ALLOC_CMA = 0x80
ALLOC_NOFRAGMENT = 0x100
ALLOC_HIGHATOMIC = 0x200
ALLOC_TRYLOCK = 0x400  # @since 1  zone->lock may only be trylocked (spec 2.3)
ALLOC_KSWAPD = 0x800
ALLOC_RESERVES = ALLOC_NON_BLOCK | ALLOC_MIN_RESERVE | ALLOC_HIGHATOMIC | ALLOC_OOM

NUMA_NO_NODE = -1
PGALLOC, PGFREE = "PGALLOC", "PGFREE"

#: ``fallbacks[]``: which migratetypes an allocation may steal from, in order.
_FALLBACKS = {MIGRATE_UNMOVABLE: (MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE),
              MIGRATE_MOVABLE: (MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE),
              MIGRATE_RECLAIMABLE: (MIGRATE_UNMOVABLE, MIGRATE_MOVABLE)}


# --- boot ------------------------------------------------------------------------------------------
@dataclass
class fault_attr:
    """``fail_page_alloc``'s settings (``mm/fail_page_alloc.c``, ``lib/fault-inject.c``).

    ``probability`` in percent, ``times`` failures left (-1: unlimited), ``seed`` of the model's own
    generator so runs stay reproducible.  The ``ignore_*`` and ``min_order`` defaults are the kernel's.
    """

    probability: int = 0
    times: int = -1
    ignore_gfp_reclaim: bool = True
    ignore_gfp_highmem: bool = True
    min_order: int = 1
    seed: int = 0
    rng: random.Random = field(default=None, repr=False)

    def __post_init__(self):
        self.rng = random.Random(self.seed)


def thp_order(config) -> int:
    """``HPAGE_PMD_ORDER``: 9 on x86-64; the model uses ``min(9, max_order)``."""
    return min(9, config.max_order)


def cpu_to_node(kernel, cpu: int) -> int:
    """CPUs are spread over the nodes in order (the config's documented layout)."""
    return cpu * kernel.config.nr_nodes // kernel.config.nr_cpus


@initcall
def page_alloc_init(kernel) -> None:
    """Boot: build each node's zone, hand all its pages to the buddy allocator (as ``memblock_free_all``
    does, in max-order blocks added at the tail), set watermarks and pcp sizes, and the zonelists."""
    cfg = kernel.config
    mm = kernel.mem_map
    nr_lists = NR_LOWORDER_PCP_LISTS + (1 if cfg.thp else 0)
    kernel.zones = [zone(kernel, nid, nid * cfg.pages_per_node, cfg.pages_per_node, nr_lists)
                    for nid in range(cfg.nr_nodes)]
    mm.zones = kernel.zones
    kernel.vm_events = {PGALLOC: 0, PGFREE: 0}
    kernel.fail_page_alloc = fault_attr()
    # boot-time states the allocator consults: memory not yet accepted (CONFIG_UNACCEPTED_MEMORY's
    # zones_with_unaccepted_pages key) and struct pages still being initialised (deferred init);
    # the model's zones are fully accepted and initialised unless a scenario says otherwise
    kernel.unaccepted_memory = False
    kernel.deferred_pages = False
    # node_zonelists[ZONELIST_FALLBACK]: the local node first, then the others by distance
    kernel.zonelists = [[kernel.zones[(nid + i) % cfg.nr_nodes] for i in range(cfg.nr_nodes)]
                        for nid in range(cfg.nr_nodes)]
    for z in kernel.zones:
        pfn, end = z.zone_start_pfn, z.zone_end_pfn
        while pfn < end:
            order = cfg.max_order
            while pfn & ((1 << order) - 1) or pfn + (1 << order) > end:
                order -= 1
            mm._refcount[pfn] = 0
            _add_to_free_list(z, Page(pfn, mm), order, get_pfnblock_migratetype(Page(pfn, mm), pfn), True)
            _set_buddy_order(mm, pfn, order)
            z.vm_stat[NR_FREE_PAGES] += 1 << order
            pfn += 1 << order
    setup_per_zone_wmarks(kernel)


def setup_per_zone_wmarks(kernel, min_free_kbytes: int | None = None) -> None:
    """Set each zone's min/low/high watermarks and its pcp ``batch``/``high`` (``vm.min_free_kbytes``).

    The default follows ``calculate_min_free_kbytes`` (``sqrt(lowmem_kbytes * 16)``) without its 128 kB
    floor, which would swallow half of the model's 64-page zones; ``low``/``high`` add
    ``max(min/4, managed * watermark_scale_factor / 10000)`` once and twice.  ``batch`` follows
    ``zone_batchsize``; ``high`` is ``max(4 * batch, low / nr_cpus)``, the model's fixed reading of
    ``zone_highsize``.
    """
    total = sum(z.managed_pages for z in kernel.zones)
    if min_free_kbytes is None:
        min_free_kbytes = int(math.isqrt(total * 4 * 16))
    if isinstance(min_free_kbytes, bool) or not isinstance(min_free_kbytes, int) or min_free_kbytes < 0:
        raise InvalidArgumentError(f"min_free_kbytes must be an int >= 0, got {min_free_kbytes!r}")
    pages_min = min_free_kbytes // 4
    for z in kernel.zones:
        tmp = pages_min * z.managed_pages // total
        gap = max(tmp // 4, z.managed_pages * 10 // 10000)
        z._watermark = [tmp, tmp + gap, tmp + 2 * gap]
        batch = min(z.managed_pages >> 10, 256) // 4
        batch = max(1, (1 << ((batch + batch // 2).bit_length() - 1)) - 1) if batch else 1
        high = max(4 * batch, z.low_wmark_pages() // kernel.config.nr_cpus)
        for pcp in z.per_cpu_pageset:
            pcp.batch, pcp.high = batch, high


# --- pageblocks and free lists -------------------------------------------------------------------------
def get_pfnblock_migratetype(page: Page, pfn: int) -> int:
    z = page.mem_map.zones[page.pfn // page.mem_map.pages_per_node]
    return z.pageblock_flags[(pfn - z.zone_start_pfn) >> z.pageblock_order]


def set_pageblock_migratetype(page: Page, migratetype: int) -> None:
    z = page_zone(page)
    z.pageblock_flags[(page.pfn - z.zone_start_pfn) >> z.pageblock_order] = migratetype


def _set_buddy_order(mm, pfn: int, order: int) -> None:
    mm.private[pfn] = order
    mm.flags[pfn] |= 1 << PG_buddy


def _add_to_free_list(z: zone, page: Page, order: int, mt: int, tail: bool) -> None:
    """``__add_to_free_list``: head unless ``tail`` (the model's OrderedDict keeps list order)."""
    area = z.free_area[order]
    lst = area.free_list[mt]
    lst[page.pfn] = None
    if not tail:
        lst.move_to_end(page.pfn, last=False)
    area.nr_free += 1


def _del_page_from_free_list(z: zone, page: Page, order: int, mt: int) -> None:
    """``__del_page_from_free_list``: unlink and clear PG_buddy and the stored order."""
    area = z.free_area[order]
    del area.free_list[mt][page.pfn]
    mm = page.mem_map
    mm.flags[page.pfn] &= ~(1 << PG_buddy)
    mm.private[page.pfn] = 0
    area.nr_free -= 1


def account_freepages(z: zone, nr_pages: int, migratetype: int) -> None:
    """``NR_FREE_PAGES`` moves only here, under ``zone->lock`` (isolated blocks are not counted)."""
    if migratetype != MIGRATE_ISOLATE:
        z.vm_stat[NR_FREE_PAGES] += nr_pages


# --- taking pages out of buddy ------------------------------------------------------------------------
def expand(z: zone, page: Page, low: int, high: int, migratetype: int) -> int:
    """Split a block of order ``high`` down to ``low``: give back the upper halves, largest first.
    Returns the pages given back."""
    size = 1 << high
    nr_added = 0
    mm = page.mem_map
    while high > low:
        high -= 1
        size >>= 1
        half = Page(page.pfn + size, mm)
        _add_to_free_list(z, half, high, migratetype, False)
        _set_buddy_order(mm, half.pfn, high)
        nr_added += size
    return nr_added


def page_del_and_expand(z: zone, page: Page, low: int, high: int, migratetype: int) -> None:
    _del_page_from_free_list(z, page, high, migratetype)
    nr_pages = (1 << high) - expand(z, page, low, high, migratetype)
    account_freepages(z, -nr_pages, migratetype)


def __rmqueue_smallest(z: zone, order: int, migratetype: int) -> Page | None:
    """Take the smallest free block of ``migratetype`` of at least ``order`` and split it down.
    Fires ``mm_page_alloc_zone_locked`` with ``zone->lock`` held."""
    mm = running().kernel.mem_map
    for current_order in range(order, len(z.free_area)):
        lst = z.free_area[current_order].free_list[migratetype]
        if not lst:
            continue
        page = Page(next(iter(lst)), mm)
        page_del_and_expand(z, page, order, current_order, migratetype)
        trace_mm_page_alloc_zone_locked(page=page, order=order, migratetype=migratetype,
                                        percpu_refill=pcp_allowed_order(order) and migratetype < MIGRATE_PCPTYPES)
        return page
    return None


def __rmqueue_fallback(z: zone, order: int, start_migratetype: int, alloc_flags: int) -> Page | None:
    """Steal from another migratetype, largest block first (``__rmqueue_fallback``).

    The model's simplification of the stealing heuristics: a block of at least a pageblock is
    claimed whole (its pageblocks change type and it moves to ``start_migratetype``); a smaller one
    is taken as it is.  With ``ALLOC_NOFRAGMENT`` only whole pageblocks may be stolen.
    """
    cfg = running().kernel.config
    min_order = cfg.pageblock_order if alloc_flags & ALLOC_NOFRAGMENT else order
    mm = running().kernel.mem_map
    for current_order in range(len(z.free_area) - 1, min_order - 1, -1):
        for fallback_mt in _FALLBACKS[start_migratetype]:
            lst = z.free_area[current_order].free_list[fallback_mt]
            if not lst:
                continue
            page = Page(next(iter(lst)), mm)
            if current_order >= cfg.pageblock_order:
                _del_page_from_free_list(z, page, current_order, fallback_mt)
                for pb in range(page.pfn, page.pfn + (1 << current_order), 1 << cfg.pageblock_order):
                    set_pageblock_migratetype(Page(pb, mm), start_migratetype)
                _add_to_free_list(z, page, current_order, start_migratetype, False)
                _set_buddy_order(mm, page.pfn, current_order)
                return __rmqueue_smallest(z, order, start_migratetype)
            page_del_and_expand(z, page, order, current_order, fallback_mt)
            trace_mm_page_alloc_zone_locked(page=page, order=order, migratetype=fallback_mt, percpu_refill=False)
            return page
    return None


def __rmqueue(z: zone, order: int, migratetype: int, alloc_flags: int) -> Page | None:
    page = __rmqueue_smallest(z, order, migratetype)
    if page is None:
        page = __rmqueue_fallback(z, order, migratetype, alloc_flags)
    return page


def rmqueue_bulk(z: zone, order: int, count: int, lst, migratetype: int, alloc_flags: int) -> int:
    """Move up to ``count`` blocks into a pcp list under ``zone->lock``.

    Level 0 takes the lock unconditionally.  Patch 1 (R1.14, R1.16): a request with ``ALLOC_TRYLOCK``
    that cannot trylock it moves nothing; as posted, ordinary callers first tried and then spun, and
    6.15 (c5bb27e2da3a, S9.7.1) dropped that first try for them.
    """
    # @until 1
    #~ flags = spin_lock_irqsave(z.lock)
    # @end
    # @since 1 @until 6.15
    #~ flags = spin_trylock_irqsave(z.lock)
    #~ if flags is None:
    #~     if alloc_flags & ALLOC_TRYLOCK:
    #~         return 0
    #~     flags = spin_lock_irqsave(z.lock)
    # @end
    # @since 6.15
    if alloc_flags & ALLOC_TRYLOCK:
        flags = spin_trylock_irqsave(z.lock)
        if flags is None:
            return 0
    else:
        flags = spin_lock_irqsave(z.lock)
    # @end
    i = 0
    while i < count:
        page = __rmqueue(z, order, migratetype, alloc_flags)
        if page is None:
            break
        lst.append(page.pfn)  # list_add_tail: the pcp hands them out in this order
        i += 1
    spin_unlock_irqrestore(z.lock, flags)
    return i


def rmqueue_buddy(preferred_zone: zone, z: zone, order: int, alloc_flags: int, migratetype: int) -> Page | None:
    """Take a block straight from buddy under ``zone->lock`` (orders the pcp does not cache, or when
    the pcp attempt failed).  With ``ALLOC_TRYLOCK`` a busy lock means ``None`` (patch 1, R1.14)."""
    # @until 1
    #~ flags = spin_lock_irqsave(z.lock)
    # @end
    # @since 1 @until 6.15
    #~ flags = spin_trylock_irqsave(z.lock)
    #~ if flags is None:
    #~     if alloc_flags & ALLOC_TRYLOCK:
    #~         return None
    #~     flags = spin_lock_irqsave(z.lock)
    # @end
    # @since 6.15
    if alloc_flags & ALLOC_TRYLOCK:
        flags = spin_trylock_irqsave(z.lock)
        if flags is None:
            return None
    else:
        flags = spin_lock_irqsave(z.lock)
    # @end
    page = None
    if alloc_flags & ALLOC_HIGHATOMIC:
        page = __rmqueue_smallest(z, order, MIGRATE_HIGHATOMIC)
    if page is None:
        page = __rmqueue(z, order, migratetype, alloc_flags)
    spin_unlock_irqrestore(z.lock, flags)
    if page is not None:
        running().kernel.vm_events[PGALLOC] += 1 << order
    return page


# --- per-CPU pagesets -----------------------------------------------------------------------------------
def pcp_allowed_order(order: int) -> bool:
    """Orders the pcp caches: up to ``PAGE_ALLOC_COSTLY_ORDER``, and the THP order with THP (spec 1.1)."""
    if order <= PAGE_ALLOC_COSTLY_ORDER:
        return True
    cfg = running().kernel.config
    return cfg.thp and order == thp_order(cfg)


def order_to_pindex(migratetype: int, order: int) -> int:
    if order > PAGE_ALLOC_COSTLY_ORDER:
        return NR_LOWORDER_PCP_LISTS
    return MIGRATE_PCPTYPES * order + migratetype


def pindex_to_order(pindex: int) -> int:
    if pindex == NR_LOWORDER_PCP_LISTS:
        return thp_order(running().kernel.config)
    return pindex // MIGRATE_PCPTYPES


def pcp_trylock_prepare():
    """On a uniprocessor !RT kernel ``spin_trylock`` always succeeds, so interrupts go off instead
    (``pcp_trylock_prepare``); a no-op (``None``) on SMP or RT.  NMIs still arrive (spec 9.11)."""
    cfg = running().kernel.config
    if not cfg.smp and not cfg.preempt_rt:
        return local_irq_save()
    return None


def pcp_trylock_finish(flags) -> None:
    if flags is not None:
        local_irq_restore(flags)


def _pcpu_task_pin() -> None:
    if running().kernel.config.preempt_rt:
        migrate_disable()
    else:
        preempt_disable()


def _pcpu_task_unpin() -> None:
    if running().kernel.config.preempt_rt:
        migrate_enable()
    else:
        preempt_enable()


def pcp_spin_trylock(pageset):
    """Pin the task to this CPU, trylock its pcp and return it; unpin and return ``None`` if busy
    (``pcpu_spin_trylock``).  Interrupts stay enabled while the lock is held."""
    _pcpu_task_pin()
    pcp = this_cpu_ptr(pageset)
    if not spin_trylock(pcp.lock):
        _pcpu_task_unpin()
        return None
    return pcp


def pcp_spin_unlock(pcp) -> None:
    spin_unlock(pcp.lock)
    _pcpu_task_unpin()


def nr_pcp_alloc(pcp, order: int) -> int:
    """Blocks to refill an empty list with: ``batch`` for order 0, ``max(batch >> order, 2)`` above
    (the model leaves out ``nr_pcp_alloc``'s scaling by recent frees)."""
    return pcp.batch if order == 0 else max(pcp.batch >> order, 2)


def __rmqueue_pcplist(z: zone, order: int, migratetype: int, alloc_flags: int, pcp, lst) -> Page | None:
    if not lst:
        alloced = rmqueue_bulk(z, order, nr_pcp_alloc(pcp, order), lst, migratetype, alloc_flags)
        pcp.count += alloced << order
        if not alloced:
            return None
    page = Page(lst.popleft(), running().kernel.mem_map)
    pcp.count -= 1 << order
    return page


def rmqueue_pcplist(preferred_zone: zone, z: zone, order: int, migratetype: int, alloc_flags: int) -> Page | None:
    """The fast path: trylock this CPU's pcp, take the first page of the (order, migratetype) list,
    refilling it by ``batch`` from buddy when empty.  ``None`` if the pcp is busy or buddy is empty."""
    flags = pcp_trylock_prepare()
    pcp = pcp_spin_trylock(z.per_cpu_pageset)
    if pcp is None:
        pcp_trylock_finish(flags)
        return None
    pcp.free_count >>= 1
    page = __rmqueue_pcplist(z, order, migratetype, alloc_flags, pcp,
                             pcp.lists[order_to_pindex(migratetype, order)])
    pcp_spin_unlock(pcp)
    pcp_trylock_finish(flags)
    if page is not None:
        running().kernel.vm_events[PGALLOC] += 1 << order
    return page


def free_pcppages_bulk(z: zone, count: int, pcp, pindex: int) -> None:
    """Return ``count`` pages from ``pcp`` to buddy, taking lists round-robin from their tails, under
    an unconditional ``zone->lock``; fires ``mm_page_pcpu_drain`` with it held."""
    count = min(pcp.count, count)
    mm = running().kernel.mem_map
    flags = spin_lock_irqsave(z.lock)
    nr_lists = len(pcp.lists)
    while count > 0:
        while True:  # the next non-empty list after the last one drained
            pindex = (pindex + 1) % nr_lists
            if pcp.lists[pindex]:
                break
        lst = pcp.lists[pindex]
        order = pindex_to_order(pindex)
        while count > 0 and lst:
            page = Page(lst.pop(), mm)
            mt = get_pfnblock_migratetype(page, page.pfn)
            count -= 1 << order
            pcp.count -= 1 << order
            __free_one_page(page, page.pfn, z, order, mt, FPI_NONE)
            trace_mm_page_pcpu_drain(page=page, order=order, migratetype=mt)
    spin_unlock_irqrestore(z.lock, flags)


def nr_pcp_free(pcp, batch: int, high: int) -> int:
    """How many pages a free past ``high`` returns: ``batch``, or enough to get below ``high``."""
    return min(pcp.count, max(batch, pcp.count - high + 1))


#~ def free_unref_page_commit(z: zone, pcp, page: Page, migratetype: int, order: int) -> None:  # @until 2
def free_unref_page_commit(z: zone, pcp, page: Page, migratetype: int, order: int,  # @since 2
                           fpi_flags: int) -> None:  # @since 2
    """Put a freed page at the head of its pcp list; past ``high``, bulk-free to buddy.

    An ``FPI_TRYLOCK`` free stops after the list insertion: the bulk free would spin on
    ``zone->lock``, so ``pcp->count`` may stay above ``high`` until an ordinary free (patch 2, R2.4)."""
    pcp.count += 1 << order
    pindex = order_to_pindex(migratetype, order)
    pcp.lists[pindex].appendleft(page.pfn)
    running().kernel.vm_events[PGFREE] += 1 << order
    pcp.free_count += 1 << order
    # @since 2
    if fpi_flags & FPI_TRYLOCK:
        return
    # @end
    if pcp.count >= pcp.high:
        free_pcppages_bulk(z, nr_pcp_free(pcp, pcp.batch, pcp.high), pcp, pindex)


def drain_pages_zone(cpu: int, z: zone) -> None:
    """Empty CPU ``cpu``'s pcp of zone ``z`` (possibly another CPU's) with a blocking ``spin_lock``."""
    pcp = per_cpu_ptr(z.per_cpu_pageset, cpu)
    if pcp.count:
        spin_lock(pcp.lock)
        free_pcppages_bulk(z, pcp.count, pcp, 0)
        spin_unlock(pcp.lock)


def drain_local_pages(z: zone | None = None) -> None:
    """Drain this CPU's pcp of ``z`` (of every zone when ``None``)."""
    kernel = running().kernel
    cpu = running().cpu.id
    for each in [z] if z is not None else kernel.zones:
        drain_pages_zone(cpu, each)


def drain_all_pages(z: zone | None = None) -> None:
    """Drain every CPU's pcp, remotely from the calling CPU (as since v5.19)."""
    kernel = running().kernel
    for cpu in range(kernel.config.nr_cpus):
        for each in [z] if z is not None else kernel.zones:
            drain_pages_zone(cpu, each)


def rmqueue(preferred_zone: zone, z: zone, order: int, gfp: int, alloc_flags: int, migratetype: int) -> Page | None:
    """pcp first for pcp-allowed orders, then buddy.  (Kswapd wake-up on a boosted watermark does not
    arise: the model never boosts watermarks.)"""
    if pcp_allowed_order(order):
        page = rmqueue_pcplist(preferred_zone, z, order, migratetype, alloc_flags)
        if page is not None:
            return page
    return rmqueue_buddy(preferred_zone, z, order, alloc_flags, migratetype)


# --- the allocation paths ---------------------------------------------------------------------------------
def __zone_watermark_ok(z: zone, order: int, mark: int, alloc_flags: int, free_pages: int) -> bool:
    """Would ``free_pages`` minus the allocation stay above ``mark`` (lowered for reserves), and is
    there a free block of a usable type of at least ``order``?"""
    free_pages -= (1 << order) - 1
    min_ = mark
    if alloc_flags & ALLOC_RESERVES:
        if alloc_flags & ALLOC_MIN_RESERVE:
            min_ -= min_ // 2
            if alloc_flags & ALLOC_NON_BLOCK:
                min_ -= min_ // 4
        if alloc_flags & ALLOC_OOM:
            min_ -= min_ // 2
    if free_pages <= min_ + z.lowmem_reserve:
        return False
    if not order:
        return True
    for area in z.free_area[order:]:
        if not area.nr_free:
            continue
        if any(area.free_list[mt] for mt in range(MIGRATE_PCPTYPES)):
            return True
        if alloc_flags & (ALLOC_HIGHATOMIC | ALLOC_OOM) and area.free_list[MIGRATE_HIGHATOMIC]:
            return True
    return False


def zone_watermark_ok(z: zone, order: int, mark: int, alloc_flags: int) -> bool:
    return __zone_watermark_ok(z, order, mark, alloc_flags, z.vm_stat[NR_FREE_PAGES])


@dataclass
class alloc_context:
    """``struct alloc_context``: the zonelist to walk, the nodemask, the migratetype wanted."""

    zonelist: list
    nodemask: frozenset | None
    migratetype: int
    preferred_zone: zone


def _zones_allowed(ac: alloc_context):
    for z in ac.zonelist:
        if ac.nodemask is None or z.nid in ac.nodemask:
            yield z


def get_page_from_freelist(gfp: int, order: int, alloc_flags: int, ac: alloc_context) -> Page | None:
    """Walk the zonelist; in each zone above its watermark try ``rmqueue``; prep the page found.
    With ``ALLOC_NOFRAGMENT`` a failed walk is retried once without it."""
    while True:
        for z in _zones_allowed(ac):
            if not alloc_flags & ALLOC_NO_WATERMARKS:
                mark = z.wmark_pages(alloc_flags & ALLOC_WMARK_MASK)
                if not zone_watermark_ok(z, order, mark, alloc_flags):
                    event("watermark-refused", z.lock.name.replace("lock", "watermark"))
                    continue
            page = rmqueue(ac.preferred_zone, z, order, gfp, alloc_flags, ac.migratetype)
            if page is not None:
                prep_new_page(page, order, gfp, alloc_flags)
                return page
        if not alloc_flags & ALLOC_NOFRAGMENT:
            return None
        alloc_flags &= ~ALLOC_NOFRAGMENT


def post_alloc_hook(page: Page, order: int, gfp: int) -> None:
    """Hand a page out: first reference (v6.13 sets it here, spec 1.1), zeroing, page_owner."""
    set_page_private(page, 0)
    set_page_refcounted(page)
    if gfp & __GFP_ZERO:
        page.mem_map.contents[page.pfn:page.pfn + (1 << order)] = bytes([CONTENT_ZERO]) * (1 << order)
    page_owner.set_page_owner(page, order, gfp)


def prep_new_page(page: Page, order: int, gfp: int, alloc_flags: int) -> None:
    post_alloc_hook(page, order, gfp)
    if order and gfp & __GFP_COMP:
        prep_compound_page(page, order)


def should_fail_alloc_page(gfp: int, order: int) -> bool:
    """Fault injection (``fail_page_alloc``), configured by ``kernel.fail_page_alloc``."""
    attr = running().kernel.fail_page_alloc
    if gfp & __GFP_NOFAIL or order < attr.min_order or attr.times == 0 or attr.probability <= 0:
        return False
    if attr.ignore_gfp_highmem and gfp & __GFP_HIGHMEM:
        return False
    if attr.ignore_gfp_reclaim and gfp & __GFP_DIRECT_RECLAIM:
        return False
    if attr.rng.randrange(100) >= attr.probability:
        return False
    if attr.times > 0:
        attr.times -= 1
    event("fail_page_alloc", f"order:{order}")
    return True


def prepare_alloc_pages(gfp: int, order: int, preferred_nid: int, nodemask,
                        alloc_flags: int) -> tuple[alloc_context, int] | None:
    """The alloc context (zonelist, nodemask, migratetype) and the alloc flags to use; ``None`` when
    fault injection fails the request (never for ``ALLOC_TRYLOCK``: it may printk and take locks,
    patch 1, R1.8).  ``might_alloc`` checks a blocking mask's context.  C returns the flags through a
    pointer argument; here they come back in the tuple."""
    kernel = running().kernel
    zonelist = kernel.zonelists[preferred_nid]
    if gfp & __GFP_THISNODE:
        zonelist = zonelist[:1]
    ac = alloc_context(zonelist, nodemask, gfp_migratetype(gfp), zonelist[0])
    if gfpflags_allow_blocking(gfp):
        might_sleep(lambda: f"page allocation with {format_gfp(gfp)}")
    #~ if should_fail_alloc_page(gfp, order):  # @until 1
    if not alloc_flags & ALLOC_TRYLOCK and should_fail_alloc_page(gfp, order):  # @since 1
        return None
    return ac, alloc_flags


def alloc_flags_nofragment(z: zone, gfp: int) -> int:
    """``ALLOC_KSWAPD`` from the mask; ``ALLOC_NOFRAGMENT`` on one node (the kernel sets it when no lower
    zone sits below ``ZONE_NORMAL`` to fall back to; the model's nodes have none)."""
    flags = ALLOC_KSWAPD if gfp & __GFP_KSWAPD_RECLAIM else 0
    if len(running().kernel.zones) == 1:
        flags |= ALLOC_NOFRAGMENT
    return flags


def gfp_to_alloc_flags(gfp: int, order: int) -> int:
    """The slow path's flags: min watermark, reserves for ``__GFP_HIGH`` and non-blocking masks."""
    flags = ALLOC_WMARK_MIN | ALLOC_CPUSET
    if gfp & __GFP_HIGH:
        flags |= ALLOC_MIN_RESERVE
    if gfp & __GFP_KSWAPD_RECLAIM:
        flags |= ALLOC_KSWAPD
    if not gfp & __GFP_DIRECT_RECLAIM:
        flags |= ALLOC_NON_BLOCK
        if not gfp & __GFP_NOMEMALLOC:
            flags |= ALLOC_HIGHATOMIC
    return flags


def warn_alloc(gfp: int, order: int) -> None:
    if not gfp & __GFP_NOWARN:
        event("warn_alloc", f"page allocation failure: order:{order}, mode:{format_gfp(gfp)}")


def __alloc_pages_slowpath(gfp: int, order: int, ac: alloc_context) -> Page | None:
    """Wake kswapd, retry at the min watermark with the reserves the mask allows; a blocking mask
    then "reclaims" (a might-sleep point; the model has nothing to reclaim) and drains every pcp
    before one more try.  Then ``warn_alloc`` and fail (``__GFP_NOFAIL`` does not loop here)."""
    alloc_flags = gfp_to_alloc_flags(gfp, order)
    if alloc_flags & ALLOC_KSWAPD:
        event("wakeup_kswapd", f"order:{order}")
    page = get_page_from_freelist(gfp, order, alloc_flags, ac)
    if page is None and gfpflags_allow_blocking(gfp):
        might_sleep("direct reclaim")
        event("direct_reclaim", f"order:{order}")
        drain_all_pages(None)
        page = get_page_from_freelist(gfp, order, alloc_flags, ac)
    if page is None:
        warn_alloc(gfp, order)
    return page


def check_order(order: int) -> int:
    max_order = running().kernel.config.max_order
    if isinstance(order, bool) or not isinstance(order, int) or not 0 <= order <= max_order:
        raise InvalidArgumentError(f"order {order!r} is out of range 0..{max_order} (MAX_PAGE_ORDER)")
    return order


def check_nid(nid: int) -> int:
    nr_nodes = running().kernel.config.nr_nodes
    if isinstance(nid, bool) or not isinstance(nid, int) or not 0 <= nid < nr_nodes:
        raise InvalidArgumentError(f"node {nid!r} does not exist (nodes 0..{nr_nodes - 1})")
    return nid


def __alloc_pages(gfp: int, order: int, preferred_nid: int, nodemask=None) -> Page | None:
    """The allocator's entry (``__alloc_pages_noprof``): fast path at the low watermark, slow path on
    failure, memcg charge for ``__GFP_ACCOUNT`` (a failed charge frees the page and fails), then the
    ``mm_page_alloc`` tracepoint, which fires with no lock held, for failures too."""
    check_gfp(gfp)
    check_order(order)
    check_nid(preferred_nid)
    if nodemask is not None:
        nodemask = frozenset(nodemask)
        for nid in nodemask:
            check_nid(nid)
    prepared = prepare_alloc_pages(gfp, order, preferred_nid, nodemask, ALLOC_WMARK_LOW)
    if prepared is None:
        return None
    ac, alloc_flags = prepared
    alloc_flags |= alloc_flags_nofragment(ac.preferred_zone, gfp)
    page = get_page_from_freelist(gfp, order, alloc_flags, ac)
    if page is None:
        page = __alloc_pages_slowpath(gfp, order, ac)
    if (page is not None and gfp & __GFP_ACCOUNT and memcontrol.memcg_kmem_online()
            and memcontrol.__memcg_kmem_charge_page(page, gfp, order) != 0):
        __free_pages(page, order)
        page = None
    trace_mm_page_alloc(page=page, order=order, gfp_flags=gfp, migratetype=ac.migratetype)
    return page


def has_unaccepted_memory() -> bool:
    """Does any zone still hold memory that must be accepted before use (``has_unaccepted_memory``)?"""
    return running().kernel.unaccepted_memory


def deferred_pages_enabled() -> bool:
    """Is struct-page initialisation still running in the background (``deferred_pages_enabled``)?"""
    return running().kernel.deferred_pages


# @since 1
def try_alloc_pages(nid: int, order: int) -> Page | None:
    """Allocate from any context, never spinning: NULL when a lock is busy (patch 1, 97769a53f117).

    ``try_alloc_pages_noprof`` (spec 2.4, rules R1.1-R1.17): a mask with neither reclaim bit, so
    ``gfpflags_allow_spinning()`` is false; ``ALLOC_TRYLOCK`` with no watermark selector (the min
    watermark); early NULL on PREEMPT_RT in NMI or hard-IRQ, for orders the pcp does not cache, while
    memory is unaccepted or struct pages are still being initialised; the fast path only.  The page is
    zeroed (which also keeps KMSAN's hook safe in any context) and not compound.  ``nid`` may be
    ``NUMA_NO_NODE``.  An order outside ``0..MAX_PAGE_ORDER`` or an unknown node raises
    :class:`~tryalloc.errors.InvalidArgumentError` here, where C would just return NULL.
    """
    check_order(order)
    if nid != NUMA_NO_NODE:
        check_nid(nid)
    gfp = __GFP_NOWARN | __GFP_ZERO | __GFP_NOMEMALLOC
    alloc_flags = ALLOC_TRYLOCK
    # spin_trylock() of an rt_mutex is not allowed in NMI or hard-IRQ on PREEMPT_RT (spec 0.1)
    if running().kernel.config.preempt_rt and (in_nmi() or in_hardirq()):
        return None
    if not pcp_allowed_order(order):
        return None
    # accepting memory and growing deferred struct pages both take locks
    if has_unaccepted_memory():
        return None
    if deferred_pages_enabled():
        return None
    if nid == NUMA_NO_NODE:
        nid = numa_node_id()
    prepared = prepare_alloc_pages(gfp, order, nid, None, alloc_flags)
    if prepared is None:
        return None
    ac, alloc_flags = prepared
    # no slow path: it would reclaim, compact, wake kswapd, OOM, warn ... all of which take locks
    page = get_page_from_freelist(gfp, order, alloc_flags, ac)
    trace_mm_page_alloc(page=page, order=order, gfp_flags=gfp, migratetype=ac.migratetype)
    return page
# @end


def numa_node_id() -> int:
    return cpu_to_node(running().kernel, running().cpu.id)


def alloc_pages_node(nid: int, gfp: int, order: int) -> Page | None:
    """Allocate on node ``nid`` (``NUMA_NO_NODE``: this CPU's node), falling back to the others."""
    if nid == NUMA_NO_NODE:
        nid = numa_node_id()
    return __alloc_pages(gfp, order, nid, None)


def alloc_pages(gfp: int, order: int) -> Page | None:
    """Allocate ``2**order`` contiguous pages on this CPU's node (``alloc_pages_noprof`` without a
    mempolicy); ``None`` on failure."""
    return __alloc_pages(gfp, order, numa_node_id(), None)


# --- the free paths --------------------------------------------------------------------------------------
def _check_free(page: Page, order: int, extra_ref: int = 0) -> None:
    """The checks of ``free_pages_prepare``/``free_page_is_bad``, made before anything changes.

    ``extra_ref`` is the reference the caller is about to drop (``__free_pages`` checks before its
    ``put_page_testzero`` so a rejected free leaves the page untouched; the kernel checks after).
    """
    cfg = running().kernel.config
    check_order(order)
    if not isinstance(page, Page):
        raise InvalidArgumentError(f"expected a Page, got {page!r}")
    if PageBuddy(page):
        raise bad_page(page, "page is already free in the buddy allocator (double free)")
    if PageTail(page):
        raise bad_page(page, "freeing a tail page of a compound page")
    if page_ref_count(page) != extra_ref:
        raise bad_page(page, "nonzero _refcount" if page_ref_count(page) > extra_ref else
                       "refcount underflow: freeing a page nobody holds (never allocated, or freed already)")
    if page.pfn + (1 << order) > page.mem_map.nr_pages or page.pfn & ((1 << order) - 1):
        raise bad_page(page, f"pfn is not the start of an order-{order} block")
    if PageHead(page) and compound_order(page) != order and cfg.debug_vm:
        raise vm_bug_on_page(page, "compound && compound_order(page) != order")
    if cfg.debug_vm and order:
        mm, head = page.mem_map, page.pfn
        for pfn in range(head + 1, head + (1 << order)):
            if mm.flags[pfn] >> PG_buddy & 1 or mm._refcount[pfn] or (
                    mm.compound_head[pfn] >= 0 and mm.compound_head[pfn] != head):
                raise bad_page(Page(pfn, mm), f"sub-page of an order-{order} block at pfn {head:#x} "
                                              f"is free or in use")


def free_pages_prepare(page: Page, order: int) -> bool:
    """Ready a page for the free lists: bad-page checks, ``mm_page_free``, memcg uncharge,
    compound teardown, page_owner reset, poisoning.  Returns True (a bad page raises instead)."""
    _check_free(page, order)
    trace_mm_page_free(page=page, order=order)
    if memcontrol.memcg_kmem_online() and page.memcg_data:
        memcontrol.__memcg_kmem_uncharge_page(page, order)
    if PageHead(page):
        clear_compound_page(page, compound_order(page))
    page_owner.reset_page_owner(page, order)
    if running().kernel.config.debug_objects:
        debug_check_no_obj_freed(page, order)  # spins on its hash lock, FPI_TRYLOCK or not (R2.14)
    page.mem_map.contents[page.pfn:page.pfn + (1 << order)] = bytes([CONTENT_POISON]) * (1 << order)
    return True


def buddy_merge_likely(pfn: int, buddy_pfn: int, page: Page, order: int) -> bool:
    """Is the block's own buddy one order up free?  Then put it at the tail, to merge later."""
    max_order = len(page_zone(page).free_area) - 1
    if order >= max_order - 1:
        return False
    higher_pfn = buddy_pfn & pfn
    higher_buddy = higher_pfn ^ (1 << (order + 1))
    return _find_buddy(page.mem_map, higher_pfn, higher_buddy, order + 1)


def _find_buddy(mm, pfn: int, buddy_pfn: int, order: int) -> bool:
    """``page_is_buddy``: the buddy is a free block of the same order in the same zone."""
    ppn = mm.pages_per_node
    return (0 <= buddy_pfn < mm.nr_pages and buddy_pfn // ppn == pfn // ppn
            and mm.flags[buddy_pfn] >> PG_buddy & 1 and mm.private[buddy_pfn] == order)


def __free_one_page(page: Page, pfn: int, z: zone, order: int, migratetype: int, fpi_flags: int) -> None:
    """Put a block back, merging with its buddy at ``pfn ^ (1 << order)`` for as long as that one is
    free and of the same order (not across pageblocks of unmergeable types).  ``zone->lock`` held."""
    mm = page.mem_map
    cfg = running().kernel.config
    account_freepages(z, 1 << order, migratetype)
    buddy_pfn = pfn
    while order < cfg.max_order:
        buddy_pfn = pfn ^ (1 << order)
        if not _find_buddy(mm, pfn, buddy_pfn, order):
            break
        buddy = Page(buddy_pfn, mm)
        buddy_mt = migratetype
        if order >= cfg.pageblock_order:
            buddy_mt = get_pfnblock_migratetype(buddy, buddy_pfn)
            if migratetype != buddy_mt and (not migratetype_is_mergeable(migratetype)
                                            or not migratetype_is_mergeable(buddy_mt)):
                break
        _del_page_from_free_list(z, buddy, order, buddy_mt)
        if buddy_mt != migratetype:
            set_pageblock_migratetype(buddy, migratetype)
        pfn &= buddy_pfn
        order += 1
    page = Page(pfn, mm)
    _set_buddy_order(mm, pfn, order)
    to_tail = bool(fpi_flags & FPI_TO_TAIL) or buddy_merge_likely(pfn, buddy_pfn, page, order)
    _add_to_free_list(z, page, order, migratetype, to_tail)


def split_large_buddy(z: zone, page: Page, pfn: int, order: int, fpi: int) -> None:
    """Free a block larger than a pageblock one pageblock at a time, each with its own type."""
    end = pfn + (1 << order)
    order = min(order, running().kernel.config.pageblock_order)
    mm = page.mem_map
    while pfn != end:
        page = Page(pfn, mm)
        __free_one_page(page, pfn, z, order, get_pfnblock_migratetype(page, pfn), fpi)
        pfn += 1 << order


# @since 2
def add_page_to_zone_llist(z: zone, page: Page, order: int) -> None:
    """Defer a free: remember the order in the page and push it on ``zone->trylock_free_pages``
    (lock-free, so safe from any context).  The page is not free until drained (R2.8)."""
    page.order = order
    llist_add(page.pcp_llist, z.trylock_free_pages)
    event("deferred-free", f"pfn {page.pfn:#x} order {order}")
# @end


def free_one_page(z: zone, page: Page, pfn: int, order: int, fpi_flags: int) -> None:
    """Free straight to buddy under ``zone->lock``; counts PGFREE.

    Patch 2 (R2.5, R2.9, R2.10): an ``FPI_TRYLOCK`` free that cannot trylock the lock defers the page
    to ``zone->trylock_free_pages``; an ordinary free that holds the lock first merges every deferred
    page, each with its recorded order.  As posted, ordinary frees tried before spinning; 6.15
    (c5bb27e2da3a, S9.7.1) takes the lock directly for them.
    """
    # @until 2
    #~ flags = spin_lock_irqsave(z.lock)
    # @end
    # @since 2 @until 6.15
    #~ flags = spin_trylock_irqsave(z.lock)
    #~ if flags is None:
    #~     if fpi_flags & FPI_TRYLOCK:
    #~         add_page_to_zone_llist(z, page, order)
    #~         return
    #~     flags = spin_lock_irqsave(z.lock)
    # @end
    # @since 6.15
    if fpi_flags & FPI_TRYLOCK:
        flags = spin_trylock_irqsave(z.lock)
        if flags is None:
            add_page_to_zone_llist(z, page, order)
            return
    else:
        flags = spin_lock_irqsave(z.lock)
    # @end
    # @since 2
    if not llist_empty(z.trylock_free_pages) and not fpi_flags & FPI_TRYLOCK:
        for node in llist_for_each(llist_del_all(z.trylock_free_pages)):
            deferred = node.payload
            split_large_buddy(z, deferred, deferred.pfn, deferred.order, fpi_flags)
            running().kernel.vm_events[PGFREE] += 1 << deferred.order
    # @end
    split_large_buddy(z, page, pfn, order, fpi_flags)
    spin_unlock_irqrestore(z.lock, flags)
    running().kernel.vm_events[PGFREE] += 1 << order


def __free_pages_ok(page: Page, order: int, fpi_flags: int) -> None:
    if free_pages_prepare(page, order):
        free_one_page(page_zone(page), page, page.pfn, order, fpi_flags)


#~ def free_unref_page(page: Page, order: int) -> None:  # @until 2
def __free_unref_page(page: Page, order: int, fpi_flags: int) -> None:  # @since 2
    """Free a page whose last reference is gone: through this CPU's pcp when the order is cached and
    the pcp trylock succeeds, else to buddy (isolated pageblocks always go to buddy).

    Patch 2 threads ``fpi_flags`` through; on PREEMPT_RT an ``FPI_TRYLOCK`` free in NMI or hard-IRQ
    goes to the deferred list without trying any lock (R2.6) -- but only here, after the non-pcp and
    isolated cases have already gone to ``free_one_page`` (the gap of R2.7)."""
    if not pcp_allowed_order(check_order(order)):
        #~ __free_pages_ok(page, order, FPI_NONE)  # @until 2
        __free_pages_ok(page, order, fpi_flags)  # @since 2
        return
    if not free_pages_prepare(page, order):
        return
    pfn = page.pfn
    migratetype = get_pfnblock_migratetype(page, pfn)
    z = page_zone(page)
    if migratetype >= MIGRATE_PCPTYPES:
        if migratetype == MIGRATE_ISOLATE:
            #~ free_one_page(z, page, pfn, order, FPI_NONE)  # @until 2
            free_one_page(z, page, pfn, order, fpi_flags)  # @since 2
            return
        migratetype = MIGRATE_MOVABLE
    # @since 2
    if fpi_flags & FPI_TRYLOCK and running().kernel.config.preempt_rt and (in_nmi() or in_hardirq()):
        add_page_to_zone_llist(z, page, order)
        return
    # @end
    flags = pcp_trylock_prepare()
    pcp = pcp_spin_trylock(z.per_cpu_pageset)
    if pcp is not None:
        #~ free_unref_page_commit(z, pcp, page, migratetype, order)  # @until 2
        free_unref_page_commit(z, pcp, page, migratetype, order, fpi_flags)  # @since 2
        pcp_spin_unlock(pcp)
    else:
        #~ free_one_page(z, page, pfn, order, FPI_NONE)  # @until 2
        free_one_page(z, page, pfn, order, fpi_flags)  # @since 2
    pcp_trylock_finish(flags)


# @since 2
def free_unref_page(page: Page, order: int) -> None:
    __free_unref_page(page, order, FPI_NONE)
# @end


#~ def __free_pages(page: Page, order: int) -> None:  # @until 2
def ___free_pages(page: Page, order: int, fpi_flags: int) -> None:  # @since 2
    """Drop a reference; free the block when it was the last.  If it was not and the page is no
    compound head, free the tail sub-blocks ``order-1 .. 0`` the caller gave up (spec 1.2): the
    holder of the extra reference keeps only the first page.  (Patch 2 made this the body of both
    ``__free_pages`` and ``free_pages_nolock``, with the free flags threaded through.)"""
    if not isinstance(page, Page):
        raise InvalidArgumentError(f"expected a Page, got {page!r}")
    check_order(order)
    head = PageHead(page)
    # validate everything this call would free before dropping the reference (see _check_free)
    if page_ref_count(page) <= 1:
        _check_free(page, order, extra_ref=1)
    elif not head:
        for o in range(order):
            _check_free(page + (1 << o), o)
    if put_page_testzero(page):
        #~ free_unref_page(page, order)  # @until 2
        __free_unref_page(page, order, fpi_flags)  # @since 2
    elif not head:
        while order > 0:
            order -= 1
            #~ free_unref_page(page + (1 << order), order)  # @until 2
            __free_unref_page(page + (1 << order), order, fpi_flags)  # @since 2


# @since 2
def __free_pages(page: Page, order: int) -> None:
    ___free_pages(page, order, FPI_NONE)


def free_pages_nolock(page: Page, order: int) -> None:
    """Free from any context without spinning (patch 2, 8c57b687e833; spec 3.4, R2.1-R2.14).

    Exactly the reference-count semantics of ``__free_pages`` (R2.1), for any page, not only those of
    ``try_alloc_pages`` (R2.3); the free goes to the pcp by trylock, else to buddy by trylock of
    ``zone->lock``, else onto ``zone->trylock_free_pages`` until an ordinary free drains it.
    """
    ___free_pages(page, order, FPI_TRYLOCK)
# @end


def __free_page(page: Page) -> None:
    __free_pages(page, 0)


def free_pages(page: Page, order: int) -> None:
    """``free_pages(addr, order)`` takes an address in C; the model passes the page."""
    __free_pages(page, order)


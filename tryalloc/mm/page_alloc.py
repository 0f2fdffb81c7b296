"""The buddy page allocator as of about v6.13 (``mm/page_alloc.c``): level 0 of the series.

Allocation: ``alloc_pages`` -> ``__alloc_pages`` -> ``prepare_alloc_pages`` -> ``get_page_from_freelist``
(walks the zonelist, checks the watermark) -> ``rmqueue`` -> ``rmqueue_pcplist`` (pcp trylock; refills
an empty list with ``rmqueue_bulk`` under ``zone->lock``) or ``rmqueue_buddy`` (``zone->lock``) ->
``__rmqueue_smallest``/``expand``.  A failed fast path enters the slow path (kswapd wake, a retry at the
min watermark with reserves, a drain of every pcp, ``warn_alloc``).

Free: ``__free_pages`` (a non-compound block with a reference left keeps only its first page) ->
``free_unref_page`` -> ``free_pages_prepare`` -> ``free_unref_page_commit`` onto the pcp (bulk free past
``high`` through ``free_pcppages_bulk``), or ``free_one_page`` -> ``split_large_buddy`` -> ``__free_one_page``.

At this level every ``zone->lock`` acquisition is an unconditional ``spin_lock_irqsave``, and the
tracepoints ``mm_page_alloc_zone_locked``, ``mm_page_alloc_extfrag`` and ``mm_page_pcpu_drain`` fire
while it is held: a probe there that allocates spins on the lock its own CPU holds.  That is the
deadlock the series removes.

The baseline is v6.13 (https://elixir.bootlin.com/linux/v6.13/source/mm/page_alloc.c); each function whose C
the model follows closely links its v6.13 definition. Model choices (each said again where it applies): bad
input (an order out of range, an unknown node) raises :class:`~tryalloc.errors.InvalidArgumentError` where the
kernel WARNs and returns NULL; a bad free raises :class:`~tryalloc.errors.BadPageError` (or, for a compound
page freed with another order, the ``VM_BUG_ON_PAGE`` report :class:`~tryalloc.errors.VMBugError`) before any
state changes; no reclaim, compaction or OOM (the slow path's effects on locks and contexts only); the pcp's
``high`` is not tuned automatically unless a scenario gives it a range (:func:`pageset_update`); no folio
batch free (``free_unref_folios`` and its ``mm_page_free_batched`` tracepoint: nothing in the model frees
folios in batches, so the part of R2.11 about them is not exercised); no highatomic reserve is ever made
(``reserve_highatomic_pageblock``).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from ..config import HPAGE_PMD_ORDER
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
    spinlock_t,
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
from ..kernel.sched import declare_ops, event, point, running
from ..lib.debugobjects import debug_check_no_obj_freed
from ..lib.llist import llist_add, llist_del_all, llist_empty, llist_for_each
from ..series.mutants import fixed
from ..trace import (
    trace_mm_page_alloc,
    trace_mm_page_alloc_extfrag,
    trace_mm_page_alloc_zone_locked,
    trace_mm_page_free,
    trace_mm_page_pcpu_drain,
)
from . import memcontrol, page_owner
from .mmzone import (
    CONFIG_PCP_BATCH_SCALE_MAX,
    MIGRATE_HIGHATOMIC,
    MIGRATE_ISOLATE,
    MIGRATE_MOVABLE,
    MIGRATE_PCPTYPES,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
    NR_FREE_PAGES,
    NR_LOWORDER_PCP_LISTS,
    NR_PCP_THP,
    PAGE_ALLOC_COSTLY_ORDER,
    PCPF_FREE_HIGH_BATCH,
    PCPF_PREV_FREE_HIGH_ORDER,
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
    check_page,
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

declare_ops("watermark-refused", "fail_page_alloc", "warn_alloc", "wakeup_kswapd", "direct_reclaim")
declare_ops("put_page_testzero", "PageHead")
declare_ops("deferred-free")  # @since 2

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
ALLOC_TRYLOCK = 0x400  # @since 1  zone->lock may only be trylocked (mm/internal.h, 97769a53f117)
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
    return min(HPAGE_PMD_ORDER, config.max_order)


def cpu_to_node(kernel, cpu: int) -> int:
    """CPUs are spread over the nodes in order (the config's documented layout)."""
    return cpu * kernel.config.nr_nodes // kernel.config.nr_cpus


@initcall
def page_alloc_init(kernel) -> None:
    """Boot: build each node's zone, hand all its pages to the buddy allocator (as ``memblock_free_all``
    does, in max-order blocks added at the tail), set watermarks and pcp sizes, and the zonelists."""
    cfg = kernel.config
    mm = kernel.mem_map
    nr_lists = NR_LOWORDER_PCP_LISTS + (NR_PCP_THP if cfg.thp else 0)
    kernel.zones = [zone(kernel, nid, nid * cfg.pages_per_node, cfg.pages_per_node, nr_lists)
                    for nid in range(cfg.nr_nodes)]
    mm.zones = kernel.zones
    kernel.vm_events = {PGALLOC: 0, PGFREE: 0}
    kernel.fail_page_alloc = fault_attr()
    # boot-time states the allocator consults: memory not yet accepted (CONFIG_UNACCEPTED_MEMORY's
    # zones_with_unaccepted_pages key) and struct pages still being initialised (deferred init);
    # the model's zones are fully accepted and initialised unless a scenario says otherwise
    kernel.unaccepted_memory = False
    kernel.unaccepted_memory_lock = spinlock_t("unaccepted_memory_lock")  # @since 6.15
    # @since 6.15
    kernel.nolock_gfp_warned = False  # 6.18's VM_WARN_ON_ONCE in alloc_frozen_pages_nolock
    # @end
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
    ``zone_highsize``, and both ``high_min`` and ``high_max`` are set to it (as when
    ``vm.percpu_pagelist_high_fraction`` is set), so ``high`` is not tuned automatically.
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
            pageset_update(pcp, high, high, batch)


def pageset_update(pcp, high_min: int, high_max: int, batch: int) -> None:
    """Set a pcp's ``batch`` and the range ``high`` may move in (``pageset_update``, v6.13:
    https://elixir.bootlin.com/linux/v6.13/C/ident/pageset_update).

    The kernel leaves ``high`` to the next clamp in ``nr_pcp_high``/``nr_pcp_alloc``; the model clamps
    it at once, so the new mark shows before the next free.  Values that are not ints with
    ``1 <= batch`` and ``0 <= high_min <= high_max`` raise :class:`~tryalloc.errors.InvalidArgumentError`
    with the pcp unchanged.
    """
    for name, value in (("high_min", high_min), ("high_max", high_max), ("batch", batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidArgumentError(f"pcp {name} must be an int >= 0, got {value!r}")
    if batch < 1 or high_min > high_max:
        raise InvalidArgumentError(f"pcp needs batch >= 1 and high_min <= high_max, got batch {batch}, "
                                   f"high_min {high_min}, high_max {high_max}")
    pcp.batch, pcp.high_min, pcp.high_max = batch, high_min, high_max
    pcp.high = min(max(pcp.high, high_min), high_max)


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
    """Steal from another migratetype, largest block first, and fire ``mm_page_alloc_extfrag`` with
    ``zone->lock`` held (v6.13 ``__rmqueue_fallback`` and ``steal_suitable_fallback``:
    https://elixir.bootlin.com/linux/v6.13/C/ident/__rmqueue_fallback).

    A block of at least a pageblock is claimed whole: its pageblocks change type and what the split
    leaves goes to ``start_migratetype``'s lists; a smaller one is split on its own type.  Neither path
    passes through ``__rmqueue_smallest``, so ``mm_page_alloc_zone_locked`` does not fire here.  The
    model leaves out the heuristics that can claim a partly used pageblock (``can_steal_fallback``,
    the count of free and compatible pages in it), the watermark boost, and the movable allocation's
    search for the smallest block when it cannot claim the block.  With ``ALLOC_NOFRAGMENT`` only
    whole pageblocks may be stolen.
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
                nr_pages = (1 << current_order) - expand(z, page, order, current_order, start_migratetype)
                account_freepages(z, -nr_pages, start_migratetype)
            else:
                page_del_and_expand(z, page, order, current_order, fallback_mt)
            trace_mm_page_alloc_extfrag(page=page, alloc_order=order, fallback_order=current_order,
                                        alloc_migratetype=start_migratetype, fallback_migratetype=fallback_mt)
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
        flags = (not fixed("second-trylock") and spin_trylock_irqsave(z.lock)) or spin_lock_irqsave(z.lock)
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
    the pcp attempt failed).  With ``ALLOC_TRYLOCK`` a busy lock means ``None`` (patch 1, R1.14).

    As in v6.13 (https://elixir.bootlin.com/linux/v6.13/C/ident/rmqueue_buddy) an allocation that
    finds nothing may still take from the highatomic reserve if it is an OOM victim's or may not block
    (``ALLOC_OOM | ALLOC_NON_BLOCK``).  The C wraps all this in a loop that starts again, lock and all,
    when ``check_new_pages`` finds a bad page; in the model no page on a free list is ever bad (a bad
    free raises before the page gets there), so the loop would never repeat and is left out.
    """
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
        flags = (not fixed("second-trylock") and spin_trylock_irqsave(z.lock)) or spin_lock_irqsave(z.lock)
    # @end
    page = None
    if alloc_flags & ALLOC_HIGHATOMIC:
        page = __rmqueue_smallest(z, order, MIGRATE_HIGHATOMIC)
    if page is None:
        page = __rmqueue(z, order, migratetype, alloc_flags)
        if page is None and alloc_flags & (ALLOC_OOM | ALLOC_NON_BLOCK):
            page = __rmqueue_smallest(z, order, MIGRATE_HIGHATOMIC)
    spin_unlock_irqrestore(z.lock, flags)
    if page is not None:
        running().kernel.vm_events[PGALLOC] += 1 << order
    return page


# --- per-CPU pagesets -----------------------------------------------------------------------------------
def pcp_allowed_order(order: int) -> bool:
    """Orders the pcp caches: up to ``PAGE_ALLOC_COSTLY_ORDER``, and the THP order with THP (v6.13:
    https://elixir.bootlin.com/linux/v6.13/C/ident/pcp_allowed_order)."""
    if order <= PAGE_ALLOC_COSTLY_ORDER:
        return True
    cfg = running().kernel.config
    return cfg.thp and order == thp_order(cfg)


def order_to_pindex(migratetype: int, order: int) -> int:
    """The pcp list of an (order, migratetype): one per pair up to ``PAGE_ALLOC_COSTLY_ORDER``, then the
    two THP lists, movable and the rest (v6.13: https://elixir.bootlin.com/linux/v6.13/C/ident/order_to_pindex)."""
    if order > PAGE_ALLOC_COSTLY_ORDER:
        return NR_LOWORDER_PCP_LISTS + (migratetype == MIGRATE_MOVABLE)
    return MIGRATE_PCPTYPES * order + migratetype


def pindex_to_order(pindex: int) -> int:
    if pindex >= NR_LOWORDER_PCP_LISTS:
        return thp_order(running().kernel.config)
    return pindex // MIGRATE_PCPTYPES


def pcp_trylock_prepare():
    """On a uniprocessor !RT kernel ``spin_trylock`` always succeeds, so interrupts go off instead
    (``pcp_trylock_prepare``); a no-op (``None``) on SMP or RT.  NMIs still arrive: an NMI allocation on
    UP could enter the section it interrupted until 620b46ed6ae1 (2026, S9.11.1) made it return NULL."""
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


def _clamp(value: int, lo: int, hi: int) -> int:
    """The kernel's ``clamp()``: ``min(max(value, lo), hi)``, so ``hi`` wins when ``lo > hi``."""
    return min(max(value, lo), hi)


def nr_pcp_alloc(pcp, z: zone, order: int) -> int:
    """Blocks to refill an empty list with (v6.13 ``nr_pcp_alloc``:
    https://elixir.bootlin.com/linux/v6.13/C/ident/nr_pcp_alloc).

    Order 0 asks for ``batch << alloc_factor`` pages, and each refill that fits under ``high`` doubles
    the next one (``alloc_factor`` grows up to ``CONFIG_PCP_BATCH_SCALE_MAX``; every free halves it),
    bounded by the room below ``high``.  Higher orders ask for ``batch >> order`` blocks, at least 2,
    unless ``batch`` is 1 (small zones), when they ask for 1; a pcp whose ``high`` is below ``batch``
    gets 1.  Where ``high`` may move (``high_min < high_max``) a refill also raises it by the batch;
    the model never sets ``ZONE_BELOW_HIGH`` (the watermark that would stop that is not tracked).
    """
    base_batch = pcp.batch
    high = pcp.high = _clamp(pcp.high, pcp.high_min, pcp.high_max)
    if high < base_batch:
        return 1
    batch = base_batch if order else base_batch << pcp.alloc_factor
    if pcp.high_min != pcp.high_max:
        high = pcp.high = min(high + batch, pcp.high_max)
    if not order:
        max_nr_alloc = max(high - pcp.count - base_batch, base_batch)
        if batch <= max_nr_alloc and pcp.alloc_factor < CONFIG_PCP_BATCH_SCALE_MAX:
            pcp.alloc_factor += 1
        batch = min(batch, max_nr_alloc)
    if batch > 1:
        batch = max(batch >> order, 2)
    return batch


def __rmqueue_pcplist(z: zone, order: int, migratetype: int, alloc_flags: int, pcp, lst) -> Page | None:
    """Take the first page of ``lst``, refilling it from buddy when empty.  The C repeats this while
    ``check_new_pages`` finds a bad page; no page on a free list is bad in the model (see
    :func:`rmqueue_buddy`), so there is nothing to repeat."""
    if not lst:
        alloced = rmqueue_bulk(z, order, nr_pcp_alloc(pcp, z, order), lst, migratetype, alloc_flags)
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
    """Return ``count`` pages from ``pcp`` to buddy under an unconditional ``zone->lock``, list
    ``pindex`` first, then the others round-robin, each from its tail; fires ``mm_page_pcpu_drain``
    with the lock held (v6.13: https://elixir.bootlin.com/linux/v6.13/C/ident/free_pcppages_bulk)."""
    count = min(pcp.count, count)
    mm = running().kernel.mem_map
    pindex -= 1  # the search below steps forward first: start at the list asked for
    flags = spin_lock_irqsave(z.lock)
    nr_lists = len(pcp.lists)
    while count > 0:
        while True:  # the next non-empty list, from pindex on
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


def nr_pcp_free(pcp, batch: int, high: int, free_high: bool) -> int:
    """How many pages a free at or past ``high`` returns (v6.13 ``nr_pcp_free``, since v6.7:
    https://elixir.bootlin.com/linux/v6.13/C/ident/nr_pcp_free).

    ``clamp(free_count, batch, high - batch)``: a run of frees with no allocation between returns up to
    ``high - batch`` pages at a time and leaves ``batch`` on the lists.  A high-order free run
    (``free_high``) returns up to ``batch << CONFIG_PCP_BATCH_SCALE_MAX``; a pcp whose ``high`` is below
    its ``batch`` returns 1.
    """
    if free_high:
        return min(pcp.count, batch << CONFIG_PCP_BATCH_SCALE_MAX)
    if high < batch:
        return 1
    return _clamp(pcp.free_count, batch, high - batch)


def nr_pcp_high(pcp, z: zone, batch: int, free_high: bool) -> int:
    """The mark a free compares ``count`` with (v6.13 ``nr_pcp_high``:
    https://elixir.bootlin.com/linux/v6.13/C/ident/nr_pcp_high).

    ``high`` is first clamped into ``high_min .. high_max``; a high-order free run lowers it and returns
    0 (free now).  Where ``high`` may move, a free that reaches it raises it to hold ``free_count +
    batch``.  Left out, as the model has neither: the lowering while reclaim is active
    (``ZONE_RECLAIM_ACTIVE``) and while the zone is below its high watermark (``ZONE_BELOW_HIGH``), and
    ``decay_pcp_high``, the vmstat worker's periodic lowering.
    """
    high = pcp.high = _clamp(pcp.high, pcp.high_min, pcp.high_max)
    if not high:
        return 0
    if free_high:
        pcp.high = max(high - (batch << CONFIG_PCP_BATCH_SCALE_MAX), pcp.high_min)
        return 0
    if pcp.high_min == pcp.high_max:
        return high
    if pcp.count >= high:
        need_high = pcp.free_count + batch
        if pcp.high < need_high:
            pcp.high = _clamp(need_high, pcp.high_min, pcp.high_max)
    return high


#~ def free_unref_page_commit(z: zone, pcp, page: Page, migratetype: int, order: int) -> None:  # @until 2
def free_unref_page_commit(z: zone, pcp, page: Page, migratetype: int, order: int,  # @since 2
                           fpi_flags: int) -> None:  # @since 2
    """Put a freed page at the head of its pcp list; at or past ``high``, bulk-free to buddy, the
    list just freed to first (v6.13: https://elixir.bootlin.com/linux/v6.13/C/ident/free_unref_page_commit).

    Every free halves ``alloc_factor`` and adds to ``free_count`` (capped at
    ``batch << CONFIG_PCP_BATCH_SCALE_MAX``), which sizes the bulk free (:func:`nr_pcp_free`); two
    consecutive frees of orders 1..3 with ``free_count >= batch`` free as much as they may.  The model
    does not clear ``ZONE_BELOW_HIGH`` after the bulk free: it never sets it (:func:`nr_pcp_high`).

    An ``FPI_TRYLOCK`` free stops after the list insertion: the bulk free would spin on
    ``zone->lock``, so ``pcp->count`` may stay above ``high`` until an ordinary free (patch 2, R2.4)."""
    pcp.alloc_factor >>= 1
    running().kernel.vm_events[PGFREE] += 1 << order
    pindex = order_to_pindex(migratetype, order)
    pcp.lists[pindex].appendleft(page.pfn)
    pcp.count += 1 << order
    batch = pcp.batch
    free_high = False
    if order and order <= PAGE_ALLOC_COSTLY_ORDER:
        free_high = (pcp.free_count >= batch and bool(pcp.flags & PCPF_PREV_FREE_HIGH_ORDER)
                     and (not pcp.flags & PCPF_FREE_HIGH_BATCH or pcp.count >= batch))
        pcp.flags |= PCPF_PREV_FREE_HIGH_ORDER
    elif pcp.flags & PCPF_PREV_FREE_HIGH_ORDER:
        pcp.flags &= ~PCPF_PREV_FREE_HIGH_ORDER
    if pcp.free_count < batch << CONFIG_PCP_BATCH_SCALE_MAX:
        pcp.free_count += 1 << order
    # @since 2
    if fpi_flags & FPI_TRYLOCK:
        return
    # @end
    high = nr_pcp_high(pcp, z, batch, free_high)
    if pcp.count >= high:
        free_pcppages_bulk(z, nr_pcp_free(pcp, batch, high, free_high), pcp, pindex)


def drain_pages_zone(cpu: int, z: zone) -> None:
    """Empty CPU ``cpu``'s pcp of zone ``z`` (possibly another CPU's): take its lock with a blocking
    ``spin_lock``, re-read the count under it and free at most ``batch << CONFIG_PCP_BATCH_SCALE_MAX``
    pages, drop the lock, and go again until the count read is 0 (v6.10+, as in v6.13:
    https://elixir.bootlin.com/linux/v6.13/C/ident/drain_pages_zone)."""
    pcp = per_cpu_ptr(z.per_cpu_pageset, cpu)
    while True:
        spin_lock(pcp.lock)
        count = pcp.count
        if count:
            to_drain = min(count, pcp.batch << CONFIG_PCP_BATCH_SCALE_MAX)
            free_pcppages_bulk(z, to_drain, pcp, 0)
            count -= to_drain
        spin_unlock(pcp.lock)
        if not count:
            return


def drain_local_pages(z: zone | None = None) -> None:
    """Drain this CPU's pcp of ``z`` (of every zone when ``None``)."""
    kernel = running().kernel
    cpu = running().cpu.id
    for each in [z] if z is not None else kernel.zones:
        drain_pages_zone(cpu, each)


def drain_all_pages(z: zone | None = None) -> None:
    """Drain the pcps of every CPU that has pages on them (of ``z``, or of any zone), remotely from the
    calling CPU (``__drain_all_pages``, v6.13; remote since v5.19).  The racy count check picks the
    CPUs first, as in C; ``pcpu_drain_mutex``, which serialises concurrent drains, is left out."""
    kernel = running().kernel
    zones = [z] if z is not None else kernel.zones
    cpus = [cpu for cpu in range(kernel.config.nr_cpus)
            if any(per_cpu_ptr(each.per_cpu_pageset, cpu).count for each in zones)]
    for cpu in cpus:
        for each in zones:
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


@dataclass(slots=True)
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
            cond_accept_memory(z, order, alloc_flags)  # @since 6.15
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
    """Hand a page out: first reference, zeroing, page_owner.

    Up to v6.13 the first reference is set here, so every page leaves ``get_page_from_freelist`` with
    refcount 1.  From v6.14-rc1 (efabfe1420f5, "mm/page_alloc: move set_page_refcounted() to callers
    of get_page_from_freelist()") pages leave it frozen, refcount 0, and each caller sets the count:
    level 6.15 does so in :func:`__alloc_pages` and :func:`try_alloc_pages`.
    """
    set_page_private(page, 0)
    #~ set_page_refcounted(page)  # @until 6.15
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
    """The slow path's flags (v6.13: https://elixir.bootlin.com/linux/v6.13/C/ident/gfp_to_alloc_flags):
    the min watermark; ``__GFP_HIGH`` may use part of the reserve below it; a mask that may not block
    and does not forbid reserves (``__GFP_NOMEMALLOC``) gets ``ALLOC_NON_BLOCK``, and for order > 0
    also the highatomic reserve; a non-blocking ``__GFP_HIGH`` ignores the cpuset.  The boost C gives
    real-time tasks (``rt_or_deadline_task``) is left out: the model has no scheduling classes."""
    flags = ALLOC_WMARK_MIN | ALLOC_CPUSET
    if gfp & __GFP_HIGH:
        flags |= ALLOC_MIN_RESERVE
    if gfp & __GFP_KSWAPD_RECLAIM:
        flags |= ALLOC_KSWAPD
    if not gfp & __GFP_DIRECT_RECLAIM:
        if not gfp & __GFP_NOMEMALLOC:
            flags |= ALLOC_NON_BLOCK
            if order > 0:
                flags |= ALLOC_HIGHATOMIC
        if flags & ALLOC_MIN_RESERVE:
            flags &= ~ALLOC_CPUSET
    return flags


def warn_alloc(gfp: int, order: int) -> None:
    if not gfp & __GFP_NOWARN:
        event("warn_alloc", f"page allocation failure: order:{order}, mode:{format_gfp(gfp)}"
                            f"{_watermark_note(order)}")


def _watermark_note(order: int) -> str:
    """Why a failure with free pages left is the watermarks' doing, worded for the warning (the kernel
    prints the zones' free and min counts after it, ``show_mem``).  On a tiny zone the default marks
    can exceed what the zone can ever spare: that request never succeeds, whatever the state."""
    notes = []
    for z in running().kernel.zones:
        free, mark = z.vm_stat[NR_FREE_PAGES], z.min_wmark_pages()
        if free >= 1 << order and free - (1 << order) < mark:
            never = (f"; its watermarks exceed what a {z.managed_pages}-page zone can spare for this order"
                     if mark + (1 << order) > z.managed_pages else "")
            notes.append(f"node{z.nid} {z.name}: {free} pages free but the min watermark keeps {mark}{never}")
    if not notes:
        return ""
    return ("; " + "; ".join(notes) + " (setup_per_zone_wmarks(kernel, 0) sets the watermarks to zero)")


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
    # @since 6.15
    if page is not None:
        set_page_refcounted(page)  # pages come out of get_page_from_freelist frozen (efabfe1420f5)
    # @end
    if (page is not None and gfp & __GFP_ACCOUNT and memcontrol.memcg_kmem_online()
            and memcontrol.__memcg_kmem_charge_page(page, gfp, order) != 0):
        __free_pages(page, order)
        page = None
    trace_mm_page_alloc(page=page, order=order, gfp_flags=gfp, migratetype=ac.migratetype)
    return page


def has_unaccepted_memory() -> bool:
    """Does any zone still hold memory that must be accepted before use (``has_unaccepted_memory``)?"""
    return running().kernel.unaccepted_memory


# @since 6.15
def cond_accept_memory(z: zone, order: int, alloc_flags: int) -> bool:
    """Accept memory for the zone if any is still unaccepted (``cond_accept_memory``, v6.15: accepting
    takes ``unaccepted_memory_lock``).  The model keeps no unaccepted pages, only the boot state
    ``kernel.unaccepted_memory``: an ordinary caller accepts all of it at once and gains no pages the
    walk could not already see, so this returns False.  From 6.16 (Kirill Shutemov's change,
    https://lore.kernel.org/r/20250506112509.905147-2-kirill.shutemov@linux.intel.com; S9.8.1) an
    ``ALLOC_TRYLOCK`` request accepts nothing here, in place of its blanket NULL in try_alloc_pages."""
    kernel = running().kernel
    if not kernel.unaccepted_memory or alloc_flags & ALLOC_TRYLOCK:
        return False  # before 6.16 a trylock request never gets here with memory unaccepted
    flags = spin_lock_irqsave(kernel.unaccepted_memory_lock)
    kernel.unaccepted_memory = False
    spin_unlock_irqrestore(kernel.unaccepted_memory_lock, flags)
    return False
# @end


def deferred_pages_enabled() -> bool:
    """Is struct-page initialisation still running in the background (``deferred_pages_enabled``)?"""
    return running().kernel.deferred_pages


# @since 1
#~ def try_alloc_pages(nid: int, order: int) -> Page | None:  # @until 6.15
def _alloc_pages_nolock(gfp_flags: int, nid: int, order: int, frozen: bool) -> Page | None:  # @since 6.15
    """Allocate from any context, never spinning: NULL when a lock is busy (patch 1, 97769a53f117).

    ``try_alloc_pages_noprof`` (rules R1.1-R1.17): a mask with neither reclaim bit, so
    ``gfpflags_allow_spinning()`` is false; ``ALLOC_TRYLOCK`` with no watermark selector (the min
    watermark); early NULL on PREEMPT_RT in NMI or hard-IRQ, for orders the pcp does not cache, while
    memory is unaccepted or struct pages are still being initialised; the fast path only.  The page is
    zeroed (which also keeps KMSAN's hook safe in any context) and not compound.  ``nid`` may be
    ``NUMA_NO_NODE``.  From patch 5 (e8d78dbd0199; R5.1-R5.6) the mask carries ``__GFP_ACCOUNT`` and
    the page is charged to the memcg of the context (:func:`~tryalloc.mm.memcontrol.current_obj_cgroup`)
    with that non-spinning mask; if the charge fails the page goes back through
    :func:`free_pages_nolock` and the call returns NULL.  An order outside ``0..MAX_PAGE_ORDER`` or an
    unknown node raises :class:`~tryalloc.errors.InvalidArgumentError` here, where C would just return
    NULL.

    At level 6.15 this is the body every release's entry shares (``try_alloc_pages_noprof`` of 6.15,
    ``alloc_pages_nolock_noprof`` of 6.16-6.17, ``alloc_frozen_pages_nolock_noprof`` of 6.18):
    ``gfp_flags`` is what the entry adds to the fixed mask (``__GFP_ACCOUNT`` up to 6.17, the caller's
    flags and ``__GFP_COMP`` from 6.18), and a ``frozen`` page keeps refcount 0 and goes back through
    the frozen free path with ``FPI_TRYLOCK`` when its charge fails (S9.10.1).
    """
    check_order(order)
    if nid != NUMA_NO_NODE:
        check_nid(nid)
    #~ gfp = __GFP_NOWARN | __GFP_ZERO | __GFP_NOMEMALLOC  # @until 5
    #~ gfp = __GFP_NOWARN | __GFP_ZERO | __GFP_NOMEMALLOC | __GFP_ACCOUNT  # @since 5 @until 6.15
    gfp = gfp_flags | __GFP_NOWARN | __GFP_ZERO | __GFP_NOMEMALLOC  # @since 6.15
    alloc_flags = ALLOC_TRYLOCK
    # on PREEMPT_RT spin_trylock() takes the rt_mutex's raw lock (unsafe in NMI), and in hard-IRQ it would
    # make the interrupted task the lock's owner (as the kernel's comment at this check says, 97769a53f117)
    if running().kernel.config.preempt_rt and (in_nmi() or in_hardirq()):
        return None
    # @since 6.15
    # on UP spin_trylock cannot fail, so an NMI would walk into the lists its task holds (620b46ed6ae1)
    if not running().kernel.config.smp and in_nmi() and fixed("nmi-on-up"):
        return None
    # @end
    if not pcp_allowed_order(order):
        return None
    # accepting memory and growing deferred struct pages both take locks
    #~ if has_unaccepted_memory():  # @until 6.15
    # @since 6.15
    if has_unaccepted_memory() and not fixed("unaccepted-memory-bail"):  # gone in 6.16 (S9.8.1)
    # @end
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
    # @since 6.15
    if page is not None and not frozen and fixed("missing-refcount"):
        set_page_refcounted(page)  # 2985dae1e521 (S9.6.1): the page came out frozen
    # @end
    # @since 5
    # the caller picked the memcg (set_active_memcg); a failed charge frees without spinning
    #~ if (memcontrol.memcg_kmem_online() and page is not None  # @until 6.15
    if (gfp & __GFP_ACCOUNT and memcontrol.memcg_kmem_online() and page is not None  # @since 6.15
            and memcontrol.__memcg_kmem_charge_page(page, gfp, order) != 0):
        #~ free_pages_nolock(page, order)  # @until 6.15
        # @since 6.15
        if frozen:
            __free_unref_page(page, order, FPI_TRYLOCK)  # the frozen free path (__free_frozen_pages)
        else:
            free_pages_nolock(page, order)
        # @end
        page = None
    # @end
    trace_mm_page_alloc(page=page, order=order, gfp_flags=gfp, migratetype=ac.migratetype)
    return page
# @end


# @since 6.15
def _release() -> str:
    return running().kernel.config.release


def try_alloc_pages(nid: int, order: int) -> Page | None:
    """``try_alloc_pages(nid, order)`` as 6.15 has it (``include/linux/gfp.h`` wraps
    ``try_alloc_pages_noprof``): the fixed mask with ``__GFP_ACCOUNT``, see :func:`_alloc_pages_nolock`.

    6.16 renamed it ``alloc_pages_nolock`` ("mm: Rename try_alloc_pages() to alloc_pages_nolock()",
    https://lore.kernel.org/r/20250517003446.60260-1-alexei.starovoitov@gmail.com; S9.9.1): a NULL means
    no memory now, not "busy, try again".  On a machine of release 6.16 or later the old name is gone, so
    the model raises :class:`~tryalloc.errors.InvalidArgumentError` naming the new one (C would fail to
    link); nothing has run."""
    if fixed("nolock-rename"):
        raise InvalidArgumentError(f"try_alloc_pages is called alloc_pages_nolock from 6.16 on (this machine "
                                   f"runs release {_release()}): call alloc_pages_nolock")
    return _alloc_pages_nolock(__GFP_ACCOUNT, nid, order, frozen=False)


def _nolock_args(args: tuple, names: tuple[str, ...]) -> tuple:
    if len(args) != len(names) or not all(isinstance(a, int) and not isinstance(a, bool) for a in args):
        raise InvalidArgumentError(f"at release {_release()} the signature is alloc_pages_nolock"
                                   f"({', '.join(names)}), ints; got {args!r}")
    return args


def _nolock_gfp(gfp_flags: int) -> int:
    """6.18's mask for the nolock entries: the caller's flags (``__GFP_ACCOUNT`` is the only one meant;
    any other gives a one-time VM warning and the allocation goes on, S9.9.2) plus ``__GFP_COMP``."""
    kernel = running().kernel
    if gfp_flags & ~__GFP_ACCOUNT and not kernel.nolock_gfp_warned:
        kernel.nolock_gfp_warned = True  # VM_WARN_ON_ONCE
        event("WARN", f"alloc_frozen_pages_nolock: gfp_flags {format_gfp(gfp_flags)} beyond __GFP_ACCOUNT")
    return gfp_flags | __GFP_COMP


def alloc_pages_nolock(*args: int) -> Page | None:
    """The nolock allocator from 6.16 on; the signature depends on the release (one Python function
    for both C prototypes, checked at the call).

    6.16-6.17: ``alloc_pages_nolock(nid, order)``, :func:`try_alloc_pages` under its new name (S9.9.1).
    6.18 on: ``alloc_pages_nolock(gfp_flags, nid, order)`` ("mm: Allow GFP_ACCOUNT to be used in
    alloc_pages_nolock()", likely 99253de51f80, v4 at
    https://lore.kernel.org/r/20250718021646.73353-4-alexei.starovoitov@gmail.com): the caller's flags are
    OR'd into ``__GFP_NOWARN | __GFP_ZERO | __GFP_NOMEMALLOC | __GFP_COMP``, a bit other than
    ``__GFP_ACCOUNT`` warns once (S9.9.2), and only ``__GFP_ACCOUNT`` gets the page charged (S9.9.3).
    It is :func:`alloc_frozen_pages_nolock` plus the first reference (S9.10.1).  Before 6.16 the name
    does not exist: :class:`~tryalloc.errors.InvalidArgumentError`."""
    if not fixed("nolock-rename"):
        raise InvalidArgumentError(f"alloc_pages_nolock is 6.16's name of try_alloc_pages (this machine runs "
                                   f"release {_release()}): call try_alloc_pages")
    if not fixed("nolock-gfp-argument"):
        nid, order = _nolock_args(args, ("nid", "order"))
        return _alloc_pages_nolock(__GFP_ACCOUNT, nid, order, frozen=False)
    gfp_flags, nid, order = _nolock_args(args, ("gfp_flags", "nid", "order"))
    if not fixed("frozen-nolock"):
        return _alloc_pages_nolock(_nolock_gfp(gfp_flags), nid, order, frozen=False)
    page = alloc_frozen_pages_nolock(gfp_flags, nid, order)
    if page is not None and fixed("missing-refcount"):
        set_page_refcounted(page)
    return page


def alloc_frozen_pages_nolock(gfp_flags: int, nid: int, order: int) -> Page | None:
    """The nolock allocator's frozen form, 6.18 on ("mm: Introduce alloc_frozen_pages_nolock()",
    d7242af86434, https://lore.kernel.org/r/20250718021646.73353-5-alexei.starovoitov@gmail.com; S9.10.1):
    the page comes back with refcount 0 (for slab), and a failed charge frees it through the frozen free
    path with ``FPI_TRYLOCK``.  Before 6.18 it does not exist: :class:`~tryalloc.errors.InvalidArgumentError`."""
    if not fixed("frozen-nolock"):
        raise InvalidArgumentError(f"alloc_frozen_pages_nolock arrived in 6.18 (this machine runs release "
                                   f"{_release()})")
    _nolock_args((gfp_flags, nid, order), ("gfp_flags", "nid", "order"))
    return _alloc_pages_nolock(_nolock_gfp(gfp_flags), nid, order, frozen=True)
# @end


def numa_node_id() -> int:
    run = running()
    return cpu_to_node(run.kernel, run.cpu.id)


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
    ``order`` was validated by the entry point (:func:`___free_pages`, :func:`__free_unref_page`).
    """
    cfg = running().kernel.config
    if not isinstance(page, Page):
        raise InvalidArgumentError(f"expected a Page, got {page!r}")
    if PageBuddy(page):
        raise bad_page(page, "page is already free in the buddy allocator (double free)")
    if PageTail(page):
        raise bad_page(page, "freeing a tail page of a compound page")
    refs = page_ref_count(page)
    if refs != extra_ref:
        raise bad_page(page, "nonzero _refcount" if refs > extra_ref else
                       "refcount underflow: freeing a page nobody holds (never allocated, or freed already)")
    if page.pfn + (1 << order) > page.mem_map.nr_pages or page.pfn & ((1 << order) - 1):
        raise bad_page(page, f"pfn is not the start of an order-{order} block")
    if PageHead(page) and compound_order(page) != order and cfg.debug_vm:
        raise vm_bug_on_page(page, f"compound && compound_order(page) != order: compound page of order "
                                   f"{compound_order(page)} freed with order {order}")
    if cfg.debug_vm and order:
        mm, head = page.mem_map, page.pfn
        for pfn in range(head + 1, head + (1 << order)):
            if mm.flags[pfn] >> PG_buddy & 1 or mm._refcount[pfn] or (
                    mm.compound_head[pfn] >= 0 and mm.compound_head[pfn] != head):
                raise bad_page(Page(pfn, mm), f"sub-page of an order-{order} block at pfn {head:#x} "
                                              f"is free or in use")


#~ def free_pages_prepare(page: Page, order: int) -> bool:  # @until 6.15
def __free_pages_prepare(page: Page, order: int, fpi_flags: int) -> bool:  # @since 6.15
    """Ready a page for the free lists: bad-page checks, ``mm_page_free``, memcg uncharge,
    compound teardown, page_owner reset, poisoning.  Returns True (a bad page raises instead).

    Until 2026 the kernel's ``free_pages_prepare(page, order)`` ignores how the page is freed.  Level
    6.15 has the fpi-taking form of the 2026 fix ("mm/page_alloc: skip debug_check_no_{obj,locks}_freed
    with FPI_TRYLOCK", 338ad1e84d15, https://lore.kernel.org/r/20260209062639.16577-1-harry.yoo@oracle.com;
    S9.12.1), whose skip applies from release 2026 (:func:`~tryalloc.series.mutants.fixed`); the model
    has no compaction or folio batch free, the FPI_NONE callers of the fix, and no lockdep
    ``debug_check_no_locks_freed`` (only the debug-objects check, which takes a lock)."""
    _check_free(page, order)
    trace_mm_page_free(page=page, order=order)
    if memcontrol.memcg_kmem_online() and page.memcg_data:
        memcontrol.__memcg_kmem_uncharge_page(page, order)
    if PageHead(page):
        clear_compound_page(page, compound_order(page))
    page_owner.reset_page_owner(page, order)
    #~ if running().kernel.config.debug_objects:  # @until 6.15
    # the 2026 fix 338ad1e84d15 (S9.12.1) skips it for FPI_TRYLOCK; before, it spins on its hash lock (R2.14)
    nolock = fpi_flags & FPI_TRYLOCK and fixed("debug-checks-under-trylock")  # @since 6.15
    if running().kernel.config.debug_objects and not nolock:  # @since 6.15
        debug_check_no_obj_freed(page, order)
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


# @since 6.15
def _rt_in_nmi_or_hardirq() -> bool:
    return running().kernel.config.preempt_rt and (in_nmi() or in_hardirq())


def can_spin_trylock() -> bool:
    """May this context trylock a spinlock at all?  Not on PREEMPT_RT in NMI or hard-IRQ (the lock is an
    rt_mutex), and not in an NMI on a uniprocessor kernel, where a trylock cannot fail.  *Proposed* in
    2026 with Brendan Jackman's alloc-nolock fixes (not known to be merged; e.g.
    https://lore.kernel.org/r/20260715-alloc-nolock-fixes-v1-2-fadc49952dda@google.com; S9.14.1); the
    free path asks it only at release "proposed" (:func:`~tryalloc.series.mutants.fixed`)."""
    return not (_rt_in_nmi_or_hardirq() or (not running().kernel.config.smp and in_nmi()))
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
        # proposed (S9.14.1): where a trylock is unsafe, every path defers without trying
        unsafe = not can_spin_trylock() and fixed("trylock-where-unsafe")
        flags = None if unsafe else spin_trylock_irqsave(z.lock)
        if flags is None:
            add_page_to_zone_llist(z, page, order)
            return
    else:
        flags = (not fixed("second-trylock") and spin_trylock_irqsave(z.lock)) or spin_lock_irqsave(z.lock)
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
    #~ if free_pages_prepare(page, order):  # @until 6.15
    if __free_pages_prepare(page, order, fpi_flags):  # @since 6.15
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
    #~ if not free_pages_prepare(page, order):  # @until 6.15
    if not __free_pages_prepare(page, order, fpi_flags):  # @since 6.15
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
    #~ if fpi_flags & FPI_TRYLOCK and running().kernel.config.preempt_rt and (in_nmi() or in_hardirq()):  # @until 6.15
    # @since 6.15
    # the proposal of 2026 (S9.14.1) asks can_spin_trylock(), which adds the NMI on a UP kernel
    unsafe = not can_spin_trylock() if fixed("trylock-where-unsafe") else _rt_in_nmi_or_hardirq()
    if fpi_flags & FPI_TRYLOCK and unsafe:
    # @end
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
    compound head, free the tail sub-blocks ``order-1 .. 0`` the caller gave up: the holder of the extra
    reference keeps only the first page (v6.13: https://elixir.bootlin.com/linux/v6.13/C/ident/__free_pages).
    (Patch 2 made this the body of both ``__free_pages`` and ``free_pages_nolock``, with the free flags
    threaded through.)"""
    check_page(page)
    check_order(order)
    head = PageHead(page)
    # validate everything this call would free before dropping the reference (see _check_free)
    shared = page_ref_count(page) > 1
    if not shared:
        _check_free(page, order, extra_ref=1)
    elif not head:
        for o in range(order):
            _check_free(page + (1 << o), o)
    if shared:  # another CPU may drop the last reference around ours: the race is a scheduling point
        point("put_page_testzero", page)
    if put_page_testzero(page):
        #~ free_unref_page(page, order)  # @until 2
        __free_unref_page(page, order, fpi_flags)  # @since 2
    elif not _head_after_put(page, head):
        while order > 0:
            order -= 1
            #~ free_unref_page(page + (1 << order), order)  # @until 2
            __free_unref_page(page + (1 << order), order, fpi_flags)  # @since 2


def _head_after_put(page: Page, head_before_put: bool) -> bool:
    """Was the page a compound head?  The kernel decides on ``PageHead`` as read *before* its
    ``put_page_testzero``: once its reference is gone the holder of the last one may free the compound
    page, which then reads as no head, and the tails would be freed a second time ("mm: page_alloc: fix
    page corruption caused by racy check in __free_pages", Feb 2023, Fixes: e320d3012d25).  The mutant
    ``racy-free-pages-head`` (:mod:`tryalloc.series.mutants`) reads it again here, a racy read: a
    scheduling point."""
    if fixed("racy-free-pages-head"):
        return head_before_put
    point("PageHead", page)
    return PageHead(page)


# @since 2
def __free_pages(page: Page, order: int) -> None:
    ___free_pages(page, order, FPI_NONE)


def free_pages_nolock(page: Page, order: int) -> None:
    """Free from any context without spinning (patch 2, 8c57b687e833; R2.1-R2.14).

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


"""Zones, free areas and per-CPU pagesets (``include/linux/mmzone.h``).

One node has one zone (``ZONE_NORMAL``) in this model.  A zone owns:

* ``free_area[order].free_list[migratetype]``: the buddy free lists.  Each list is an ``OrderedDict``
  keyed by the pfn of a free block's first page, so removing a buddy found by pfn is O(1) and the
  head/tail distinction of ``list_add``/``list_add_tail`` survives (``move_to_end(last=False)``).
* ``lock``: ``zone->lock``, a ``spinlock_t`` taken only with the irqsave variants (v6.13
  https://elixir.bootlin.com/linux/v6.13/source/mm/page_alloc.c).
* ``per_cpu_pageset``: a :class:`~tryalloc.kernel.percpu.PerCpu` of :class:`per_cpu_pages`, each
  with its own ``spinlock_t`` (lockdep class ``&pcp->lock``).
* the pageblock migratetypes (``pageblock_flags``), one byte per pageblock.
* ``vm_stat[NR_FREE_PAGES]`` and the three watermarks.
"""
from __future__ import annotations

from collections import OrderedDict, deque

from ..kernel.locking import spinlock_t
from ..kernel.percpu import PerCpu, per_cpu_ptr
from ..lib.llist import llist_head

MIGRATE_UNMOVABLE = 0
MIGRATE_MOVABLE = 1
MIGRATE_RECLAIMABLE = 2
#: The first migratetype without pcp lists (``MIGRATE_PCPTYPES``); highatomic shares its value.
MIGRATE_PCPTYPES = 3
MIGRATE_HIGHATOMIC = MIGRATE_PCPTYPES
MIGRATE_ISOLATE = 4
MIGRATE_TYPES = 5
MIGRATETYPE_NAMES = ("Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate")

#: ``PAGE_ALLOC_COSTLY_ORDER``: the largest order every pcp caches.
PAGE_ALLOC_COSTLY_ORDER = 3
NR_LOWORDER_PCP_LISTS = MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER + 1)
#: ``NR_PCP_THP``: with THP the pcp has two more lists for ``HPAGE_PMD_ORDER``, one for movable blocks and
#: one shared by unmovable and reclaimable ones (v6.13 ``include/linux/mmzone.h``).
NR_PCP_THP = 2
#: ``CONFIG_PCP_BATCH_SCALE_MAX`` (default 5): bounds ``free_count``, the drain chunk and ``alloc_factor``.
CONFIG_PCP_BATCH_SCALE_MAX = 5
#: ``pcp->flags`` bits: the previous free was of order 1..3; the pcp may batch-free high orders
#: (``PCPF_FREE_HIGH_BATCH`` comes from the CPU's cache size, which the model has not: never set).
PCPF_PREV_FREE_HIGH_ORDER = 1 << 0
PCPF_FREE_HIGH_BATCH = 1 << 1

WMARK_MIN, WMARK_LOW, WMARK_HIGH = 0, 1, 2
NR_FREE_PAGES = "NR_FREE_PAGES"


def migratetype_is_mergeable(mt: int) -> bool:
    """Free blocks of these types may merge across pageblocks (``mm/internal.h``)."""
    return mt < MIGRATE_PCPTYPES


class free_area:
    """``struct free_area``: the free blocks of one order, one list per migratetype."""

    __slots__ = ("free_list", "nr_free")

    def __init__(self):
        self.free_list = [OrderedDict() for _ in range(MIGRATE_TYPES)]
        self.nr_free = 0


class per_cpu_pages:
    """``struct per_cpu_pages``: one CPU's cache of free pages for one zone.

    ``lists[pindex]`` holds pfns, head on the left; ``count`` is in pages.  ``high`` moves between
    ``high_min`` and ``high_max``; boot sets the two equal (as ``vm.percpu_pagelist_high_fraction`` does),
    so the automatic tuning of ``high`` is off unless a scenario widens the range with
    :func:`~tryalloc.mm.page_alloc.pageset_update`.  ``free_count`` counts recent frees and
    ``alloc_factor`` recent refills (v6.13, see ``nr_pcp_free`` and ``nr_pcp_alloc``).
    """

    def __init__(self, name: str, nr_lists: int, high: int, batch: int):
        self.lock = spinlock_t(name, cls="&pcp->lock")
        self.lists = [deque() for _ in range(nr_lists)]
        self.count = 0
        self.high = high
        self.high_min = high
        self.high_max = high
        self.batch = batch
        self.free_count = 0
        self.alloc_factor = 0
        self.flags = 0

    def __repr__(self) -> str:
        return f"<per_cpu_pages {self.lock.name} count={self.count} high={self.high} batch={self.batch}>"


class zone:
    """``struct zone``: one node's ``ZONE_NORMAL``, pfns ``zone_start_pfn .. zone_end_pfn - 1``."""

    def __init__(self, kernel, nid: int, start_pfn: int, nr_pages: int, nr_pcp_lists: int):
        cfg = kernel.config
        self.name = "Normal"
        self.nid = nid
        self.zone_start_pfn = start_pfn
        self.spanned_pages = nr_pages
        self.managed_pages = nr_pages
        prefix = "" if cfg.nr_nodes == 1 else f"node{nid}:"
        self.lock = spinlock_t(prefix + "zone->lock", cls="&zone->lock")
        # @since 2
        # pages to be freed once the next trylock of zone->lock succeeds (patch 2, 8c57b687e833)
        self.trylock_free_pages = llist_head(prefix + "zone->trylock_free_pages")
        # @end
        self.free_area = [free_area() for _ in range(cfg.max_order + 1)]
        self.pageblock_order = cfg.pageblock_order
        self.pageblock_flags = bytearray([MIGRATE_MOVABLE]) * (nr_pages >> cfg.pageblock_order)
        self.vm_stat = {NR_FREE_PAGES: 0}
        self._watermark = [0, 0, 0]
        self.watermark_boost = 0
        self.lowmem_reserve = 0
        self.per_cpu_pageset = PerCpu(prefix + "zone->per_cpu_pageset", cfg.nr_cpus,
                                      lambda cpu: per_cpu_pages(f"{prefix}pcp->lock[cpu{cpu}]", nr_pcp_lists, 0, 1))

    def pcp(self, cpu: int) -> per_cpu_pages:
        """CPU ``cpu``'s pageset of this zone: ``per_cpu_ptr(zone->per_cpu_pageset, cpu)``.  Reading it
        between runs is how a chapter or a test watches a pcp (``zone.pcp(0).count``)."""
        return per_cpu_ptr(self.per_cpu_pageset, cpu)

    def deferred_blocks(self) -> list[tuple[int, int]]:
        """The blocks waiting on ``zone->trylock_free_pages`` as ``(pfn, order)``, head first (the
        last one deferred: ``llist_add`` pushes at the front).  Before patch 2 there is no such list."""
        # @until 2
        #~ return []
        # @end
        return [(node.payload.pfn, node.payload.order) for node in self.trylock_free_pages]  # @since 2

    @property
    def zone_end_pfn(self) -> int:
        return self.zone_start_pfn + self.spanned_pages

    def wmark_pages(self, i: int) -> int:
        return self._watermark[i] + self.watermark_boost

    def min_wmark_pages(self) -> int:
        return self.wmark_pages(WMARK_MIN)

    def low_wmark_pages(self) -> int:
        return self.wmark_pages(WMARK_LOW)

    def high_wmark_pages(self) -> int:
        return self.wmark_pages(WMARK_HIGH)

    def __repr__(self) -> str:
        return f"<zone {self.name} node{self.nid} free={self.vm_stat[NR_FREE_PAGES]}>"


def zone_page_state(zone: zone, item: str) -> int:
    return zone.vm_stat[item]

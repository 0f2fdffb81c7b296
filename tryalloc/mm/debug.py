"""Checks and views of the page allocator: invariants, ``/proc/buddyinfo``, ``/proc/zoneinfo``, data for
pictures.  None of these is a scheduling point; call them between runs (they read the machine's
state directly, as a debugger would, and need no running context).

:func:`check_invariants` is the model's page-conservation detector (invariant I2):
buddy + pcp + deferred + allocated = total, where "allocated" is counted independently by the PGALLOC
and PGFREE events and "deferred" are the pages waiting on ``zone->trylock_free_pages`` (from patch 2;
PGFREE counts them only once drained, R2.10); no free page in two places; no two free buddies left
unmerged; ``pcp->count`` equal to the pages on its lists; ``NR_FREE_PAGES`` and each ``nr_free`` equal
to the lists.
"""
from __future__ import annotations

from ..errors import InvariantError as Bad
from .mmzone import MIGRATE_PCPTYPES, NR_FREE_PAGES, migratetype_is_mergeable
from .page import PG_buddy
from .page_alloc import NR_LOWORDER_PCP_LISTS, PAGE_ALLOC_COSTLY_ORDER, PGALLOC, PGFREE, thp_order

PFN_ALLOCATED, PFN_BUDDY, PFN_PCP, PFN_DEFERRED = 0, 1, 2, 3
PFN_STATE_NAMES = ("allocated", "buddy", "pcp", "deferred")


def _pindex_order(kernel, pindex: int) -> int:
    if pindex >= NR_LOWORDER_PCP_LISTS:
        return thp_order(kernel.config)
    order = pindex // MIGRATE_PCPTYPES
    assert order <= PAGE_ALLOC_COSTLY_ORDER
    return order


def pfn_states(kernel) -> bytearray:
    """One byte per pfn: :data:`PFN_BUDDY`, :data:`PFN_PCP` or :data:`PFN_ALLOCATED` (for pictures)."""
    states = bytearray(kernel.mem_map.nr_pages)
    for z in kernel.zones:
        for order, area in enumerate(z.free_area):
            for lst in area.free_list:
                for pfn in lst:
                    states[pfn:pfn + (1 << order)] = bytes([PFN_BUDDY]) * (1 << order)
        for pcp in z.per_cpu_pageset:
            for pindex, lst in enumerate(pcp.lists):
                n = 1 << _pindex_order(kernel, pindex)
                for pfn in lst:
                    states[pfn:pfn + n] = bytes([PFN_PCP]) * n
        # @since 2
        for node in z.trylock_free_pages:
            n = 1 << node.payload.order
            states[node.payload.pfn:node.payload.pfn + n] = bytes([PFN_DEFERRED]) * n
        # @end
    return states


def free_counts(z) -> list[int]:
    """Free blocks per order in buddy (the numbers of ``/proc/buddyinfo``)."""
    return [area.nr_free for area in z.free_area]


def buddyinfo(kernel) -> str:
    """``/proc/buddyinfo``: free blocks per order, one line per zone."""
    return "\n".join(f"Node {z.nid}, zone {z.name:>8} " + " ".join(f"{n:6d}" for n in free_counts(z))
                     for z in kernel.zones)


def zoneinfo(kernel) -> str:
    """The part of ``/proc/zoneinfo`` the model has: free pages, watermarks, sizes, pagesets."""
    out = []
    for z in kernel.zones:
        out += [f"Node {z.nid}, zone {z.name:>8}", f"  pages free     {z.vm_stat[NR_FREE_PAGES]}",
                f"        min      {z.min_wmark_pages()}", f"        low      {z.low_wmark_pages()}",
                f"        high     {z.high_wmark_pages()}", f"        spanned  {z.spanned_pages}",
                f"        present  {z.spanned_pages}", f"        managed  {z.managed_pages}", "  pagesets"]
        for cpu, pcp in enumerate(z.per_cpu_pageset):
            out += [f"    cpu: {cpu}", f"              count: {pcp.count}", f"              high:  {pcp.high}",
                    f"              batch: {pcp.batch}"]
        out.append(f"  start_pfn:           {z.zone_start_pfn}")
    return "\n".join(out)


def check_invariants(kernel) -> None:
    """Raise :class:`InvariantError` naming the first broken invariant; return quietly otherwise."""
    mm = kernel.mem_map
    where = bytearray(mm.nr_pages)  # 0 = not free, else 1 + PFN_BUDDY/PFN_PCP
    buddy_pages = pcp_pages = 0
    deferred_pages = 0  # @since 2
    for z in kernel.zones:
        max_order = len(z.free_area) - 1
        zone_free = 0
        for order, area in enumerate(z.free_area):
            n = 1 << order
            listed = 0
            for mt, lst in enumerate(area.free_list):
                for pfn in lst:
                    listed += 1
                    if not z.zone_start_pfn <= pfn < z.zone_end_pfn or pfn & (n - 1):
                        raise Bad(f"buddy block pfn {pfn:#x} order {order} is misaligned or outside its zone")
                    if not mm.flags[pfn] >> PG_buddy & 1 or mm.private[pfn] != order:
                        raise Bad(f"buddy block pfn {pfn:#x} on the order-{order} list lacks PG_buddy/order")
                    if any(where[pfn:pfn + n]):
                        raise Bad(f"free page in two places: buddy block pfn {pfn:#x} order {order} overlaps "
                                    f"another free block")
                    if any(mm._refcount[pfn:pfn + n]):
                        raise Bad(f"buddy block pfn {pfn:#x} has a page with a nonzero refcount")
                    where[pfn:pfn + n] = b"\x02" * n
                    buddy = pfn ^ n
                    if (order < max_order and z.zone_start_pfn <= buddy < z.zone_end_pfn
                            and _is_free_block(z, order, buddy) and _mergeable(z, pfn, buddy, order, mt)):
                        raise Bad(f"free buddies left unmerged: pfn {pfn:#x} and {buddy:#x} at order {order}")
            if listed != area.nr_free:
                raise Bad(f"zone {z.nid} order {order}: nr_free {area.nr_free} but {listed} blocks listed")
            zone_free += listed * n
        if zone_free != z.vm_stat[NR_FREE_PAGES]:
            raise Bad(f"zone {z.nid}: NR_FREE_PAGES is {z.vm_stat[NR_FREE_PAGES]} but buddy holds {zone_free}")
        buddy_pages += zone_free
        for cpu, pcp in enumerate(z.per_cpu_pageset):
            on_lists = 0
            for pindex, lst in enumerate(pcp.lists):
                n = 1 << _pindex_order(kernel, pindex)
                for pfn in lst:
                    _claim(where, mm, pfn, n, b"\x03", f"pcp page pfn {pfn:#x} (cpu {cpu})")
                    on_lists += n
            if on_lists != pcp.count:
                raise Bad(f"zone {z.nid} cpu {cpu}: pcp->count {pcp.count} but {on_lists} pages on its lists")
            pcp_pages += on_lists
        # @since 2
        for node in z.trylock_free_pages:
            pfn, n = node.payload.pfn, 1 << node.payload.order
            _claim(where, mm, pfn, n, b"\x04", f"deferred page pfn {pfn:#x}")
            deferred_pages += n
        # @end
    #~ allocated = kernel.vm_events[PGALLOC] - kernel.vm_events[PGFREE]  # @until 2
    allocated = kernel.vm_events[PGALLOC] - kernel.vm_events[PGFREE] - deferred_pages  # @since 2
    #~ if buddy_pages + pcp_pages + allocated != mm.nr_pages:  # @until 2
    #~     raise Bad(f"page conservation: buddy {buddy_pages} + pcp {pcp_pages} + allocated {allocated} "  # @until 2
    #~               f"(PGALLOC - PGFREE) != total {mm.nr_pages}")  # @until 2
    # @since 2
    if buddy_pages + pcp_pages + deferred_pages + allocated != mm.nr_pages:
        raise Bad(f"page conservation: buddy {buddy_pages} + pcp {pcp_pages} + deferred {deferred_pages} + "
                  f"allocated {allocated} (PGALLOC - PGFREE - deferred) != total {mm.nr_pages}")
    # @end


def _claim(where: bytearray, mm, pfn: int, n: int, mark: bytes, what: str) -> None:
    """Record ``n`` pages from ``pfn`` as free in one place (pcp or deferred list), refusing pages
    already free elsewhere -- or twice on the same list -- and pages still marked buddy or referenced."""
    if any(where[pfn:pfn + n]):
        raise Bad(f"free page in two places: {what} is also free elsewhere (or listed twice)")
    if mm.flags[pfn] >> PG_buddy & 1 or mm._refcount[pfn]:
        raise Bad(f"{what} is marked buddy or referenced")
    where[pfn:pfn + n] = mark * n


def _is_free_block(z, order: int, pfn: int) -> bool:
    return any(pfn in lst for lst in z.free_area[order].free_list)


def _mergeable(z, pfn: int, buddy: int, order: int, mt: int) -> bool:
    if order < z.pageblock_order:
        return True
    other = z.pageblock_flags[(buddy - z.zone_start_pfn) >> z.pageblock_order]
    return mt == other or (migratetype_is_mergeable(mt) and migratetype_is_mergeable(other))

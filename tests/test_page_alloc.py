"""The baseline (level 0) page allocator: buddy split/merge, pcp lists, watermarks, zonelists, the free
path's checks, tracepoints under zone->lock, and the re-entrancy deadlock the series removes."""
import random

import pytest
from machines import small_machine

from tryalloc import Scripted, When, explore
from tryalloc.errors import (
    BadPageError,
    DeadlockError,
    InvalidArgumentError,
    InvalidContextError,
    InvariantError,
    VmBugError,
)
from tryalloc.include import gfp as G
from tryalloc.kernel.locking import spin_lock_irqsave, spin_unlock_irqrestore
from tryalloc.mm import page as P
from tryalloc.mm import page_alloc as A
from tryalloc.mm.debug import PFN_BUDDY, buddyinfo, check_invariants, free_counts, pfn_states, zoneinfo
from tryalloc.mm.mmzone import MIGRATE_MOVABLE, NR_FREE_PAGES
from tryalloc.trace import register_trace


def small(**kw):
    """64 pages, max_order 3, pageblock_order 3, no watermarks: every page is usable."""
    return small_machine(pages_per_node=kw.pop("pages_per_node", 64), max_order=kw.pop("max_order", 3), **kw)


def snapshot(k):
    z = k.zones
    return (buddyinfo(k), dict(k.vm_events), [p.count for zz in z for p in zz.per_cpu_pageset],
            bytes(pfn_states(k)), bytes(k.mem_map._refcount), bytes(k.mem_map.flags))


def test_boot_hands_every_page_to_buddy():
    k = small()
    assert free_counts(k.zones[0]) == [0, 0, 0, 8]
    assert k.zones[0].vm_stat[NR_FREE_PAGES] == 64
    assert buddyinfo(k) == "Node 0, zone   Normal      0      0      0      8"
    check_invariants(k)


def test_split_and_merge_are_exact():
    k = small()
    z = k.zones[0]

    def split_then_merge():
        flags = spin_lock_irqsave(z.lock)
        page = A.__rmqueue_smallest(z, 0, MIGRATE_MOVABLE)
        after_split = free_counts(z), sorted(p for a in z.free_area for lst in a.free_list for p in lst)
        A.__free_one_page(page, page.pfn, z, 0, MIGRATE_MOVABLE, A.FPI_NONE)
        spin_unlock_irqrestore(z.lock, flags)
        return page.pfn, after_split

    pfn, (counts, free_pfns) = k.call(split_then_merge)
    # the order-3 block at 0 splits into 4 (order 2), 2 (order 1), 1 (order 0): each buddy at pfn ^ (1 << order)
    assert pfn == 0 and counts == [1, 1, 1, 7]
    assert {1, 2, 4} <= set(free_pfns) and 0 not in free_pfns
    assert free_counts(z) == [0, 0, 0, 8]  # merged back all the way


def test_buddy_is_pfn_xor_size():
    k = small()

    def go():
        pages = [A.alloc_pages(G.GFP_KERNEL, 0) for _ in range(8)]  # all of block 0..7
        A.drain_all_pages()
        for p in pages:
            if p.pfn != 5:
                A.__free_pages(p, 0)
        A.drain_all_pages()
        return pages

    k.call(go)
    z = k.zones[0]
    # with 5 held, 4 has no free buddy at order 0 and {4} cannot join {6,7}; 0..3 merged to order 2
    assert 4 in z.free_area[0].free_list[0] and 6 in z.free_area[1].free_list[0]
    assert 0 in z.free_area[2].free_list[0]
    check_invariants(k)


def test_pcp_refill_by_batch_and_bulk_free_past_high():
    k = small()
    pcp = k.zones[0].per_cpu_pageset._slots[0]
    pcp.batch, pcp.high = 4, 6

    def go():
        first = A.alloc_pages(G.GFP_KERNEL, 0)
        refilled = pcp.count
        pages = [first] + [A.alloc_pages(G.GFP_KERNEL, 0) for _ in range(7)]
        seen = []
        for p in pages:
            A.__free_pages(p, 0)
            seen.append(pcp.count)
        return refilled, seen

    refilled, seen = k.call(go)
    assert refilled == 3  # batch of 4 moved, one handed out
    assert max(seen) < pcp.high and pcp.count == seen[-1]
    assert any(a > b for a, b in zip(seen, seen[1:], strict=False))  # a bulk free happened
    check_invariants(k)


def test_watermark_refusal_and_warn_alloc():
    k = small()
    A.setup_per_zone_wmarks(k, 1024)  # min 256 pages > the zone's 64
    assert k.call(A.alloc_pages, G.GFP_NOWAIT, 0) is None
    ops = [e[3] for e in k.events]
    assert "watermark-refused" in ops and "wakeup_kswapd" in ops and "warn_alloc" in ops
    assert k.call(A.alloc_pages, G.GFP_NOWAIT | G.__GFP_NOWARN, 0) is None
    assert "warn_alloc" not in [e[3] for e in k.events]
    check_invariants(k)


def test_atomic_dips_below_min_where_nowait_cannot():
    k = small()
    A.setup_per_zone_wmarks(k, 240)  # min 60, low 75 of 64 free: low refuses, reserves admit
    z = k.zones[0]
    assert z.min_wmark_pages() == 60 and z.low_wmark_pages() > 64
    assert k.call(A.alloc_pages, G.GFP_ATOMIC, 0) is not None
    assert "watermark-refused" in [e[3] for e in k.events]  # the fast path at low refused first


def test_zonelist_falls_back_to_the_other_node():
    k = small(nr_nodes=2)

    def go():
        local = [A.alloc_pages(G.GFP_KERNEL | G.__GFP_THISNODE, 3) for _ in range(8)]
        assert A.alloc_pages(G.GFP_KERNEL | G.__GFP_THISNODE | G.__GFP_NOWARN, 3) is None
        return local, A.alloc_pages(G.GFP_KERNEL, 3)

    local, remote = k.call(go, cpu=0)
    assert all(P.page_to_nid(p) == 0 for p in local)
    assert P.page_to_nid(remote) == 1
    check_invariants(k)


def test_gfp_zero_and_poison_on_free():
    k = small()

    def go():
        p = A.alloc_pages(G.GFP_KERNEL | G.__GFP_ZERO, 1)
        zeroed = [p.contents, (p + 1).contents]
        A.__free_pages(p, 1)
        return p, zeroed

    p, zeroed = k.call(go)
    assert zeroed == [P.CONTENT_ZERO, P.CONTENT_ZERO]
    assert p.contents == P.CONTENT_POISON


def test_compound_page_setup_and_teardown():
    k = small()
    p = k.call(A.alloc_pages, G.GFP_KERNEL | G.__GFP_COMP, 2)
    assert P.PageHead(p) and P.compound_order(p) == 2
    assert all(P.compound_head(p + i) == p for i in (1, 2, 3)) and P.PageTail(p + 3)
    k.call(A.__free_pages, p, 2)
    assert not P.PageHead(p) and not P.PageTail(p + 3)
    check_invariants(k)


def test_compound_freed_with_other_order_raises_R8_1():
    """R8.1: under DEBUG_VM a compound page freed with a different order raises, and nothing changes."""
    k = small()
    p = k.call(A.alloc_pages, G.GFP_KERNEL | G.__GFP_COMP, 2)
    before = snapshot(k)
    # the kernel's check is VM_BUG_ON_PAGE: a page dump, then BUG(), not bad_page()'s "Bad page state"
    with pytest.raises(VmBugError, match="compound_order") as info:
        k.call(A.__free_pages, p, 1)
    assert not isinstance(info.value, BadPageError)
    assert info.value.title == "kernel BUG at mm/page_alloc.c!"
    assert "page dumped because: VM_BUG_ON_PAGE(compound && compound_order(page) != order)" in info.value.report
    assert snapshot(k) == before and P.page_ref_count(p) == 1  # the stored order was not substituted
    check_invariants(k)


def test_non_compound_extra_reference_frees_only_the_tails():
    k = small()

    def go():
        p = A.alloc_pages(G.GFP_KERNEL, 2)
        P.get_page(p)
        A.__free_pages(p, 2)  # refcount 2 -> 1: pages 1..3 go back (2 as order 1, then 1 as order 0)
        held = P.page_ref_count(p)
        A.drain_all_pages()
        states = bytes(pfn_states(k)[p.pfn:p.pfn + 4])
        A.__free_pages(p, 0)
        return held, states

    held, states = k.call(go)
    assert held == 1 and states == bytes([0, PFN_BUDDY, PFN_BUDDY, PFN_BUDDY])
    k.call(A.drain_all_pages)
    assert free_counts(k.zones[0]) == [0, 0, 0, 8]
    check_invariants(k)


@pytest.mark.parametrize("call, match", [
    (lambda: A.alloc_pages(G.GFP_KERNEL, -1), "order -1"),
    (lambda: A.alloc_pages(G.GFP_KERNEL, 4), "order 4"),
    (lambda: A.alloc_pages_node(7, G.GFP_KERNEL, 0), "node 7"),
    (lambda: A.alloc_pages(1 << 40, 0), "gfp mask"),
])
def test_bad_arguments_raise_and_change_nothing(call, match):
    k = small()
    k.call(lambda: A.__free_pages(A.alloc_pages(G.GFP_KERNEL, 0), 0))
    before = snapshot(k)
    with pytest.raises(InvalidArgumentError, match=match):
        k.call(call)
    assert snapshot(k) == before


@pytest.mark.parametrize("case", ["double", "never", "wrong_order", "tail_of_free"])
def test_bad_frees_raise_bad_page_and_change_nothing(case):
    k = small()
    p = k.call(A.alloc_pages, G.GFP_KERNEL, 1)
    if case == "double":
        k.call(A.__free_pages, p, 1)
        target, order = p, 1
    elif case == "never":
        target, order = k.mem_map.page(40), 0
    elif case == "wrong_order":  # a held order-1 block freed as order 2 covers two free buddy pages
        k.call(A.drain_all_pages)
        target, order = p, 2
    else:
        target, order = k.mem_map.page(p.pfn + 1), 0
    before = snapshot(k)
    with pytest.raises(BadPageError) as info:
        k.call(A.__free_pages, target, order)
    assert "Bad page state" in str(info.value) and f"pfn:{target.pfn:05x}" in str(info.value) or "sub-page" in str(
        info.value)
    assert "refcount:" in str(info.value) and "flags:" in str(info.value)
    assert snapshot(k) == before
    check_invariants(k)


def test_tracepoints_fire_with_and_without_zone_lock():
    k = small()
    z = k.zones[0]
    seen = {}

    def probe(name):
        def record(**fields):
            seen.setdefault(name, []).append((z.lock.owner is not None, fields))
        return record

    for name in ("mm_page_alloc", "mm_page_free", "mm_page_alloc_zone_locked", "mm_page_pcpu_drain"):
        register_trace(k, name, probe(name))

    def go():
        p = A.alloc_pages(G.GFP_KERNEL, 0)
        A.__free_pages(p, 0)
        A.drain_local_pages()

    k.call(go)
    assert all(held for held, _ in seen["mm_page_alloc_zone_locked"])
    assert all(held for held, _ in seen["mm_page_pcpu_drain"])
    assert not any(held for held, _ in seen["mm_page_alloc"] + seen["mm_page_free"])
    assert seen["mm_page_alloc"][0][1]["gfp_flags"] == G.GFP_KERNEL
    assert seen["mm_page_alloc_zone_locked"][0][1]["percpu_refill"] is True
    with pytest.raises(InvalidArgumentError, match="mm_page_bogus"):
        register_trace(k, "mm_page_bogus", print)


def test_probe_allocating_under_zone_lock_deadlocks():
    k = small(detectors={"lockdep": "off"})

    def bpf_prog(**fields):
        A.alloc_pages(G.GFP_ATOMIC, 0)

    register_trace(k, "mm_page_alloc_zone_locked", bpf_prog)
    with pytest.raises(DeadlockError, match="zone->lock"):
        k.call(A.alloc_pages, G.GFP_KERNEL, 0)


def test_nmi_allocating_while_task_holds_zone_lock_deadlocks():
    k = small(detectors={"lockdep": "off"})
    k.spawn(0, lambda: A.alloc_pages(G.GFP_KERNEL, 0))
    k.on_interrupt(0, "nmi", lambda: A.alloc_pages(G.GFP_ATOMIC, 0))
    with pytest.raises(DeadlockError) as info:
        k.run(Scripted(When(cpu=0, op="acquired", obj="zone->lock", inject="nmi")))
    assert "zone->lock" in str(info.value) and info.value.replay


def test_blocking_allocation_in_hardirq_is_invalid_context():
    k = small()
    with pytest.raises(InvalidContextError, match="may sleep"):
        k.call(A.alloc_pages, G.GFP_KERNEL, 0, context="hardirq")
    assert small().call(A.alloc_pages, G.GFP_ATOMIC, 0, context="hardirq") is not None


def test_fault_injection_fails_then_recovers():
    k = small()
    k.fail_page_alloc = A.fault_attr(probability=100, times=1, min_order=0)
    assert k.call(A.alloc_pages, G.GFP_ATOMIC, 0) is None
    assert "fail_page_alloc" in [e[3] for e in k.events]
    assert k.call(A.alloc_pages, G.GFP_ATOMIC, 0) is not None
    check_invariants(k)


def test_invariants_after_random_alloc_free_sequences():
    """I2: buddy + pcp + allocated = total after every step of seeded random sequences."""
    for seed in range(4):
        rng = random.Random(seed)
        k = small(max_order=4, pages_per_node=128)
        held = []
        for _ in range(150):
            cpu = rng.randrange(2)
            if held and (rng.random() < 0.45 or len(held) > 20):
                page, order = held.pop(rng.randrange(len(held)))
                k.call(A.__free_pages, page, order, cpu=cpu)
            else:
                order = rng.choice([0, 0, 0, 1, 2, 3, 4])
                gfp = rng.choice([G.GFP_KERNEL, G.GFP_ATOMIC, G.GFP_HIGHUSER_MOVABLE]) | G.__GFP_NOWARN
                page = k.call(A.alloc_pages, gfp, order, cpu=cpu)
                if page is not None:
                    held.append((page, order))
            check_invariants(k)
        for page, order in held:
            k.call(A.__free_pages, page, order)
        k.call(A.drain_all_pages)
        check_invariants(k)
        assert k.zones[0].vm_stat[NR_FREE_PAGES] == 128


def test_check_invariants_catches_a_lost_page():
    k = small()
    k.zones[0].vm_stat[NR_FREE_PAGES] -= 1
    with pytest.raises(InvariantError, match="NR_FREE_PAGES"):
        check_invariants(k)
    k = small()
    k.vm_events[A.PGALLOC] += 1
    with pytest.raises(InvariantError, match="conservation"):
        check_invariants(k)


def test_explore_two_cpus_alloc_free_keeps_invariants():
    """I2 over every schedule (preemption bound 2) of two CPUs allocating and freeing on a small zone."""
    def build():
        k = small()

        def worker():
            a = A.alloc_pages(G.GFP_KERNEL, 0)
            b = A.alloc_pages(G.GFP_KERNEL, 1)
            A.__free_pages(a, 0)
            A.__free_pages(b, 1)

        k.spawn(0, worker)
        k.spawn(1, worker)
        return k

    result = explore(build, preemption_bound=2, check=lambda k, r: check_invariants(k))
    assert result.ok, result.failures[:1]
    assert result.complete and result.executions > 10


def test_views():
    k = small()
    pcp = k.zones[0].per_cpu_pageset._slots[0]
    pcp.batch, pcp.high = 8, 100
    k.call(A.alloc_pages, G.GFP_KERNEL, 0)
    info = zoneinfo(k)
    assert "pages free     56" in info and "count: 7" in info
    states = pfn_states(k)
    assert states.count(PFN_BUDDY) == 56 and states.count(0) == 1

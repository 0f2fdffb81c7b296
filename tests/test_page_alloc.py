"""The baseline (level 0) page allocator: buddy split/merge, pcp lists, watermarks, zonelists, the free
path's checks, tracepoints under zone->lock, and the re-entrancy deadlock the series removes."""
import random

import pytest
from machines import no_watermarks, small_machine, small_options

from tryalloc import Scripted, When, explore
from tryalloc.errors import (
    BadPageError,
    DeadlockError,
    InvalidArgumentError,
    InvalidContextError,
    InvariantError,
)
from tryalloc.include import gfp as G
from tryalloc.kernel.locking import spin_lock_irqsave, spin_unlock_irqrestore
from tryalloc.kernel.snapshot import changes, snapshot
from tryalloc.mm import page as P
from tryalloc.mm import page_alloc as A
from tryalloc.mm.debug import PFN_BUDDY, buddyinfo, check_invariants, free_counts, pfn_states, zoneinfo
from tryalloc.mm.mmzone import (
    CONFIG_PCP_BATCH_SCALE_MAX,
    MIGRATE_HIGHATOMIC,
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
    NR_FREE_PAGES,
    NR_LOWORDER_PCP_LISTS,
)
from tryalloc.trace import register_trace


def small(**kw):
    """64 pages, max_order 3, pageblock_order 3, no watermarks: every page is usable."""
    return small_machine(pages_per_node=kw.pop("pages_per_node", 64), max_order=kw.pop("max_order", 3), **kw)


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
    pcp = k.zones[0].pcp(0)
    A.pageset_update(pcp, 6, 6, 4)

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
    before = snapshot(k, state_only=True)
    with pytest.raises(InvalidArgumentError, match=match):
        k.call(call)
    assert not changes(k, before)


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
    before = snapshot(k, state_only=True)
    with pytest.raises(BadPageError) as info:
        k.call(A.__free_pages, target, order)
    assert "Bad page state" in str(info.value) and f"pfn:{target.pfn:05x}" in str(info.value) or "sub-page" in str(
        info.value)
    assert "refcount:" in str(info.value) and "flags:" in str(info.value)
    assert not changes(k, before)
    check_invariants(k)


def test_tracepoints_fire_with_and_without_zone_lock():
    k = small()
    z = k.zones[0]
    seen = {}

    def probe(name):
        def record(**fields):
            seen.setdefault(name, []).append((z.lock.owner is not None, fields))
        return record

    for name in ("mm_page_alloc", "mm_page_free", "mm_page_alloc_zone_locked", "mm_page_pcpu_drain",
                 "mm_page_alloc_extfrag"):
        register_trace(k, name, probe(name))

    def go():
        # the first unmovable page steals a movable block (extfrag); the second comes from that block
        p, q = A.alloc_pages(G.GFP_KERNEL, 0), A.alloc_pages(G.GFP_KERNEL, 0)
        A.__free_pages(p, 0)
        A.__free_pages(q, 0)
        A.drain_local_pages()

    k.call(go)
    assert all(held for held, _ in seen["mm_page_alloc_zone_locked"] + seen["mm_page_alloc_extfrag"])
    assert all(held for held, _ in seen["mm_page_pcpu_drain"])
    assert not any(held for held, _ in seen["mm_page_alloc"] + seen["mm_page_free"])
    assert seen["mm_page_alloc"][0][1]["gfp_flags"] == G.GFP_KERNEL
    assert seen["mm_page_alloc_zone_locked"][0][1]["percpu_refill"] is True
    with pytest.raises(InvalidArgumentError, match="mm_page_bogus"):
        register_trace(k, "mm_page_bogus", print)


@pytest.mark.parametrize("tracepoint, gfp", [("mm_page_alloc_zone_locked", G.GFP_KERNEL | G.__GFP_MOVABLE),
                                              ("mm_page_alloc_extfrag", G.GFP_KERNEL)])
def test_probe_allocating_under_zone_lock_deadlocks(tracepoint, gfp):
    """A movable page comes from a movable block (__rmqueue_smallest); the first unmovable one steals a
    movable block (__rmqueue_fallback): either tracepoint runs its probe under zone->lock."""
    k = small(detectors={"lockdep": "off"})

    def bpf_prog(**fields):
        A.alloc_pages(G.GFP_ATOMIC, 0)

    register_trace(k, tracepoint, bpf_prog)
    with pytest.raises(DeadlockError, match="zone->lock"):
        k.call(A.alloc_pages, gfp, 0)


def test_a_fallback_fires_extfrag_not_zone_locked():
    """v6.13 __rmqueue_fallback: stealing fires mm_page_alloc_extfrag with the orders and types involved;
    mm_page_alloc_zone_locked fires only where __rmqueue_smallest takes the block."""
    k = small(nr_cpus=1)
    seen = []
    for name in ("mm_page_alloc_zone_locked", "mm_page_alloc_extfrag"):
        register_trace(k, name, lambda name=name, **f: seen.append((name, k.zones[0].lock.owner is not None, f)))
    page = k.call(A.alloc_pages, G.GFP_KERNEL, 0)  # batch 1: one page, stolen from a movable block
    assert [(name, held) for name, held, _ in seen] == [("mm_page_alloc_extfrag", True)]
    fields = seen[0][2]
    assert fields["page"].pfn == page.pfn and fields["alloc_order"] == 0
    assert fields["fallback_order"] == k.config.max_order  # the largest block first
    assert (fields["alloc_migratetype"], fields["fallback_migratetype"]) == (MIGRATE_UNMOVABLE, MIGRATE_MOVABLE)
    check_invariants(k)



def _eight_pages_out_and_an_empty_pcp():
    """A one-CPU machine whose pcp has high 8 and batch 2, eight order-0 pages allocated and the
    list drained: ``(kernel, pcp, pages)``."""
    k = small(nr_cpus=1)
    pcp = k.zones[0].pcp(0)
    A.pageset_update(pcp, 8, 8, 2)
    pages = [k.call(A.alloc_pages, G.GFP_KERNEL, 0) for _ in range(8)]
    k.call(A.drain_local_pages)
    return k, pcp, pages


def test_a_run_of_frees_returns_high_minus_batch_and_keeps_batch():
    """v6.7+ nr_pcp_free: clamp(free_count, batch, high - batch) pages per bulk free."""
    k, pcp, pages = _eight_pages_out_and_an_empty_pcp()
    assert pcp.count == 0 and pcp.free_count == 0
    counts = []
    for page in pages:
        k.call(A.__free_pages, page, 0)
        counts.append(pcp.count)
    assert counts == [1, 2, 3, 4, 5, 6, 7, 2]  # the eighth free reached high 8 and returned 6 pages
    check_invariants(k)


def test_free_count_sizes_the_bulk_free_and_an_allocation_halves_it():
    k, pcp, pages = _eight_pages_out_and_an_empty_pcp()
    for page in pages[:7]:
        k.call(A.__free_pages, page, 0)
    assert pcp.free_count == 7
    extra = k.call(A.alloc_pages, G.GFP_KERNEL, 0)  # rmqueue_pcplist halves free_count
    assert pcp.free_count == 3 and pcp.count == 6
    k.call(A.__free_pages, pages[7], 0)
    k.call(A.__free_pages, extra, 0)  # count 8 = high, free_count 5
    assert pcp.count == 8 - 5  # clamp(5, 2, 6) pages went back
    # free_count stops at batch << CONFIG_PCP_BATCH_SCALE_MAX
    pcp.free_count = 2 << CONFIG_PCP_BATCH_SCALE_MAX
    k.call(A.__free_pages, k.call(A.alloc_pages, G.GFP_KERNEL, 0), 0)
    assert pcp.free_count == (2 << CONFIG_PCP_BATCH_SCALE_MAX) // 2 + 1


def test_high_is_clamped_between_high_min_and_high_max():
    k = small(nr_cpus=1)
    pcp = k.zones[0].pcp(0)
    A.pageset_update(pcp, 6, 6, 2)
    pcp.high = 40  # outside the range: nr_pcp_high clamps it before comparing
    page = k.call(A.alloc_pages, G.GFP_KERNEL, 0)
    k.call(A.__free_pages, page, 0)
    assert pcp.high == 6
    with pytest.raises(InvalidArgumentError, match="high_min"):
        A.pageset_update(pcp, 8, 4, 2)
    with pytest.raises(InvalidArgumentError, match="batch"):
        A.pageset_update(pcp, 8, 8, 0)
    assert (pcp.high_min, pcp.high_max, pcp.batch) == (6, 6, 2)


def test_a_bulk_free_drains_the_list_asked_for_first():
    """v6.13 free_pcppages_bulk steps back one before its round-robin search: pindex 0 drains list 0
    first, and a free past high drains the list it freed to first."""
    k = small(nr_cpus=1)
    pcp = k.zones[0].pcp(0)
    A.pageset_update(pcp, 100, 100, 1)
    unmovable = [k.call(A.alloc_pages, G.GFP_KERNEL, 0) for _ in range(2)]
    movable = [k.call(A.alloc_pages, G.GFP_KERNEL | G.__GFP_MOVABLE, 0) for _ in range(2)]
    k.call(A.drain_local_pages)
    for page in unmovable + movable:
        k.call(A.__free_pages, page, 0)
    drained = []
    register_trace(k, "mm_page_pcpu_drain", lambda **f: drained.append(f["migratetype"]))
    k.call(A.drain_local_pages)  # free_pcppages_bulk(..., pindex 0)
    assert drained == [MIGRATE_UNMOVABLE] * 2 + [MIGRATE_MOVABLE] * 2
    # refill both lists, then let a movable free cross high: its own list goes first
    unmovable = [k.call(A.alloc_pages, G.GFP_KERNEL, 0) for _ in range(2)]
    movable = [k.call(A.alloc_pages, G.GFP_KERNEL | G.__GFP_MOVABLE, 0) for _ in range(2)]
    k.call(A.drain_local_pages)
    drained.clear()
    A.pageset_update(pcp, 4, 4, 1)
    for page in unmovable + movable:
        k.call(A.__free_pages, page, 0)
    assert drained and drained[0] == MIGRATE_MOVABLE


def test_drain_pages_zone_takes_the_pcp_lock_in_chunks():
    """v6.10+ drain_pages_zone: the pcp lock first, the count read under it, at most
    batch << CONFIG_PCP_BATCH_SCALE_MAX pages per hold."""
    k = small(nr_cpus=1, pages_per_node=256, max_order=5)
    pcp = k.zones[0].pcp(0)
    A.pageset_update(pcp, 200, 200, 1)
    pages = [k.call(A.alloc_pages, G.GFP_KERNEL, 0) for _ in range(80)]
    k.call(A.drain_local_pages)
    for page in pages:
        k.call(A.__free_pages, page, 0)
    assert pcp.count == 80
    k.call(A.drain_local_pages)  # k.events: this call's log
    holds = [e for e in k.events if e[4] == pcp.lock.name and e[3] == "acquired"]
    assert len(holds) == 3 and pcp.count == 0  # 32 + 32 + 16 pages
    k.call(A.drain_local_pages)  # an empty pcp: the lock is still taken to read the count
    assert [e for e in k.events if e[4] == pcp.lock.name and e[3] == "acquired"]


def test_gfp_to_alloc_flags_reserves_follow_nomemalloc_and_order():
    k = small(nr_cpus=1)
    flags = lambda gfp, order: k.call(A.gfp_to_alloc_flags, gfp, order)  # noqa: E731
    assert flags(G.GFP_ATOMIC, 0) & A.ALLOC_NON_BLOCK and not flags(G.GFP_ATOMIC, 0) & A.ALLOC_HIGHATOMIC
    assert flags(G.GFP_ATOMIC, 1) & A.ALLOC_HIGHATOMIC
    nomemalloc = flags(G.GFP_ATOMIC | G.__GFP_NOMEMALLOC, 3)
    assert not nomemalloc & (A.ALLOC_NON_BLOCK | A.ALLOC_HIGHATOMIC)
    assert not flags(G.GFP_ATOMIC, 0) & A.ALLOC_CPUSET  # a non-blocking __GFP_HIGH ignores the cpuset
    assert flags(G.GFP_KERNEL, 0) & A.ALLOC_CPUSET and not flags(G.GFP_KERNEL, 0) & A.ALLOC_NON_BLOCK


def test_thp_has_a_movable_and_an_unmovable_pcp_list():
    k = small(nr_cpus=1, pages_per_node=1024, max_order=9, pageblock_order=9)
    pcp = k.zones[0].pcp(0)
    assert len(pcp.lists) == NR_LOWORDER_PCP_LISTS + 2
    assert k.call(A.order_to_pindex, MIGRATE_MOVABLE, 9) == NR_LOWORDER_PCP_LISTS + 1
    assert k.call(A.order_to_pindex, MIGRATE_UNMOVABLE, 9) == NR_LOWORDER_PCP_LISTS
    assert k.call(A.order_to_pindex, MIGRATE_RECLAIMABLE, 9) == NR_LOWORDER_PCP_LISTS
    assert {k.call(A.pindex_to_order, i) for i in (NR_LOWORDER_PCP_LISTS, NR_LOWORDER_PCP_LISTS + 1)} == {9}


def test_nr_pcp_alloc_scales_order_0_refills_and_gives_1_block_when_batch_is_1():
    k = small(nr_cpus=1)
    z = k.zones[0]
    pcp = z.pcp(0)
    A.pageset_update(pcp, 64, 64, 1)
    assert [A.nr_pcp_alloc(pcp, z, order) for order in (1, 2, 3)] == [1, 1, 1]
    A.pageset_update(pcp, 64, 64, 4)
    pcp.alloc_factor = 0
    assert [A.nr_pcp_alloc(pcp, z, 0) for _ in range(3)] == [4, 8, 16] and pcp.alloc_factor == 3
    assert A.nr_pcp_alloc(pcp, z, 2) == 2 and A.nr_pcp_alloc(pcp, z, 1) == 2
    A.pageset_update(pcp, 2, 2, 4)
    assert A.nr_pcp_alloc(pcp, z, 0) == 1  # high below batch


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


@pytest.mark.rule("I2")
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


@pytest.mark.rule("I2")
def test_explore_two_cpus_alloc_free_keeps_invariants():
    """I2 over every schedule (preemption bound 2) of two CPUs allocating and freeing on a small zone."""
    def setup(k):
        no_watermarks(k)

        def worker():
            a = A.alloc_pages(G.GFP_KERNEL, 0)
            b = A.alloc_pages(G.GFP_KERNEL, 1)
            A.__free_pages(a, 0)
            A.__free_pages(b, 1)

        k.spawn(0, worker)
        k.spawn(1, worker)

    result = explore(setup, boot=small_options(pages_per_node=64, max_order=3), preemption_bound=2,
                     check=lambda k, r: check_invariants(k))
    assert result.ok, result.failures[:1]
    assert result.complete and result.executions > 10


def test_views():
    k = small()
    pcp = k.zones[0].pcp(0)
    A.pageset_update(pcp, 100, 100, 8)
    k.call(A.alloc_pages, G.GFP_KERNEL, 0)
    info = zoneinfo(k)
    assert "pages free     56" in info and "count: 7" in info
    states = pfn_states(k)
    assert states.count(PFN_BUDDY) == 56 and states.count(0) == 1


def _from_freelist(k, gfp, order):
    ac, flags = A.prepare_alloc_pages(gfp, order, 0, None, A.ALLOC_WMARK_LOW)
    return A.get_page_from_freelist(gfp, order, flags, ac)


@pytest.mark.levels(until="6.15")
def test_up_to_v6_13_post_alloc_hook_sets_the_refcount():
    """v6.13 post_alloc_hook: the page leaves get_page_from_freelist holding one reference."""
    k = small(nr_cpus=1)
    page = k.call(_from_freelist, k, G.GFP_KERNEL, 0)
    assert P.page_ref_count(page) == 1


@pytest.mark.levels(since="6.15")
def test_from_efabfe1420f5_pages_leave_get_page_from_freelist_frozen():
    """v6.14-rc1 efabfe1420f5: get_page_from_freelist hands out refcount 0; its callers set it."""
    k = small(nr_cpus=1)
    page = k.call(_from_freelist, k, G.GFP_KERNEL, 0)
    assert P.page_ref_count(page) == 0


def test_alloc_pages_hands_out_one_reference_at_every_level():
    k = small(nr_cpus=1)
    for order in (0, 3):
        page = k.call(A.alloc_pages, G.GFP_KERNEL, order)
        assert P.page_ref_count(page) == 1
        k.call(A.__free_pages, page, order)
    check_invariants(k)


def _reserve_everything_highatomic(k):
    """Move every free block to the highatomic list, as reserve_highatomic_pageblock would for each."""
    z, mm = k.zones[0], k.mem_map
    for order, area in enumerate(z.free_area):
        for pfn in list(area.free_list[MIGRATE_MOVABLE]):
            page = P.Page(pfn, mm)
            A._del_page_from_free_list(z, page, order, MIGRATE_MOVABLE)
            A.set_pageblock_migratetype(page, MIGRATE_HIGHATOMIC)
            A._add_to_free_list(z, page, order, MIGRATE_HIGHATOMIC, True)
            A._set_buddy_order(mm, pfn, order)


def test_a_non_blocking_allocation_falls_back_to_the_highatomic_reserve():
    """v6.13 rmqueue_buddy: with nothing else free, ALLOC_NON_BLOCK (or ALLOC_OOM) may take from the
    highatomic reserve; __GFP_NOMEMALLOC withholds ALLOC_NON_BLOCK (gfp_to_alloc_flags), so not then."""
    k = small(nr_cpus=1)
    _reserve_everything_highatomic(k)
    assert k.call(A.alloc_pages, G.GFP_NOWAIT | G.__GFP_NOMEMALLOC | G.__GFP_NOWARN, 0) is None
    page = k.call(A.alloc_pages, G.GFP_NOWAIT, 0)
    assert page is not None and A.get_pfnblock_migratetype(page, page.pfn) == MIGRATE_HIGHATOMIC
def test_a_zone_too_small_for_its_default_watermarks_says_so_in_the_warning():
    """16 pages keep 8 behind the default min watermark: an order-4 request can never succeed there,
    and the allocation failure warning names the watermark instead of leaving the reader to guess."""
    from tryalloc import Kernel

    k = Kernel(nr_cpus=1, pages_per_node=16, max_order=4)
    assert k.call(A.alloc_pages, G.GFP_KERNEL, 4) is None
    (warning,) = [obj for _, _, _, op, obj in k.events if op == "warn_alloc"]
    assert "order:4" in warning and "16 pages free but the min watermark keeps 8" in warning
    assert "exceed what a 16-page zone can spare" in warning
    A.setup_per_zone_wmarks(k, 0)  # as the warning says: without watermarks the same request succeeds
    assert k.call(A.alloc_pages, G.GFP_KERNEL, 4) is not None


def test_a_failure_with_no_free_page_blames_no_watermark():
    k = small()
    while k.call(A.alloc_pages, G.GFP_KERNEL, 3) is not None:
        pass
    (warning,) = [obj for _, _, _, op, obj in k.events if op == "warn_alloc"]
    assert "watermark" not in warning


def test_tracepoint_events_carry_their_pfn_and_order():
    from tryalloc.mm.mmzone import MIGRATE_UNMOVABLE  # GFP_KERNEL

    k = small()
    page = k.call(A.alloc_pages, G.GFP_KERNEL, 2)
    (i,) = [e[0] for e in k.events if e[3] == "trace:mm_page_alloc"]
    ev = k.events.at(i)
    assert ev.obj is None  # the tuple stays (index, cpu, path, op, None): the fields are kept beside it
    assert ev.fields.get("pfn") == page.pfn and ev.fields.get("order") == 2
    assert ev.action() == f"trace:mm_page_alloc pfn={page.pfn:#x} order=2 migratetype={MIGRATE_UNMOVABLE}"
    k.call(A.__free_pages, page, 2)
    assert any(f"trace:mm_page_free pfn={page.pfn:#x} order=2; holds no locks" in line for line in k.events.lines())


def test_a_cpus_pageset_and_the_deferred_blocks_have_public_accessors():
    from tryalloc.kernel.percpu import per_cpu_ptr

    k = small()
    z = k.zones[0]
    assert z.pcp(1) is per_cpu_ptr(z.per_cpu_pageset, 1)
    page = k.call(A.alloc_pages, G.GFP_KERNEL, 0)
    k.call(A.__free_pages, page, 0)
    assert z.pcp(0).count == 1 and z.pcp(1).count == 0
    assert z.deferred_blocks() == []

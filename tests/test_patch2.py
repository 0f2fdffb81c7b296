"""Patch 2: free_pages_nolock() -- free from any context, deferring when zone->lock is busy (spec 3).

Tests marked with a rule fail (strict xfail) at the levels before the patch: there is no
free_pages_nolock there.
"""
import pytest
from machines import no_watermarks, small_machine, small_options

from tryalloc import InvalidContextError, Scripted, When, explore
from tryalloc.errors import BadPageError, DeadlockError, VMBugError
from tryalloc.include import gfp as G
from tryalloc.kernel.locking import raw_spin_lock_irqsave, raw_spin_unlock_irqrestore
from tryalloc.mm import page as P
from tryalloc.mm import page_alloc as A
from tryalloc.mm.debug import PFN_ALLOCATED, buddyinfo, check_invariants, pfn_states
from tryalloc.mm.mmzone import NR_FREE_PAGES

ZONE_LOCK_OPS = {"spin_lock_irqsave", "spin_lock"}


def machine(**kw):
    return small_machine(**{"nr_cpus": 1, **kw})


def deferred(k, nid=0):
    return k.zones[nid].deferred_blocks()


def defer_one(k, order=4):
    """An NMI frees an order-``order`` page while the task holds zone->lock: the page is deferred."""
    victim = k.call(A.alloc_pages, G.GFP_KERNEL, order)
    k.spawn(0, lambda: A.alloc_pages(G.GFP_KERNEL, 4))
    k.on_interrupt(0, "nmi", lambda: A.free_pages_nolock(victim, order))
    k.run(Scripted(When(cpu=0, op="acquired", obj="zone->lock", inject="nmi")))
    return victim


@pytest.mark.rule("R2.1")
@pytest.mark.parametrize("case", ["last_ref", "extra_ref_plain", "extra_ref_compound"])
def test_refcount_semantics_are_those_of___free_pages(case):
    """R2.1: the same page states after free_pages_nolock as after __free_pages, in every case."""
    def scenario(free):
        k = machine()
        gfp = G.GFP_KERNEL | (G.__GFP_COMP if case == "extra_ref_compound" else 0)
        page = k.call(A.alloc_pages, gfp, 2)
        if case != "last_ref":
            k.call(P.get_page, page)
        k.call(free, page, 2)
        check_invariants(k)
        # where a freed page sits (pcp or buddy) may differ: only an ordinary free bulk-frees (R2.4)
        return bytes(s != PFN_ALLOCATED for s in pfn_states(k)), bytes(k.mem_map._refcount), page.pfn

    nolock = scenario(lambda p, o: A.free_pages_nolock(p, o))
    plain = scenario(lambda p, o: A.__free_pages(p, o))
    assert nolock == plain
    states, refs, pfn = nolock
    if case == "extra_ref_plain":  # the tail sub-blocks (orders 1 and 0) went back, the first page stays
        assert refs[pfn] == 1 and states[pfn] == 0 and states[pfn + 1] != 0 and states[pfn + 2] != 0
    if case == "extra_ref_compound":  # nothing freed: the holder keeps the whole compound page
        assert refs[pfn] == 1 and set(states[pfn:pfn + 4]) == {0}


@pytest.mark.rule("R2.2")
@pytest.mark.rule("R2.4")
@pytest.mark.rule("I3")
def test_pcp_free_above_high_bulk_frees_nothing():
    """R2.4, R2.2: past pcp->high the page still goes on the list; no free_pcppages_bulk, no zone->lock.
    I3: only those frees leave the count above high; each ordinary free at or over the mark bulk-frees
    clamp(free_count, batch, high - batch) pages, so getting back below it takes several."""
    k = machine()
    pages = [k.call(A.alloc_pages, G.GFP_KERNEL, 0) for _ in range(40)]
    pcp = k.zones[0].pcp(0)
    A.pageset_update(pcp, 4, 4, pcp.batch)
    before = buddyinfo(k)
    for page in pages:
        k.call(A.free_pages_nolock, page, 0)
        assert not [e for e in k.events if e[4] == "zone->lock"]
    assert pcp.count > pcp.high and buddyinfo(k) == before
    check_invariants(k)
    # each ordinary free over the mark bulk-frees (I3), at most high - batch pages at a time
    frees = 0
    while pcp.count >= pcp.high:
        above = pcp.count
        k.call(A.__free_pages, k.call(A.alloc_pages, G.GFP_KERNEL, 0), 0)
        frees += 1
        assert any(e[3] == "trace:mm_page_pcpu_drain" for e in k.events)
        assert 0 < above - pcp.count <= pcp.high - pcp.batch  # what that bulk free returned
        assert frees <= 40
    assert frees > 1


@pytest.mark.rule("R2.3")
@pytest.mark.parametrize("context", ["task", "softirq", "hardirq", "nmi"])
def test_any_page_any_context(context):
    k = machine()
    page = k.call(A.alloc_pages, G.GFP_KERNEL, 1)  # an ordinary page, not from try_alloc_pages
    k.call(A.free_pages_nolock, page, 1, context=context)
    assert P.page_ref_count(page) == 0
    check_invariants(k)


@pytest.mark.rule("R2.5")
@pytest.mark.rule("R2.8")
@pytest.mark.rule("R2.10")
def test_busy_zone_lock_defers_and_the_deferred_page_is_not_free():
    """R2.5: zone->lock busy -> the page waits on the llist with its order; R2.8: prepared but not
    free (NR_FREE_PAGES unchanged, never handed out); R2.10: PGFREE counted only at the drain."""
    k = machine()
    free_before = k.zones[0].vm_stat[NR_FREE_PAGES]
    victim = k.call(A.alloc_pages, G.GFP_KERNEL, 4)
    pgfree = k.vm_events[A.PGFREE]
    k.spawn(0, lambda: A.alloc_pages(G.GFP_KERNEL, 4))
    k.on_interrupt(0, "nmi", lambda: A.free_pages_nolock(victim, 4))
    k.run(Scripted(When(cpu=0, op="acquired", obj="zone->lock", inject="nmi")))
    assert deferred(k) == [(victim.pfn, 4)]
    assert k.vm_events[A.PGFREE] == pgfree
    assert set(k.mem_map.contents[victim.pfn:victim.pfn + 16]) == {P.CONTENT_POISON}  # prepared
    assert k.zones[0].vm_stat[NR_FREE_PAGES] == free_before - 32  # two order-4 blocks out, none back
    check_invariants(k)
    # allocate everything else: the deferred block is never handed out
    got = []
    while (p := k.call(A.alloc_pages, G.GFP_ATOMIC | G.__GFP_NOWARN, 0)) is not None:
        got.append(p.pfn)
    assert not set(got) & set(range(victim.pfn, victim.pfn + 16))
    assert deferred(k) == [(victim.pfn, 4)]  # allocations do not drain it (R2.9)


@pytest.mark.rule("R2.5")
def test_a_trylock_free_that_gets_zone_lock_does_not_drain():
    k = machine()
    defer_one(k)
    page = k.call(A.alloc_pages, G.GFP_KERNEL, 4)
    k.call(A.free_pages_nolock, page, 4)  # not pcp-cached: free_one_page with FPI_TRYLOCK, lock free
    assert P.PageBuddy(page) and len(deferred(k)) == 1
    check_invariants(k)


@pytest.mark.rule("R2.9")
@pytest.mark.rule("R2.10")
@pytest.mark.rule("R2.11")
def test_only_an_ordinary_free_through_free_one_page_drains():
    k = machine()
    victim = defer_one(k)
    k.call(A.drain_all_pages)  # free_pcppages_bulk takes zone->lock but does not drain
    assert deferred(k) == [(victim.pfn, 4)]
    pgfree = k.vm_events[A.PGFREE]
    page = k.call(A.alloc_pages, G.GFP_KERNEL, 4)
    k.call(A.__free_pages, page, 4)  # ordinary, not pcp-cached: free_one_page without FPI_TRYLOCK
    assert deferred(k) == [] and P.PageBuddy(victim)
    assert k.vm_events[A.PGFREE] == pgfree + 32  # the deferred block and the caller's
    check_invariants(k)


@pytest.mark.rule("R2.6")
@pytest.mark.parametrize("context", ["nmi", "hardirq"])
def test_rt_nmi_or_hardirq_pcp_free_defers_without_any_lock(context):
    k = machine(preempt_rt=True)
    page = k.call(A.alloc_pages, G.GFP_KERNEL, 0)
    k.call(A.free_pages_nolock, page, 0, context=context)
    assert deferred(k) == [(page.pfn, 0)]
    assert not [e for e in k.events if "lock" in e[3] and e[3] != "llist_add:read"]
    check_invariants(k)


@pytest.mark.rule("R2.7")
def test_rt_gap_non_pcp_orders_still_trylock_zone_lock_in_nmi():
    """R2.7 (v6 gap): an order the pcp does not cache reaches free_one_page before the RT check and
    trylocks the rt_mutex zone->lock in NMI -- the model's invalid-context report."""
    k = machine(preempt_rt=True)
    page = k.call(A.alloc_pages, G.GFP_KERNEL, 4)
    with pytest.raises(InvalidContextError, match=r"spin_trylock_irqsave\(zone->lock\)"):
        k.call(A.free_pages_nolock, page, 4, context="nmi")


@pytest.mark.rule("R2.13")
def test_depot_frees_an_unwanted_pool_page_without_spinning_when_it_may_not_spin():
    from tryalloc.lib import stackdepot as sd

    k = machine()
    page = k.call(A.alloc_pages, G.GFP_KERNEL, sd.DEPOT_POOL_ORDER)
    k.call(sd._depot_free_pool, page, False)
    assert not {e[3] for e in k.events if e[4] == "zone->lock"} & ZONE_LOCK_OPS
    assert P.page_ref_count(page) == 0
    check_invariants(k)


@pytest.mark.rule("R2.14")
def test_gap_debug_objects_check_spins_even_for_a_nolock_free():
    """R2.14 (v6 gap): with DEBUG_OBJECTS_FREE the free path spins on the object-hash lock even for
    FPI_TRYLOCK: an NMI free_pages_nolock while the task holds it deadlocks."""
    k = machine(debug_objects=True, detectors={"lockdep": "off"})
    page = k.call(A.alloc_pages, G.GFP_KERNEL, 0)

    def task():
        flags = raw_spin_lock_irqsave(k.obj_hash_lock)
        raw_spin_unlock_irqrestore(k.obj_hash_lock, flags)

    k.spawn(0, task)
    k.on_interrupt(0, "nmi", lambda: A.free_pages_nolock(page, 0))
    with pytest.raises(DeadlockError, match=r"obj_hash\[\]\.lock"):
        k.run(Scripted(When(cpu=0, op="acquired", obj="obj_hash[].lock", inject="nmi")))


@pytest.mark.rule("R2.2")
def test_an_nmi_at_every_point_frees_without_spinning_and_conserves_pages():
    """Exhaustive: an NMI calling free_pages_nolock (or try_alloc_pages) at every scheduling point of
    an alloc_pages / __free_pages pair on CPU 0: zero deadlocks; conservation after each execution."""
    for order in (0, 4):
        def setup(k, order=order):
            no_watermarks(k)
            victim = k.call(A.alloc_pages, G.GFP_KERNEL, order)

            def task():
                A.__free_pages(A.alloc_pages(G.GFP_KERNEL, order), order)

            k.spawn(0, task)
            k.on_interrupt(0, "nmi", lambda: A.free_pages_nolock(victim, order))

        outcomes = []

        def check(k, r, outcomes=outcomes):
            check_invariants(k)
            outcomes.append(len(deferred(k)))

        res = explore(setup, boot=small_options(nr_cpus=1), check=check)
        assert res.ok and res.complete
        if order == 4:
            assert 1 in outcomes  # some NMI found zone->lock busy and deferred


@pytest.mark.levels(since="2")
def test_bad_frees_are_refused_and_the_llist_never_holds_a_page_twice():
    k = machine()
    victim = defer_one(k)
    before = (deferred(k), bytes(pfn_states(k)), dict(k.vm_events))
    for page, order in ((victim, 4), (k.mem_map.page(200), 0), (victim + 1, 0)):
        with pytest.raises(BadPageError):
            k.call(A.free_pages_nolock, page, order)
        assert (deferred(k), bytes(pfn_states(k)), dict(k.vm_events)) == before
    live = k.call(A.alloc_pages, G.GFP_KERNEL | G.__GFP_COMP, 1)
    with pytest.raises(VMBugError, match="order"):  # DEBUG_VM's compound-order check
        k.call(A.free_pages_nolock, live, 2)
    assert deferred(k) == before[0] and P.PageHead(live) and P.page_ref_count(live) == 1
    check_invariants(k)


@pytest.mark.rule("R8.2")
def test_a_non_compound_try_alloc_page_with_an_extra_reference_frees_only_its_tail():
    """R8.2: try_alloc_pages pages are plain blocks; free_pages_nolock with a reference outstanding
    gives back the tail sub-blocks (orders 1 and 0 of an order-2 block) and keeps the first page."""
    k = machine()
    page = k.call(A.try_alloc_pages, 0, 2)
    k.call(P.get_page, page)
    k.call(A.free_pages_nolock, page, 2)
    states = pfn_states(k)
    assert P.page_ref_count(page) == 1 and states[page.pfn] == PFN_ALLOCATED
    assert all(states[pfn] != PFN_ALLOCATED for pfn in range(page.pfn + 1, page.pfn + 4))
    check_invariants(k)

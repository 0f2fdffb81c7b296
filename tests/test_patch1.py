"""Patch 1: try_alloc_pages() -- allocate from any context, only ever trying locks (spec section 2).

Every test here names the rule it checks (``@pytest.mark.rule``): run on a level before the patch
(``make test-levels``) it must fail, and it does, since ``try_alloc_pages`` is not there yet.
"""
import pytest
from machines import no_watermarks, small_machine, small_options

from tryalloc import Kernel, Scripted, When, explore
from tryalloc.include import gfp as G
from tryalloc.kernel.locking import (
    raw_spin_lock,
    raw_spin_unlock,
    raw_spinlock_t,
)
from tryalloc.kernel.preempt import local_irq_restore, local_irq_save
from tryalloc.mm import page as P
from tryalloc.mm import page_alloc as A
from tryalloc.mm.debug import check_invariants
from tryalloc.mm.mmzone import MIGRATE_UNMOVABLE, NR_FREE_PAGES
from tryalloc.trace import register_trace

LOCK_OPS = ("spin_trylock", "spin_trylock_irqsave", "spin_lock", "spin_lock_irqsave", "local_lock_irqsave",
            "raw_spin_lock_irqsave", "raw_spin_trylock_irqsave")


def machine(**kw):
    return small_machine(**{"nr_cpus": 2, **kw})


def ops(k, start=0):
    return [e[3] for e in k.events[start:]]


def locked(k):
    return [e for e in k.events if e[3] in LOCK_OPS]


@pytest.mark.rule("R1.9")
def test_the_mask_cannot_spin_and_ordinary_masks_can():
    """R1.9 and spec 0.5: GFP_KERNEL/NOWAIT/ATOMIC may spin; the try_alloc_pages mask may not."""
    k = machine()
    mask = G.__GFP_NOWARN | G.__GFP_ZERO | G.__GFP_NOMEMALLOC | G.__GFP_ACCOUNT
    got = k.call(lambda: [G.gfpflags_allow_spinning(g) for g in (G.GFP_KERNEL, G.GFP_NOWAIT, G.GFP_ATOMIC,
                                                                  mask, G.__GFP_NOWARN)])
    assert got == [True, True, True, False, False]
    seen = []
    register_trace(k, "mm_page_alloc", lambda **f: seen.append(f["gfp_flags"]))
    k.call(A.try_alloc_pages, 0, 0)
    assert seen and not seen[0] & G.__GFP_RECLAIM and seen[0] & G.__GFP_NOWARN and seen[0] & G.__GFP_ZERO
    assert seen[0] & G.__GFP_NOMEMALLOC


@pytest.mark.levels(since="1", until="6.15")
def test_as_posted_polarity_is_inverted_until_the_fix():
    """spec 0.5 / S9.5.2: v6..v9 returned the opposite; the model's switch reproduces it."""
    k = machine(spin_polarity="as_posted")
    assert k.call(lambda: (G.gfpflags_allow_spinning(G.GFP_KERNEL), G.gfpflags_allow_spinning(G.__GFP_NOWARN))) \
        == (False, True)


@pytest.mark.rule("S9.5.1")
def test_polarity_is_fixed_at_6_15_whatever_the_switch():
    k = machine(spin_polarity="as_posted")
    assert k.call(lambda: (G.gfpflags_allow_spinning(G.GFP_KERNEL), G.gfpflags_allow_spinning(G.__GFP_NOWARN))) \
        == (True, False)


@pytest.mark.rule("R1.1")
@pytest.mark.parametrize("context", ["nmi", "hardirq"])
def test_rt_nmi_or_hardirq_returns_null_touching_nothing(context):
    """R1.1: on PREEMPT_RT in NMI or hard-IRQ: NULL, no lock, counter, tracepoint."""
    k = machine(preempt_rt=True)
    before = (dict(k.vm_events), k.zones[0].vm_stat[NR_FREE_PAGES])
    assert k.call(A.try_alloc_pages, 0, 0, context=context) is None
    assert (dict(k.vm_events), k.zones[0].vm_stat[NR_FREE_PAGES]) == before
    assert ops(k) == [f"{context}-entry", f"{context}-exit", "start", "exit"]
    # in task context on RT it proceeds with rt trylocks
    assert k.call(A.try_alloc_pages, 0, 0) is not None


@pytest.mark.rule("R1.2")
def test_non_rt_every_context_gets_a_page():
    """R1.2: task, softirq, hardirq, NMI, irqs off, under a raw spinlock, and from inside the allocator."""
    k = machine()
    for context in ("task", "softirq", "hardirq", "nmi"):
        page = k.call(A.try_alloc_pages, 0, 0, context=context)
        assert page is not None and P.page_ref_count(page) == 1

    def irqs_off_and_raw_lock():
        flags = local_irq_save()
        raw = raw_spinlock_t("some_raw_lock")
        raw_spin_lock(raw)
        page = A.try_alloc_pages(0, 0)
        raw_spin_unlock(raw)
        local_irq_restore(flags)
        return page

    assert k.call(irqs_off_and_raw_lock) is not None
    check_invariants(k)


@pytest.mark.rule("R1.2")
def test_reentry_from_a_tracepoint_under_zone_lock_returns_instead_of_deadlocking():
    """R1.2, R1.14: a probe on mm_page_alloc_zone_locked or mm_page_alloc_extfrag (zone->lock held) that
    calls try_alloc_pages gets NULL -- where alloc_pages(GFP_ATOMIC) deadlocks (the baseline test)."""
    k = machine()
    got = []
    for tracepoint in ("mm_page_alloc_zone_locked", "mm_page_alloc_extfrag"):
        register_trace(k, tracepoint, lambda **f: got.append(A.try_alloc_pages(0, 0)))
    assert k.call(A.alloc_pages, G.GFP_KERNEL, 0) is not None  # steals a movable block: extfrag
    assert k.call(A.alloc_pages, G.GFP_KERNEL | G.__GFP_MOVABLE, 0) is not None  # zone_locked
    assert got and all(p is None for p in got)
    check_invariants(k)


@pytest.mark.rule("R1.3")
def test_orders_the_pcp_does_not_cache_return_null_without_a_lock():
    k = machine(max_order=10, pageblock_order=5, pages_per_node=1024)
    for order in (4, 5, 8, 10):
        assert k.call(A.try_alloc_pages, 0, order) is None
        assert not locked(k)
    # with THP the THP order is pcp-allowed (min(9, max_order) here)
    assert k.call(A.try_alloc_pages, 0, 9) is not None
    assert locked(k)


@pytest.mark.rule("R1.3")
def test_without_thp_the_thp_order_is_refused_too():
    k = machine(max_order=10, pageblock_order=5, pages_per_node=1024, thp=False)
    assert k.call(A.try_alloc_pages, 0, 9) is None and not locked(k)


@pytest.mark.rule("R1.4")
def test_unaccepted_memory_returns_null():
    k = machine()
    k.unaccepted_memory = True
    assert k.call(A.try_alloc_pages, 0, 0) is None and not locked(k)


@pytest.mark.rule("R1.5")
def test_deferred_struct_page_init_returns_null():
    k = machine()
    k.deferred_pages = True
    assert k.call(A.try_alloc_pages, 0, 0) is None and not locked(k)


@pytest.mark.rule("R1.6")
def test_numa_no_node_means_this_cpus_node():
    k = machine(nr_nodes=2)
    page = k.call(A.try_alloc_pages, A.NUMA_NO_NODE, 0, cpu=1)
    assert P.page_to_nid(page) == 1
    page = k.call(A.try_alloc_pages, A.NUMA_NO_NODE, 0, cpu=0)
    assert P.page_to_nid(page) == 0


@pytest.mark.rule("R1.7")
def test_no_slow_path_when_memory_is_short():
    """R1.7: no kswapd wake-up, no reclaim, no warn_alloc, no retry: just NULL."""
    k = machine(pages_per_node=64, max_order=3, pageblock_order=3, nr_cpus=1)
    pages = []
    while (p := k.call(A.try_alloc_pages, 0, 0)) is not None:
        pages.append(p)
    assert len(pages) == 64  # no watermark here: everything could be taken
    assert not {"wakeup_kswapd", "direct_reclaim", "warn_alloc"} & set(ops(k))
    # the ordinary allocator, out of memory too, goes through its slow path
    k.call(A.alloc_pages, G.GFP_KERNEL, 0)
    assert {"wakeup_kswapd", "direct_reclaim", "warn_alloc"} <= set(ops(k))


@pytest.mark.rule("R1.8")
def test_fault_injection_is_never_consulted():
    k = machine()
    k.fail_page_alloc.probability, k.fail_page_alloc.min_order = 100, 0
    k.fail_page_alloc.ignore_gfp_reclaim = False
    assert k.call(A.alloc_pages, G.GFP_ATOMIC, 0) is None and "fail_page_alloc" in ops(k)
    assert k.call(A.try_alloc_pages, 0, 0) is not None and "fail_page_alloc" not in ops(k)


@pytest.mark.rule("R1.10")
@pytest.mark.rule("R1.17")
def test_pages_are_zeroed_and_not_compound():
    k = machine()
    dirty = k.call(A.alloc_pages, G.GFP_KERNEL, 1)
    k.call(A.__free_pages, dirty, 1)  # leaves poisoned contents behind
    page = k.call(A.try_alloc_pages, 0, 1)
    mm = k.mem_map
    assert set(mm.contents[page.pfn:page.pfn + 2]) == {P.CONTENT_ZERO}
    assert not P.PageHead(page) and not P.PageTail(page + 1)


@pytest.mark.rule("R1.11")
def test_the_page_is_unmovable():
    k = machine()
    got = []
    register_trace(k, "mm_page_alloc", lambda **f: got.append(f["migratetype"]))
    k.call(A.try_alloc_pages, 0, 0)
    assert got == [MIGRATE_UNMOVABLE]


@pytest.mark.rule("R1.12")
def test_the_min_watermark_is_the_bar():
    """R1.12: between the min and the low watermark, try_alloc_pages still succeeds."""
    k = Kernel(nr_cpus=1, pages_per_node=256, max_order=5, pageblock_order=5, memcg=False)
    z = k.zones[0]
    A.setup_per_zone_wmarks(k, 128)  # min 32 pages here
    low, mn = z.low_wmark_pages(), z.min_wmark_pages()
    assert low > mn
    # take order-3 blocks (not pcp-cached with a 1-page batch? they are: use the buddy path directly)
    while z.vm_stat[NR_FREE_PAGES] > low:
        k.call(A.alloc_pages, G.GFP_KERNEL, 0)
        k.call(A.drain_all_pages)  # refills grow (nr_pcp_alloc): count only what buddy holds
    assert mn < z.vm_stat[NR_FREE_PAGES] <= low + 1
    assert not k.call(lambda: A.zone_watermark_ok(z, 0, low, 0))
    assert k.call(A.try_alloc_pages, 0, 0) is not None
    assert "watermark-refused" not in ops(k)


@pytest.mark.rule("R1.13")
def test_busy_pcp_falls_back_to_buddy():
    """R1.13: an NMI arriving while the task holds this CPU's pcp lock: pcp NULL, buddy by trylock."""
    k = machine(nr_cpus=1)
    got = []
    k.spawn(0, lambda: A.alloc_pages(G.GFP_KERNEL, 0))
    k.on_interrupt(0, "nmi", lambda: got.append(A.try_alloc_pages(0, 0)))
    k.run(Scripted(When(cpu=0, op="acquired", obj="pcp->lock[cpu0]", inject="nmi")))
    nmi = [(e[3], e[4]) for e in k.events if e[2].endswith("nmi")]
    assert ("trylock-failed", "pcp->lock[cpu0]") in nmi
    assert nmi.index(("spin_trylock_irqsave", "zone->lock")) > nmi.index(("trylock-failed", "pcp->lock[cpu0]"))
    assert got[0] is not None
    check_invariants(k)


@pytest.mark.rule("R1.14")
def test_busy_zone_lock_gives_null_after_at_most_two_trylocks():
    """R1.14: the task holds zone->lock (an order-4 buddy allocation); the NMI's pcp list is empty:
    rmqueue_bulk's trylock fails (no blocks moved), rmqueue_buddy's trylock fails: NULL."""
    k = machine(nr_cpus=1)
    got = []
    k.spawn(0, lambda: A.alloc_pages(G.GFP_KERNEL, 4))
    k.on_interrupt(0, "nmi", lambda: got.append(A.try_alloc_pages(0, 0)))
    k.run(Scripted(When(cpu=0, op="acquired", obj="zone->lock", inject="nmi")))
    tries = [e for e in k.events if e[2].endswith("nmi") and e[4] == "zone->lock"]
    assert [e[3] for e in tries] == ["spin_trylock_irqsave", "trylock-failed"] * 2
    assert got == [None]
    check_invariants(k)


@pytest.mark.rule("R1.15")
def test_a_failed_zone_moves_on_to_the_next():
    """R1.15: node 0's zone->lock is busy; the zonelist continues with node 1's zone."""
    k = machine(nr_nodes=2, nr_cpus=2)
    got = []
    k.spawn(0, lambda: A.alloc_pages_node(0, G.GFP_KERNEL, 4))
    k.on_interrupt(0, "nmi", lambda: got.append(A.try_alloc_pages(0, 0)))
    k.run(Scripted(When(cpu=0, op="acquired", obj="node0:zone->lock", inject="nmi")))
    assert got[0] is not None and P.page_to_nid(got[0]) == 1


@pytest.mark.rule("R1.16")
def test_ordinary_callers_try_then_spin_and_still_get_the_lock():
    """R1.16: as posted, a contended ordinary caller first trylocks, then spins; same outcome."""
    def setup(k):
        no_watermarks(k)
        k.spawn(0, lambda: A.alloc_pages(G.GFP_KERNEL, 4))
        k.spawn(1, lambda: A.alloc_pages(G.GFP_KERNEL, 4))

    seqs = set()

    def check(k, res):
        assert all(p is not None for p in res.results.values())
        check_invariants(k)
        for cpu in (0, 1):
            seq = tuple(e[3] for e in k.events if e[1] == cpu and e[4] == "zone->lock" and e[3] != "acquired")
            seqs.add(seq[:3])

    assert explore(setup, boot=small_options(nr_cpus=2), preemption_bound=1, check=check).ok
    assert ("spin_trylock_irqsave", "trylock-failed", "spin_lock_irqsave") in seqs


@pytest.mark.rule("S9.7.1")
def test_6_15_trylock_requests_only_try_and_ordinary_callers_lock_directly():
    k = machine()
    k.call(A.alloc_pages, G.GFP_KERNEL, 4)
    assert [e[3] for e in k.events if e[4] == "zone->lock"][:2] == ["spin_lock_irqsave", "acquired"]
    k.call(A.try_alloc_pages, 0, 0)
    assert {e[3] for e in k.events if e[4] == "zone->lock"} <= {"spin_trylock_irqsave", "acquired",
                                                                "spin_unlock_irqrestore"}


@pytest.mark.rule("R1.2")
def test_an_nmi_at_every_point_of_alloc_pages_never_deadlocks_with_try_alloc_pages():
    """Exhaustive: an NMI calling try_alloc_pages at every scheduling point of an alloc_pages on
    CPU 0 (order 0 and a buddy order) -- zero deadlocks, conservation after every execution."""
    for order in (0, 4):
        def setup(k, order=order):
            no_watermarks(k)
            k.spawn(0, lambda: A.alloc_pages(G.GFP_KERNEL, order))
            k.on_interrupt(0, "nmi", lambda: A.try_alloc_pages(0, 0))

        res = explore(setup, boot=small_options(nr_cpus=1), check=lambda k, r: check_invariants(k))
        assert res.ok and res.complete and res.executions > 3


def test_the_same_nmi_with_alloc_pages_atomic_deadlocks():
    """The baseline's problem, found by the same search (no rule: it holds at every level)."""
    def setup(k):
        no_watermarks(k)
        k.spawn(0, lambda: A.alloc_pages(G.GFP_KERNEL, 4))
        k.on_interrupt(0, "nmi", lambda: A.alloc_pages(G.GFP_ATOMIC, 0))

    res = explore(setup, boot=small_options(nr_cpus=1, detectors={"lockdep": "off"}))
    assert not res.ok and "spins on zone->lock" in str(res.failures[0])


@pytest.mark.levels(since="1")
@pytest.mark.parametrize("order, nid", [(-1, 0), (11, 0), (0, 5), (0, -7), ("0", 0)])
def test_bad_arguments_are_refused_and_change_nothing(order, nid):
    from tryalloc.errors import InvalidArgumentError

    k = machine()
    before = (dict(k.vm_events), k.zones[0].vm_stat[NR_FREE_PAGES])
    with pytest.raises(InvalidArgumentError):
        k.call(A.try_alloc_pages, nid, order)
    assert (dict(k.vm_events), k.zones[0].vm_stat[NR_FREE_PAGES]) == before
    check_invariants(k)


def depot_machine():
    k = machine()
    k.stack_depot.records_per_pool = 1  # every new stack wants a new pool
    return k


@pytest.mark.rule("R1.18")
def test_stack_depot_never_allocates_a_pool_for_a_mask_that_may_not_spin():
    from tryalloc.lib import stackdepot as sd

    k = depot_machine()
    k.call(sd.stack_depot_save, ("a",), G.GFP_KERNEL)  # an ordinary save: pool allocated
    assert k.stack_depot.new_pool is None  # a spare still wanted
    k.call(sd.stack_depot_save, ("b",), G.__GFP_NOWARN)
    ops_b = [(e[3], e[4]) for e in k.events]
    assert not any(op.startswith("spin") and obj == "pcp->lock[cpu0]" for op, obj in ops_b)  # no allocation
    assert ("raw_spin_trylock_irqsave", "pool_lock") in ops_b and ("raw_spin_lock_irqsave", "pool_lock") not in ops_b


@pytest.mark.rule("R1.18")
def test_stack_depot_gives_up_instead_of_spinning_when_pool_lock_is_busy():
    """Another CPU holds pool_lock: a save that may not spin returns 0 (or a handle already stored)."""
    from tryalloc.lib import stackdepot as sd

    def setup(k):  # pools with room: a new record needs no new pool
        no_watermarks(k)
        k.call(sd.stack_depot_save, ("known",), G.GFP_KERNEL)
        k.spawn(0, lambda: (sd.stack_depot_save(("new",), G.__GFP_NOWARN),
                            sd.stack_depot_save(("known",), G.__GFP_NOWARN)))
        k.spawn(1, lambda: sd.stack_depot_save(("other",), G.GFP_KERNEL))

    outcomes = set()

    def check(k, res):
        new, known = res.results[0]
        assert known != 0
        assert not [e for e in k.events if e[1] == 0 and e[3] == "spin" and e[4] == "pool_lock"]
        outcomes.add(new == 0)

    res = explore(setup, boot=small_options(nr_cpus=2), check=check)
    assert res.ok and res.complete and outcomes == {True, False}


@pytest.mark.rule("R1.19")
def test_stack_depot_in_nmi_only_tries_pool_lock_whatever_the_mask():
    from tryalloc.lib import stackdepot as sd

    k = machine()
    k.call(sd.stack_depot_save, ("a",), G.GFP_KERNEL)
    got = k.call(sd.stack_depot_save_flags, ("b",), G.GFP_KERNEL, 0, context="nmi")
    nmi_ops = [e[3] for e in k.events if e[4] == "pool_lock" and e[2].endswith("nmi")]
    assert got != 0 and nmi_ops[0] == "raw_spin_trylock_irqsave" and "raw_spin_lock_irqsave" not in nmi_ops


@pytest.mark.rule("S9.5.3")
def test_from_6_15_a_save_that_may_not_spin_fails_without_a_spare_pool_whatever_the_switch():
    """S9.5.3: with the polarity fixed, a __GFP_NOWARN save never allocates a pool: no spare -> 0.
    (At levels 1..6 the as-posted switch inverts the test and the same save allocates.)"""
    from tryalloc.lib import stackdepot as sd

    k = machine(spin_polarity="as_posted")
    k.stack_depot.records_per_pool = 1
    k.call(sd.stack_depot_save, ("first",), G.GFP_KERNEL)  # uses the pool; a new one is now wanted
    assert k.stack_depot.new_pool is None  # a spare still wanted
    handle = k.call(sd.stack_depot_save, ("second",), G.__GFP_NOWARN)
    assert handle == 0 and not any(e[4] == "pcp->lock[cpu0]" for e in k.events)

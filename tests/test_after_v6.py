"""After v6: the fixes of 6.15 and of later kernels (spec section 9), each checked as its rule states it.

A fix of a later kernel (6.16, 6.18, 2026) is checked at the last level configured as that release
(``Config(release=...)``), beside the same run under release 6.15, which still has the bug.  Before
level 6.15 there is no release to configure, so there these tests fail, as conftest's strict xfail
requires; ``tests/test_mutants.py`` puts each bug back into its release and requires the tests to fail.
"""
import pytest
from machines import small_machine

from tryalloc.include import gfp as G
from tryalloc.mm import page as P
from tryalloc.mm import page_alloc as A
from tryalloc.mm.debug import check_invariants
from tryalloc.series.rules import RELEASES

ZONE_LOCK_OPS = {"spin_lock_irqsave", "spin_trylock_irqsave"}


def nolock_alloc(k, order, **call):
    """The nolock allocation as ``k``'s release spells it, on node NUMA_NO_NODE and charged:
    try_alloc_pages(nid, order) up to 6.15, alloc_pages_nolock(nid, order) in 6.16-6.17 and
    alloc_pages_nolock(__GFP_ACCOUNT, nid, order) from 6.18 (the later rules apply to the successors)."""
    at = RELEASES.index(k.config.release)
    if at < RELEASES.index("6.16"):
        return k.call(A.try_alloc_pages, A.NUMA_NO_NODE, order, **call)
    if at < RELEASES.index("6.18"):
        return k.call(A.alloc_pages_nolock, A.NUMA_NO_NODE, order, **call)
    return k.call(A.alloc_pages_nolock, G.__GFP_ACCOUNT, A.NUMA_NO_NODE, order, **call)


def zone_lock_ops(k):
    """The zone->lock acquisitions of the last call (each ``Kernel.call`` starts a fresh log)."""
    return [e[3] for e in k.events if e[4] == "zone->lock" and e[3] in ZONE_LOCK_OPS]


@pytest.mark.rule("S9.6.1")
def test_try_alloc_pages_sets_the_refcount_of_the_frozen_page(monkeypatch):
    """S9.6.1: get_page_from_freelist hands out a frozen page (refcount 0, efabfe1420f5) and
    try_alloc_pages gives it its one reference, which free_pages_nolock then drops."""
    k = small_machine()
    handed = []
    real = A.get_page_from_freelist

    def spy(*args):
        page = real(*args)
        handed.append(P.page_ref_count(page))
        return page

    monkeypatch.setattr(A, "get_page_from_freelist", spy)
    page = k.call(A.try_alloc_pages, 0, 1)
    assert handed == [0] and P.page_ref_count(page) == 1
    k.call(A.free_pages_nolock, page, 1)
    assert P.page_ref_count(page) == 0
    check_invariants(k)


@pytest.mark.rule("S9.7.1")
def test_6_15_ordinary_frees_lock_zone_lock_directly():
    """S9.7.1 on the free side: free_one_page takes zone->lock at once for an ordinary free (an order the
    pcp does not cache) and only tries it for free_pages_nolock."""
    k = small_machine()
    big, other = k.call(A.alloc_pages, G.GFP_KERNEL, 4), k.call(A.alloc_pages, G.GFP_KERNEL, 4)
    k.call(A.__free_pages, big, 4)
    assert zone_lock_ops(k) == ["spin_lock_irqsave"]
    k.call(A.free_pages_nolock, other, 4)
    assert zone_lock_ops(k) == ["spin_trylock_irqsave"]
    check_invariants(k)


@pytest.mark.rule("S9.8.1")
def test_unaccepted_memory_elsewhere_does_not_fail_a_nolock_allocation():
    """S9.8.1: with memory still waiting to be accepted, a 6.16 nolock allocation is served from memory
    accepted already (it accepts nothing itself, so it leaves unaccepted_memory_lock alone) where 6.15
    fails it outright; an ordinary allocation still accepts under the lock."""
    before = small_machine()
    before.unaccepted_memory = True
    assert nolock_alloc(before, 0) is None
    k = small_machine(release="6.16")
    k.unaccepted_memory = True
    page = nolock_alloc(k, 0)
    assert page is not None and P.page_ref_count(page) == 1
    assert k.unaccepted_memory and not [e for e in k.events if e[4] == "unaccepted_memory_lock"]
    k.call(A.alloc_pages, G.GFP_KERNEL, 0)
    assert not k.unaccepted_memory and [e for e in k.events if e[4] == "unaccepted_memory_lock"]
    check_invariants(k)


@pytest.mark.rule("S9.11.1")
def test_on_up_a_nolock_allocation_in_nmi_returns_null_at_once():
    """S9.11.1: on a uniprocessor kernel of 2026 the nolock allocator returns NULL in NMI before any
    lock, since there a spin_trylock cannot fail; 6.15 goes on to trylock."""
    trylocks = ("spin_trylock", "spin_trylock_irqsave")
    before = small_machine(nr_cpus=1, smp=False)
    nolock_alloc(before, 0, context="nmi")
    assert [e for e in before.events if e[3] in trylocks]
    k = small_machine(nr_cpus=1, smp=False, release="2026")
    assert nolock_alloc(k, 0, context="nmi") is None
    assert not [e for e in k.events if e[3] in trylocks]
    assert nolock_alloc(k, 0) is not None  # outside NMI it still allocates


@pytest.mark.rule("S9.12.1")
def test_a_trylock_free_skips_the_debug_objects_check():
    """S9.12.1: with DEBUG_OBJECTS_FREE a 2026 FPI_TRYLOCK free leaves the debug-objects hash lock
    alone, while an ordinary free still walks it; 6.15's nolock free walks it too."""
    def hash_lock_taken(release, free):
        k = small_machine(debug_objects=True, release=release)
        k.call(free, k.call(A.alloc_pages, G.GFP_KERNEL, 0), 0)
        return bool([e for e in k.events if e[4] == "obj_hash[].lock"])

    assert hash_lock_taken("6.15", A.free_pages_nolock)
    assert not hash_lock_taken("2026", A.free_pages_nolock)
    assert hash_lock_taken("2026", A.__free_pages)


@pytest.mark.rule("S9.13.1")
def test_page_owner_does_not_spin_for_a_nolock_allocation():
    """S9.13.1: a 6.18 nolock allocation from a stack page_owner has not listed yet records its handle
    in page_ext but neither kmallocs a list node nor takes stack_list_lock; 6.15 does both."""
    from tryalloc.mm import page_owner as po

    def run(release):
        k = small_machine(page_owner=True, release=release)
        k.call(A.alloc_pages, G.GFP_KERNEL, 0)  # the depot gets its first pool here
        listed = len(k.page_owner.stack_list)
        page = nolock_alloc(k, 0)
        handle = k.mem_map.owner_alloc_handle[page.pfn]
        assert handle not in (0, po.dummy_handle, po.failure_handle)
        spun = [e for e in k.events if e[3] == "kmalloc" or e[4] == "stack_list_lock"]
        return bool(spun), len(k.page_owner.stack_list) - listed

    assert run("6.15") == (True, 1)
    assert run("6.18") == (False, 0)


@pytest.mark.rule("S9.5.2")
def test_as_posted_the_depot_refuses_ordinary_saves_a_pool_and_lets_try_alloc_pages_spin():
    """S9.5.2 (the stack depot's part; the memcg part comes with patch 4): under the as-posted switch an
    ordinary GFP_KERNEL allocation's page_owner save may not allocate the depot's first pool, so its
    page gets the failure stack, while the save for try_alloc_pages takes pool_lock by spinning."""
    from tryalloc.mm import page_owner as po

    k = small_machine(page_owner=True, spin_polarity="as_posted")
    page = k.call(A.alloc_pages, G.GFP_KERNEL, 0)
    assert k.mem_map.owner_alloc_handle[page.pfn] == po.failure_handle
    k.call(A.try_alloc_pages, 0, 0)
    assert "raw_spin_lock_irqsave" in [e[3] for e in k.events if e[4] == "pool_lock"]


# --- 6.16 and 6.18: the rename, the gfp argument, the frozen variant ------------------------------------
def charged_machine(release, limit=1 << 20):
    """A memcg machine of ``release`` whose task on CPU 0 is in memcg "a" (limit ``limit`` pages); the
    masks of its allocations are collected in ``k.masks`` (a probe on mm_page_alloc)."""
    from tryalloc.mm import memcontrol as M
    from tryalloc.trace import register_trace

    k = small_machine(nr_cpus=1, memcg=True, release=release)
    a = M.mem_cgroup_create(k, "a", max=limit)
    M.task_set_memcg(k, 0, a)
    k.masks = []
    register_trace(k, "mm_page_alloc", lambda gfp_flags, **_: k.masks.append(gfp_flags))
    return k, a


@pytest.mark.rule("S9.9.1")
def test_6_16_renames_try_alloc_pages_to_alloc_pages_nolock():
    """S9.9.1: on 6.16 alloc_pages_nolock(nid, order) does what try_alloc_pages(nid, order) does on 6.15
    (same page, same mask, charged), and each name is refused, by name, on the release without it."""
    from tryalloc.errors import InvalidArgumentError

    old, new = charged_machine("6.15"), charged_machine("6.16")
    pages = [k.call(fn, A.NUMA_NO_NODE, 2) for (k, _), fn in ((old, A.try_alloc_pages),
                                                             (new, A.alloc_pages_nolock))]
    assert [(p.pfn, P.page_ref_count(p), P.PageHead(p)) for p in pages] == [(pages[0].pfn, 1, False)] * 2
    assert old[1].memory.usage == new[1].memory.usage == 4
    assert [e[3:] for e in old[0].events] == [e[3:] for e in new[0].events]
    with pytest.raises(InvalidArgumentError, match="called alloc_pages_nolock from 6.16"):
        new[0].call(A.try_alloc_pages, A.NUMA_NO_NODE, 0)
    with pytest.raises(InvalidArgumentError, match="call try_alloc_pages"):
        old[0].call(A.alloc_pages_nolock, A.NUMA_NO_NODE, 0)
    with pytest.raises(InvalidArgumentError, match=r"alloc_pages_nolock\(nid, order\)"):
        new[0].call(A.alloc_pages_nolock, 0, A.NUMA_NO_NODE, 0)
    assert new[1].memory.usage == 4  # the refused calls allocated nothing


@pytest.mark.rule("S9.9.2")
@pytest.mark.rule("S9.9.3")
def test_6_18_alloc_pages_nolock_takes_gfp_and_charges_only_with_gfp_account():
    """S9.9.2, S9.9.3: on 6.18 alloc_pages_nolock(gfp, nid, order) adds NOWARN, ZERO, NOMEMALLOC and
    COMP to the caller's mask (an order-1 page comes out compound), charges only for __GFP_ACCOUNT, and
    warns once -- and goes on -- for any other caller bit.  On 6.16 the two-argument form charges always."""
    k, a = charged_machine("6.18")
    plain = k.call(A.alloc_pages_nolock, 0, A.NUMA_NO_NODE, 1)
    assert plain.memcg_data == 0 and a.memory.usage == 0 and P.PageHead(plain)
    assert k.masks == [G.__GFP_NOWARN | G.__GFP_ZERO | G.__GFP_NOMEMALLOC | G.__GFP_COMP]
    accounted = k.call(A.alloc_pages_nolock, G.__GFP_ACCOUNT, A.NUMA_NO_NODE, 0)
    assert accounted.memcg_data and a.memory.usage == 1
    assert not [e for e in k.events if e[3] == "WARN"] and not k.nolock_gfp_warned
    before, b = charged_machine("6.16")
    assert before.call(A.alloc_pages_nolock, A.NUMA_NO_NODE, 0).memcg_data and b.memory.usage == 1


@pytest.mark.rule("S9.9.2")
def test_6_18_the_vm_warning_for_a_stray_bit_comes_once():
    """S9.9.2: a caller bit other than __GFP_ACCOUNT warns on the first call only, and each call still
    allocates."""
    k, _ = charged_machine("6.18")
    warns = []
    for _ in range(3):
        assert k.call(A.alloc_pages_nolock, G.__GFP_HIGH, A.NUMA_NO_NODE, 0) is not None
        warns.append(len([e for e in k.events if e[3] == "WARN"]))
    assert warns == [1, 0, 0]


@pytest.mark.rule("S9.9.3")
def test_6_18_bpf_asks_for_the_charge():
    """S9.9.3: BPF's __bpf_alloc_page, where it may not sleep, passes __GFP_ACCOUNT on 6.18, so its page
    is charged to the active memcg as it was on 6.15 (where the mask had it built in)."""
    from tryalloc.bpf import syscall
    from tryalloc.mm import memcontrol as M

    for release in ("6.15", "6.16", "6.18"):
        k, a = charged_machine(release)

        def in_irq(a=a):
            old = M.set_active_memcg(a)
            try:
                return syscall.__bpf_alloc_page(A.NUMA_NO_NODE)
            finally:
                M.set_active_memcg(old)

        page = k.call(in_irq, context="hardirq")
        assert page is not None and page.memcg_data and a.memory.usage == 1, release
        assert [bool(mask & G.__GFP_COMP) for mask in k.masks] == [release == "6.18"], release


@pytest.mark.rule("S9.10.1")
def test_6_18_alloc_frozen_pages_nolock_hands_out_refcount_0_and_frees_frozen():
    """S9.10.1: on 6.18 alloc_frozen_pages_nolock returns a charged page with refcount 0, and a charge
    that fails frees it through the frozen free path with FPI_TRYLOCK (never free_pages_nolock, which
    would drop a reference the page does not have); alloc_pages_nolock is the same plus refcount 1.  On
    6.15 and 6.16 there is no frozen variant."""
    from tryalloc.errors import InvalidArgumentError

    k, a = charged_machine("6.18", limit=1)
    frozen = k.call(A.alloc_frozen_pages_nolock, G.__GFP_ACCOUNT, A.NUMA_NO_NODE, 0)
    assert P.page_ref_count(frozen) == 0 and frozen.memcg_data and a.memory.usage == 1
    frees = []
    real = A.__free_unref_page

    def spy(page, order, fpi_flags):
        frees.append((page.pfn, P.page_ref_count(page), fpi_flags))
        return real(page, order, fpi_flags)

    A.__free_unref_page, saved = spy, A.__free_unref_page
    try:
        assert k.call(A.alloc_frozen_pages_nolock, G.__GFP_ACCOUNT, A.NUMA_NO_NODE, 0) is None
    finally:
        A.__free_unref_page = saved
    assert len(frees) == 1 and frees[0][1:] == (0, A.FPI_TRYLOCK)
    assert not [e for e in k.events if e[3] == "spin_lock_irqsave"]
    check_invariants(k)
    k2, _ = charged_machine("6.18")
    assert P.page_ref_count(k2.call(A.alloc_pages_nolock, G.__GFP_ACCOUNT, A.NUMA_NO_NODE, 0)) == 1
    for release in ("6.15", "6.16"):
        with pytest.raises(InvalidArgumentError, match="arrived in 6.18"):
            charged_machine(release)[0].call(A.alloc_frozen_pages_nolock, 0, A.NUMA_NO_NODE, 0)


# --- proposed in 2026 ---------------------------------------------------------------------------------
@pytest.mark.rule("S9.14.1")
def test_proposed_a_nolock_free_where_trylock_is_unsafe_never_touches_zone_lock():
    """S9.14.1 (proposed): where can_spin_trylock() is false an FPI_TRYLOCK free goes to the zone's llist
    without trying zone->lock on every path: a non-pcp order and an isolated pageblock on RT in NMI, and
    an order-0 free in NMI on a UP kernel.  On 6.15 the RT high-order free trylocks the rt_mutex lock
    (R2.7's invalid-context report)."""
    from tryalloc.errors import InvalidContextError
    from tryalloc.mm.mmzone import MIGRATE_ISOLATE

    def nmi_free(order, isolate=False, **config):
        k = small_machine(nr_cpus=1, **config)
        page = k.call(A.alloc_pages, G.GFP_KERNEL, order)
        if isolate:
            A.set_pageblock_migratetype(page, MIGRATE_ISOLATE)
        k.call(A.free_pages_nolock, page, order, context="nmi")
        touched = [e for e in k.events if e[4] in ("zone->lock", "pcp->lock")]
        deferred = sum(1 for z in k.zones for _ in z.trylock_free_pages)
        return touched, deferred

    with pytest.raises(InvalidContextError, match=r"spin_trylock_irqsave\(zone->lock\)"):
        nmi_free(4, preempt_rt=True)
    assert nmi_free(4, preempt_rt=True, release="proposed") == ([], 1)
    assert nmi_free(0, isolate=True, preempt_rt=True, release="proposed") == ([], 1)
    up = dict(smp=False, release="proposed")
    assert nmi_free(0, **up) == ([], 1) and nmi_free(4, **up) == ([], 1)
    assert nmi_free(0, smp=False)[1] == 0  # 6.15 on UP: the NMI's trylocks succeed

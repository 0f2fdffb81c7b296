"""Patch 6: bpf_map_alloc_pages() through try_alloc_pages() (spec 7, R6.1-R6.6).

Before the patch a caller passes its gfp mask and every page comes from alloc_pages_node, so every test
marked with a rule fails (strict xfail) at level 5: the allocator a tracer sees is the caller's, an
atomic context that passes the arena's GFP_KERNEL is an invalid context, and an RT fault never fails
for want of a lock.
"""
import pytest

import tryalloc as HERE
from tryalloc import Kernel, series
from tryalloc.book import bpf_scenarios as B
from tryalloc.book.memcg_scenarios import counting_calls
from tryalloc.bpf import arena as AR
from tryalloc.bpf import syscall as S
from tryalloc.errors import InvalidContextError
from tryalloc.include import gfp as G
from tryalloc.kernel import preempt as P
from tryalloc.kernel.locking import spin_lock, spin_unlock, spinlock_t
from tryalloc.mm import memcontrol as M
from tryalloc.mm import page_alloc as A
from tryalloc.mm.page import CONTENT_ZERO
from tryalloc.trace import register_trace

# a generated level has its markers stripped, so series.load() of another level gives the same code
MARKED = "+++ b/tryalloc/bpf/syscall.py" in series.patch_diff("5", "6")
cross_level = pytest.mark.skipif(not MARKED, reason="a generated level carries no level markers")

#: What a v6.13 caller has to pass in each context: the arena's mask where it may sleep, GFP_ATOMIC else.
SLEEPING_MASK = G.GFP_KERNEL | G.__GFP_ZERO


def caller_mask(label):
    return SLEEPING_MASK if label == "task" else G.GFP_ATOMIC


def machine(preempt_rt=False, **kw):
    kw.setdefault("pages_per_node", 512)
    return Kernel(nr_cpus=kw.pop("nr_cpus", 1), preempt_rt=preempt_rt, detectors={"lockdep": "off"}, **kw)


def books(k):
    B.check_books(HERE, k)


def allocate_in(k, label, nr_pages=1, memcg=None, gfp=None):
    """``bpf_map_alloc_pages`` of ``nr_pages`` in context ``label`` (of :data:`B.CONTEXTS`) for a map
    of ``memcg``: its return value, the pages, and the masks ``mm_page_alloc`` saw."""
    m = S.bpf_map_init_from_attr(k, S.BPF_MAP_TYPE_ARRAY, 8, memcg=memcg)
    pages = [None] * nr_pages
    masks = []

    def probe(**fields):
        masks.append(fields["gfp_flags"])

    register_trace(k, "mm_page_alloc", probe)
    context, how = B.CONTEXTS[label]
    mask = caller_mask(label) if gfp is None else gfp
    body = B.entered(HERE, how, lambda: B.map_alloc_pages(S, m, mask, A.NUMA_NO_NODE, nr_pages, pages))
    ret = k.call(body, context=context)
    return ret, pages, masks


def went_through_try_alloc_pages(masks):
    """Every allocation the tracer saw had try_alloc_pages' mask: no reclaim bit, so it may not spin."""
    return bool(masks) and all(not m & G.__GFP_RECLAIM and m & G.__GFP_NOMEMALLOC for m in masks)


@pytest.mark.rule("R6.1")
def test_the_sleeping_allocator_only_with_preempt_count_zero_irqs_on_and_not_rt():
    seen = {}
    for label in B.CONTEXTS:
        k = machine()
        ret, pages, masks = allocate_in(k, label)
        assert ret == 0 and pages[0] is not None
        seen[label] = "try" if went_through_try_alloc_pages(masks) else "sleeping"
        books(k)
    assert seen == {label: "sleeping" if label == "task" else "try" for label in B.CONTEXTS}


@pytest.mark.rule("R6.1")
def test_can_alloc_pages_is_false_wherever_preempt_count_is_not_zero():
    k = machine()
    answers = {}
    for label, (context, how) in B.CONTEXTS.items():
        answers[label] = k.call(B.entered(HERE, how, lambda: (S.can_alloc_pages(), P.preempt_count(),
                                                               P.irqs_disabled())), context=context)
    assert all(can == (count == 0 and not off) for can, count, off in answers.values())
    assert [label for label, (can, _, _) in answers.items() if can] == ["task"]


@pytest.mark.rule("R6.2")
def test_on_rt_every_context_goes_through_try_alloc_pages_even_a_page_fault():
    for label in B.CONTEXTS:
        k = machine(preempt_rt=True)
        ret, pages, masks = allocate_in(k, label)
        if B.CONTEXTS[label][0] in ("hardirq", "nmi"):
            # try_alloc_pages refuses at once on RT in NMI and hard-IRQ: nothing reaches the allocator
            assert ret == -M.ENOMEM and pages == [None] and masks == []
        else:
            assert ret == 0 and went_through_try_alloc_pages(masks), label
        books(k)
    k = machine(preempt_rt=True)
    arena = AR.arena_map_alloc(k, 4, memcg=M.mem_cgroup_create(k, "a"))
    masks = []
    register_trace(k, "mm_page_alloc", lambda **f: masks.append(f["gfp_flags"]))
    assert k.call(AR.arena_vm_fault, arena, arena.user_vm_start) == 0
    assert went_through_try_alloc_pages(masks)
    assert k.call(S.can_alloc_pages) is False  # a task with nothing disabled: still not on RT


@pytest.mark.rule("R6.2")
def test_on_rt_a_task_holding_a_spinlock_looks_sleepable_and_only_the_rt_clause_says_no():
    k = machine(preempt_rt=True)
    lock = spinlock_t("zone->lock")

    def holder():
        spin_lock(lock)
        try:
            return S.can_alloc_pages(), P.preempt_count(), P.irqs_disabled()
        finally:
            spin_unlock(lock)

    assert k.call(holder) == (False, 0, False)


@pytest.mark.rule("R6.3")
@pytest.mark.parametrize("label", ["task", "NMI"])
def test_both_branches_give_a_zeroed_order0_page_charged_to_the_maps_memcg(label):
    k = machine()
    own, owner = M.mem_cgroup_create(k, "task"), M.mem_cgroup_create(k, "map")
    M.task_set_memcg(k, 0, own)
    ret, pages, masks = allocate_in(k, label, nr_pages=2, memcg=owner)
    assert ret == 0 and all(p.contents == CONTENT_ZERO and p.order == 0 for p in pages)
    assert all(p.memcg_data == owner.objcg.id | M.MEMCG_DATA_KMEM for p in pages)
    assert owner.kmem == 2 and own.kmem == 0
    # what the allocator was asked for: zeroed, accounted, no warning, order 0 -- whoever asked
    assert all(m & G.__GFP_ZERO and m & G.__GFP_ACCOUNT and m & G.__GFP_NOWARN for m in masks)
    books(k)


def fail_quietly(label):
    """A one-page map allocation in ``label`` on a machine with no free page: what it returned, and
    the warnings the run printed (``warn_alloc``)."""
    k = machine(pages_per_node=64, max_order=5, pageblock_order=5, memcg=False)
    A.setup_per_zone_wmarks(k, 0)
    hoard = []
    k.call(lambda: hoard.extend(iter(lambda: A.alloc_pages(G.GFP_KERNEL | G.__GFP_NOWARN, 0), None)))
    m = S.bpf_map_init_from_attr(k, S.BPF_MAP_TYPE_ARRAY, 1)
    context, _ = B.CONTEXTS[label]
    got = []

    def body():
        got.append(B.map_alloc_pages(S, m, caller_mask(label), A.NUMA_NO_NODE, 1, [None]))

    if context == "task":
        k.spawn(0, body)
        res = k.run()
    else:
        k.spawn(0, lambda: HERE.kernel.sched.point("idle"))
        k.on_interrupt(0, context, body)
        res = k.run(HERE.Scripted(HERE.When(cpu=0, op="start", inject=context)))
    assert B.allocated(HERE, k) == len(hoard)
    books(k)
    return got, [e for e in res.events if e[3] == "warn_alloc"]


@pytest.mark.rule("R6.3")
def test_a_failure_in_either_branch_prints_no_warning():
    for label in ("task", "NMI"):
        assert fail_quietly(label) == ([-M.ENOMEM], []), label


@pytest.mark.rule("R6.4")
@pytest.mark.parametrize("label", ["task", "softirq", "NMI"])
def test_all_or_nothing_frees_the_pages_already_got_with_free_pages_nolock(label):
    k = machine()
    small = M.mem_cgroup_create(k, "small", max=3)
    with counting_calls(S, "free_pages_nolock") as nolock:
        ret, pages, _ = allocate_in(k, label, nr_pages=5, memcg=small)
    assert ret == -M.ENOMEM and pages == [None] * 5
    assert len(nolock) == 3 and all(order == 0 for _, order in nolock)  # the three charged before the 4th
    assert B.allocated(HERE, k) == 0 and small.kmem == 0
    books(k)
    ret, pages, _ = allocate_in(k, label, nr_pages=3, memcg=small)
    assert ret == 0 and all(p is not None for p in pages) and len(set(pages)) == 3


@pytest.mark.rule("R6.5")
@pytest.mark.parametrize("context", ["softirq", "hardirq", "nmi"])
def test_the_arena_stays_sleepable_only_while_its_allocation_step_works_anywhere(context):
    def fresh():
        k = machine()
        arena = AR.arena_map_alloc(k, 8, memcg=M.mem_cgroup_create(k, "a"))
        return k, arena, k.call(AR.bpf_arena_alloc_pages, arena, None, 1, A.NUMA_NO_NODE, 0)

    k, arena, addr = fresh()
    pages = [None]
    # the arena's own allocation call, as the arena makes it at this level, from an atomic context
    ret = k.call(B.map_alloc_pages, S, arena.map, SLEEPING_MASK, A.NUMA_NO_NODE, 1, pages, context=context)
    assert ret == 0 and pages[0] is not None
    k.call(A.free_pages_nolock, pages[0], 0)
    with counting_calls(AR, "__free_page") as frees:  # the arena still frees with __free_page
        k.call(AR.bpf_arena_free_pages, arena, addr, 1)
    assert len(frees) == 1 and B.allocated(HERE, k) == 0
    books(k)
    # ... while the arena around it still sleeps: arena->lock is a mutex, kvcalloc uses GFP_KERNEL
    for call in [lambda arena, addr: AR.bpf_arena_alloc_pages(arena, None, 1, A.NUMA_NO_NODE, 0),
                 lambda arena, addr: AR.bpf_arena_free_pages(arena, addr, 1),
                 lambda arena, addr: AR.arena_vm_fault(arena, arena.user_vm_start + AR.PAGE_SIZE)]:
        k, arena, addr = fresh()
        with pytest.raises(InvalidContextError, match="may sleep"):
            k.call(call, arena, addr, context=context)


@pytest.mark.rule("R6.6")
def test_on_rt_arena_faults_get_spurious_sigsegv_under_zone_lock_contention():
    rt = B.fault_contention(HERE, preempt_rt=True, nr_cpus=3, seeds=range(10))
    assert rt["sigsegv"] > 0 and rt["explained"] == rt["sigsegv"]  # each after a failed zone trylock
    assert rt["offsets_free"] == rt["sigsegv"] and rt["leaked"] == 0  # a failed fault gives its offset back
    plain = B.fault_contention(HERE, preempt_rt=False, nr_cpus=3, seeds=range(10))
    assert plain["sigsegv"] == 0  # !RT: the fault may sleep, so it waits for the lock


@pytest.mark.rule("R6.6")
def test_every_schedule_of_one_fault_against_one_zone_lock_holder_searched():
    def check(k, res):
        books(k)
        assert not k.fault[0] or B.zone_trylocks_failed(res.events) > 0  # SIGSEGV: CPU0 lost the lock

    outcomes = {}
    for rt in (False, True):
        found = HERE.explore(B.one_fault_build(HERE, rt), preemption_bound=1, check=check,
                             outcome=lambda k, res: k.fault[0])
        assert found.ok and found.complete
        outcomes[rt] = dict(found.outcomes)
    assert set(outcomes[False]) == {0}  # !RT: the fault waits for the lock in every schedule
    assert outcomes[True].get(AR.VM_FAULT_SIGSEGV, 0) > 0 and outcomes[True].get(0, 0) > 0


# --- the chain: allocator -> tracepoint or perf NMI -> BPF -> bpf_map_alloc_pages -> allocator -----------------
@cross_level
@pytest.mark.parametrize("rt", [False, True], ids=["!RT", "RT"])
def test_the_chain_deadlocks_at_level_0_under_zone_lock_and_completes_at_level_6(rt):
    before, after = series.load("0"), series.load("6")
    for hook, hk in B.HOOKS.items():
        old, new = B.chain_run(before, hook, rt), B.chain_run(after, hook, rt)
        assert new["outcome"] == "completes" and new["balanced"], hook
        if hk.under_zone_lock or (hk.attach == "perf" and rt):
            assert old["outcome"] != "completes" and old["runs"] == 1, hook
            assert new["got"] == 0 and new["nulls"] == new["runs"] > 0  # NULL, not a deadlock
        else:
            assert old["outcome"] == "completes" and old["got"] == new["got"] == new["runs"] > 0, hook
        if hk.under_zone_lock and hk.attach != "perf":  # a tracepoint in the task, under zone->lock
            count, irqs_off = new["seen"]
            # RT's spinlock_t disables neither: only the RT clause of can_alloc_pages says no
            assert (count == 0 and not irqs_off) if rt else (count > 0 and irqs_off)


def test_the_chain_refuses_an_unknown_hook():
    with pytest.raises(HERE.errors.InvalidArgumentError, match="hook must be one of"):
        B.chain_run(HERE, "sched_switch")


# --- bad input to the arena kfuncs --------------------------------------------------------------------------------
def test_bad_arena_requests_give_null_and_bad_frees_change_nothing():
    k = machine()
    memcg = M.mem_cgroup_create(k, "a", max=16)
    arena = AR.arena_map_alloc(k, 8, memcg=memcg)
    base = arena.user_vm_start
    other = S.bpf_map_init_from_attr(k, S.BPF_MAP_TYPE_ARRAY, 8)

    def state():
        books(k)
        return B.allocated(HERE, k), memcg.kmem, [list(r) for r in arena.rt.runs], sorted(arena.kern_vm)

    empty = state()
    for args in [(arena, None, 0, 0), (arena, None, 9, 0), (arena, base + 100, 1, 0),
                 (arena, base + 8 * AR.PAGE_SIZE, 1, 0), (arena, base + 7 * AR.PAGE_SIZE, 2, 0),
                 (arena, None, 1, 1), (other, None, 1, 0)]:
        map_, addr, count, flags = args
        assert k.call(AR.bpf_arena_alloc_pages, map_, addr, count, A.NUMA_NO_NODE, flags) is None, args
        assert state() == empty, args
    addr = k.call(AR.bpf_arena_alloc_pages, arena, None, 2, A.NUMA_NO_NODE, 0)
    two = state()
    assert two[:2] == (2, 2)
    k.call(AR.bpf_arena_free_pages, arena, base + 5 * AR.PAGE_SIZE, 1)  # never allocated
    k.call(AR.bpf_arena_free_pages, other, addr, 2)  # not an arena
    assert state() == two
    k.call(AR.bpf_arena_free_pages, arena, addr, 2)
    k.call(AR.bpf_arena_free_pages, arena, addr, 2)  # twice
    assert state() == empty


def test_bpf_map_alloc_pages_refuses_bad_arguments_before_allocating():
    k = machine()
    m = S.bpf_map_init_from_attr(k, S.BPF_MAP_TYPE_ARRAY, 8)
    for nid, nr, pages, match in [(3, 1, [None], "no node 3"), (0, 2, [None], "room for 2"),
                                  (0, -1, [], "nr_pages")]:
        with pytest.raises(HERE.errors.InvalidArgumentError, match=match):
            k.call(B.map_alloc_pages, S, m, G.GFP_KERNEL, nid, nr, pages)
    assert B.allocated(HERE, k) == 0


# --- the workload -------------------------------------------------------------------------------------------------
@cross_level
@pytest.mark.parametrize("nr_cpus", [2, 4])
def test_on_not_rt_the_workload_behaves_as_before_the_patch(nr_cpus):
    before = B.sampler_workload(series.load("5"), False, nr_cpus=nr_cpus)
    after = B.sampler_workload(series.load("6"), False, nr_cpus=nr_cpus)
    keys = ("requests", "allocated", "refused", "contention", "other", "deferred", "max_usage")
    assert {k: before[k] for k in keys} == {k: after[k] for k in keys}
    assert after["contention"] == 0 and after["leaked"] == 0 and after["usage_after"] == 0


def test_workload_stress_keeps_the_books_across_seeds_and_cpus():
    """Many schedules of the workload on !RT and RT, 2 to 4 CPUs, the invariants checked every few
    requests inside the run and after it: nothing leaked, usage never above memory.max."""
    contention = 0
    for seed in range(6):
        for nr_cpus in (2, 3, 4):
            for rt in (False, True):
                run = B.sampler_workload(HERE, rt, nr_cpus=nr_cpus, rounds=20, seed=seed, check_every=5)
                assert run["leaked"] == 0 and run["usage_after"] == 0
                assert all(p["usage"] <= run["limit"] for p in run["series"])
                assert run["allocated"] + run["refused"] + run["contention"] == run["requests"]
                assert run["other"] == 0
                contention += run["contention"] if rt else 0
                assert rt or run["contention"] == 0
    # RT's faults and kfunc calls go through try_alloc_pages from patch 6 on (R6.2): some lose the lock
    assert (contention > 0) == B.has_patch6(HERE)


def test_workload_refuses_a_bad_cpu_count():
    with pytest.raises(HERE.errors.InvalidArgumentError, match="nr_cpus must be 2..4"):
        B.sampler_workload(HERE, False, nr_cpus=5)


@cross_level
def test_the_context_table_needs_patch_6():
    with pytest.raises(HERE.errors.InvalidArgumentError, match="no can_alloc_pages"):
        B.can_alloc_table(series.load("5"))

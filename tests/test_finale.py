"""The finale, beyond the series: the any-context BPF arena of the follow-ups (unconfirmed details) and
the sampling profiler it was for.  No rule ids exist for these; each test names the behaviour.

Tests of the any-context arena are level-bound (``levels(since="6.15")``): before the last level the
arena is the one patch 6 left, so they must fail there.  The resilient spinlock itself exists at every
level.
"""
from functools import partial

import pytest

import tryalloc as HERE
from tryalloc import Kernel, series
from tryalloc.book import bpf_scenarios as B
from tryalloc.book import finale_scenarios as F
from tryalloc.book.memcg_scenarios import counting_calls
from tryalloc.bpf import arena as AR
from tryalloc.bpf import syscall as S
from tryalloc.errors import DeadlockError, InvalidArgumentError, InvalidContextError, LockUsageError
from tryalloc.kernel import preempt as P
from tryalloc.kernel.locking import rqspinlock as RQ
from tryalloc.mm import memcontrol as M
from tryalloc.mm import page_alloc as A
from tryalloc.mm import slab as SL

any_context = pytest.mark.levels(since="6.15")


def machine(nr_cpus=1, **kw):
    kw.setdefault("pages_per_node", 512)
    return Kernel(nr_cpus=nr_cpus, detectors={"lockdep": "off"}, **kw)


def any_machine(nr_cpus=1, **kw):
    return machine(nr_cpus, release=F.ANY_CONTEXT_RELEASE, **kw)


# --- the resilient spinlock --------------------------------------------------------------------
def test_a_resilient_spinlock_is_taken_with_irqs_off_and_released_to_the_saved_state():
    k = machine()
    lock = RQ.rqspinlock_t("l")
    seen = []

    def body():
        ret, flags = RQ.raw_res_spin_lock_irqsave(lock)
        seen.append((ret, P.irqs_disabled(), P.preempt_count(), lock.owner is not None))
        RQ.raw_res_spin_unlock_irqrestore(lock, flags)
        seen.append((P.irqs_disabled(), P.preempt_count(), lock.owner))

    k.call(body)
    assert seen == [(0, True, 1, True), (False, 0, None)]


def test_a_resilient_spinlock_held_on_this_cpu_fails_at_once_with_edeadlk():
    k = machine()
    lock = RQ.rqspinlock_t("l")
    got = []

    def nmi():
        got.append(RQ.raw_res_spin_lock_irqsave(lock))

    def task():
        ret, flags = RQ.raw_res_spin_lock_irqsave(lock)
        HERE.kernel.sched.inject_interrupt("nmi", nmi)
        got.append(RQ.raw_res_spin_lock_irqsave(lock))  # the holder itself: AA too
        RQ.raw_res_spin_unlock_irqrestore(lock, flags)

    k.spawn(0, task)
    res = k.run()
    assert got == [(-RQ.EDEADLK, None), (-RQ.EDEADLK, None)]
    assert sum(e[3] == "res_spin_deadlock" for e in res.events) == 2 and lock.owner is None


def _take_once(k, lock):
    """Take the resilient lock once, record what it returned in ``k.got`` and let go if it was taken."""
    ret, flags = RQ.raw_res_spin_lock_irqsave(lock)
    k.got.append(ret)
    if not ret:
        RQ.raw_res_spin_unlock_irqrestore(lock, flags)


def test_a_resilient_spinlock_waits_for_another_cpu_in_every_schedule_and_never_spins():
    def build():
        k = machine(nr_cpus=2)
        lock = RQ.rqspinlock_t("l")
        k.got = []

        k.spawn(0, partial(_take_once, k, lock))
        k.spawn(1, partial(_take_once, k, lock))
        return k

    waited = []

    def check(k, res):
        waited.append(any(e[3] == "res_spin_wait" for e in res.events))
        assert not any(e[3] in F.BLOCKING for e in res.events)

    found = HERE.explore(build, preemption_bound=2, check=check, outcome=lambda k, res: tuple(k.got))
    assert found.ok and found.complete and set(found.outcomes) == {(0, 0)}
    assert any(waited)  # some schedule made one CPU wait for the other


def test_a_resilient_spinlock_times_out_after_losing_every_try():
    def build():
        k = machine(nr_cpus=2)
        lock = RQ.rqspinlock_t("l")
        k.got = []

        def hog():  # takes the lock again and again
            for _ in range(RQ.RES_SPIN_TRIES + 1):
                ret, flags = RQ.raw_res_spin_lock_irqsave(lock)
                RQ.raw_res_spin_unlock_irqrestore(lock, flags)

        k.spawn(0, hog)
        k.spawn(1, partial(_take_once, k, lock))
        return k

    found = HERE.explore(build, preemption_bound=None, outcome=lambda k, res: k.got[0])  # every schedule
    assert found.ok and found.complete
    assert found.outcomes[-RQ.ETIMEDOUT] > 0 and found.outcomes[0] > 0


def test_a_resilient_spinlock_refuses_a_release_it_does_not_hold_and_a_foreign_lock():
    k = machine()
    lock = RQ.rqspinlock_t("l")
    with pytest.raises(LockUsageError, match="does not hold"):
        k.call(lambda: RQ.raw_res_spin_unlock_irqrestore(lock, P.local_irq_save()))
    with pytest.raises(LockUsageError, match="not an rqspinlock_t"):
        k.call(RQ.raw_res_spin_lock_irqsave, HERE.kernel.locking.raw_spinlock_t("x"))
    assert lock.owner is None


# --- kmalloc_nolock ------------------------------------------------------------------------------
@any_context
@pytest.mark.parametrize("context", ["task", "nmi"])
def test_kmalloc_nolock_gives_objects_up_to_the_largest_cache_from_any_context(context):
    k = any_machine()
    memcg = M.mem_cgroup_create(k, "m")

    def body(size):
        old = M.set_active_memcg(memcg)
        obj = SL.kmalloc_nolock(size, HERE.include.gfp.__GFP_ACCOUNT, A.NUMA_NO_NODE)
        M.set_active_memcg(old)
        return obj

    sizes = [1, SL.PAGE_SIZE, SL.KMALLOC_MAX_CACHE_SIZE]
    objs = [k.call(body, size, context=context) for size in sizes]
    assert [o.order for o in objs] == [0, 0, 1] and memcg.kmem == 1 + 1 + 2
    assert len(objs[2].slots) == SL.KMALLOC_MAX_CACHE_SIZE // SL.POINTER_SIZE
    assert k.call(body, SL.KMALLOC_MAX_CACHE_SIZE + 1, context=context) is None
    assert k.call(body, 0, context=context) is None
    for obj in objs:
        k.call(SL.kfree_nolock, obj, context=context)
    B.check_books(HERE, k)
    assert B.allocated(HERE, k) == 0 and memcg.kmem == 0


@any_context
def test_kmalloc_nolock_refuses_bad_flags_and_kfree_nolock_a_foreign_object():
    with pytest.raises(InvalidArgumentError, match="arrived in 6.18"):
        machine().call(SL.kmalloc_nolock, 8, 0, A.NUMA_NO_NODE)
    k = any_machine()
    with pytest.raises(InvalidArgumentError, match="gfp_flags"):
        k.call(SL.kmalloc_nolock, 8, HERE.include.gfp.GFP_KERNEL, A.NUMA_NO_NODE)
    with pytest.raises(InvalidArgumentError, match="did not come from kmalloc_nolock"):
        k.call(SL.kfree_nolock, object())
    assert B.allocated(HERE, k) == 0


# --- the any-context arena -----------------------------------------------------------------------
def test_as_patch6_left_it_the_arena_in_nmi_is_an_invalid_context_at_level_6():
    L6 = series.load("6")
    k = F.profiler_build(L6, any_context=False)()
    with pytest.raises(InvalidContextError, match="kvcalloc"):
        k.run(L6.Random(0))


@any_context
@pytest.mark.parametrize("context", ["softirq", "hardirq", "nmi"])
def test_the_any_context_arena_allocates_in_any_context_through_the_nolock_allocator(context):
    k = any_machine()
    arena = AR.arena_map_alloc(k, 8, memcg=M.mem_cgroup_create(k, "a"))
    with counting_calls(SL, "alloc_pages_nolock") as arrays, counting_calls(S, "alloc_pages_nolock") as pages:
        addr = k.call(AR.bpf_arena_alloc_pages, arena, None, 3, A.NUMA_NO_NODE, 0, context=context)
    assert addr == arena.user_vm_start and len(arena.kern_vm) == 3
    assert len(arrays) == 1 and len(pages) == 3  # the page-pointer array, then the three pages
    assert arena.map.objcg.memcg.kmem == 3  # the array was charged too, and given back
    k.call(AR.arena_free_pages, arena, addr, 3)
    B.check_books(HERE, k)
    assert B.allocated(HERE, k) == 0


@any_context
def test_the_page_array_is_capped_at_the_largest_kmalloc_cache_and_reused_batch_after_batch():
    k = any_machine(pages_per_node=4096)
    arena = AR.arena_map_alloc(k, 1100)
    cap = SL.KMALLOC_MAX_CACHE_SIZE // SL.POINTER_SIZE
    with counting_calls(AR.slab, "kmalloc_nolock") as arrays, counting_calls(AR, "bpf_map_alloc_pages") as batches:
        addr = k.call(AR.bpf_arena_alloc_pages, arena, None, 1100, A.NUMA_NO_NODE, 0)
    assert addr and len(arena.kern_vm) == 1100
    assert [size for size, *_ in arrays] == [cap * SL.POINTER_SIZE]
    assert [nr for _, _, nr, _ in batches] == [cap, 1100 - cap]
    k.call(AR.arena_free_pages, arena, addr, 1100)
    B.check_books(HERE, k)
    assert B.allocated(HERE, k) == 0


@any_context
def test_a_free_that_may_not_sleep_is_deferred_to_the_worker():
    k = any_machine()
    arena = AR.arena_map_alloc(k, 8, memcg=M.mem_cgroup_create(k, "a"))
    addr = k.call(AR.bpf_arena_alloc_pages, arena, None, 2, A.NUMA_NO_NODE, 0, context="nmi")
    k.call(AR.bpf_arena_free_pages, arena, addr, 2, context="nmi")
    assert arena.free_work_pending and len(arena.free_spans) == 1
    assert len(arena.kern_vm) == 2 and AR.is_range_tree_set(arena.rt, 0, 2) != 0  # nothing freed yet
    with counting_calls(AR, "__free_page") as frees:
        k.call(AR.arena_free_worker, arena)
    assert len(frees) == 2 and not arena.free_work_pending and len(arena.free_spans) == 0
    assert not arena.kern_vm and AR.is_range_tree_set(arena.rt, 0, 8) == 0
    B.check_books(HERE, k)
    assert B.allocated(HERE, k) == 0 and arena.map.objcg.memcg.kmem == 0


@any_context
def test_a_deferred_free_without_memory_for_its_span_leaves_the_pages_until_the_arena_goes():
    k = any_machine()
    memcg = M.mem_cgroup_create(k, "a", max=2)
    arena = AR.arena_map_alloc(k, 8, memcg=memcg)
    addr = k.call(AR.bpf_arena_alloc_pages, arena, None, 1, A.NUMA_NO_NODE, 0)
    k.call(AR.arena_vm_fault, arena, arena.user_vm_start + AR.PAGE_SIZE)  # the second page: memcg full
    k.call(M.drain_local_stock)  # no charge left ahead of use: the span cannot be charged
    before = len(k.events)
    k.call(AR.bpf_arena_free_pages, arena, addr, 1, context="nmi")
    ops = [e[3] for e in k.events[before:]]
    assert "arena_free_leaked" in ops and not arena.free_work_pending and len(arena.kern_vm) == 2
    k.call(AR.arena_free_pages, arena, arena.user_vm_start, 8)  # the arena's end frees them
    B.check_books(HERE, k)
    assert B.allocated(HERE, k) == 0


@any_context
def test_an_nmi_on_the_arena_lock_holder_gets_null_instead_of_a_deadlock():
    k = any_machine()
    arena = AR.arena_map_alloc(k, 8)
    got = []

    def nmi():
        got.append(AR.bpf_arena_alloc_pages(arena, None, 1, A.NUMA_NO_NODE, 0))

    def task():
        ret, flags = AR.arena_lock(arena)
        HERE.kernel.sched.inject_interrupt("nmi", nmi)
        AR.arena_unlock(arena, flags)

    k.spawn(0, task)
    res = k.run()
    assert got == [None] and any(e[3] == "res_spin_deadlock" for e in res.events)
    assert not arena.kern_vm and B.allocated(HERE, k) == 0  # the array was given back


@any_context
def test_with_a_plain_raw_spinlock_the_search_finds_the_nmi_deadlock_at_once():
    with F.plain_arena_lock(HERE):
        found = HERE.explore(F.profiler_build(HERE), preemption_bound=0, check=F.profiler_check(HERE))
    assert not found.ok and isinstance(found.failures[0], DeadlockError)
    assert "arena->spinlock" in found.failures[0].title


# --- the profiler -------------------------------------------------------------------------------------
@any_context
def test_the_profiler_searched_within_its_bounds_has_no_deadlock_no_corruption_and_no_nmi_wait():
    found = HERE.explore(F.profiler_build(HERE, nr_cpus=2), preemption_bound=0, check=F.profiler_check(HERE),
                         outcome=F.profiler_outcome)
    assert found.ok and found.complete
    assert max(samples for samples, _ in found.outcomes) == 2  # both NMIs recorded, in some schedule
    causes = {c for _, lost in found.outcomes for c in lost}
    assert causes and causes <= set(F.LOSS_CAUSES)


@any_context
def test_under_a_tight_memcg_limit_samples_are_lost_to_the_limit_and_counted():
    build = F.profiler_build(HERE, nr_cpus=2, limit=1, nmis=2)
    k = build()
    res = k.run(HERE.Random(3))
    lost = k.prof["lost"]
    assert lost["memcg limit"] > 0 and k.prof["samples"] + sum(lost.values()) == 4
    F.profiler_check(HERE)(k, res)


@any_context
def test_the_profiler_under_random_stress_on_four_cpus_keeps_every_invariant():
    totals = F.profiler_stress(HERE, seeds=range(10), nr_cpus=4)
    assert totals["runs"] == 10 and totals["samples"] > 0 and totals["nmi_waits"] == 0
    assert totals["deferred"] > 0 and totals["worker"] > 0
    assert set(totals["lost"]) <= set(F.LOSS_CAUSES)


def test_the_profiler_refuses_bad_sizes():
    with pytest.raises(InvalidArgumentError, match="nr_cpus"):
        F.profiler_build(HERE, nr_cpus=5)
    with pytest.raises(InvalidArgumentError, match="window"):
        F.profiler_build(HERE, window=0)

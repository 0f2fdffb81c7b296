"""Patch 4: the memcg stock under a trylock (spec 5, R4.1-R4.10).

Most scenarios put an NMI (a BPF program charging its map's memcg) on a task that is inside
``stock_lock``: at level 3 the NMI walks into the section (per-CPU corruption) or, at the level
before, ``consume_stock`` has no gfp argument, so every test marked with a rule fails there.
"""
import pytest

from tryalloc import Kernel, Scripted, When
from tryalloc.errors import InvalidArgumentError, MemcgAccountingError
from tryalloc.include.gfp import __GFP_ACCOUNT, __GFP_NOMEMALLOC, __GFP_NOWARN, __GFP_ZERO, GFP_KERNEL
from tryalloc.mm import memcontrol as M
from tryalloc.mm import page as _memmap  # noqa: F401  (its initcall gives every Kernel a mem_map)

#: the mask try_alloc_pages charges with from patch 5: no reclaim bit, so it may not spin
NOSPIN = __GFP_NOWARN | __GFP_ZERO | __GFP_NOMEMALLOC | __GFP_ACCOUNT


def stock(k, cpu=0):
    row = M.memcg_stock_view(k)[cpu]
    return row["cached"], row["nr_pages"]


def machine(**kw):
    return Kernel(**{"nr_cpus": 1, "pages_per_node": 512, **kw})


def stock_lock_ops(k, context="nmi"):
    return [e[3] for e in k.events if e[4] == M.STOCK_LOCK and e[2].endswith(context)]


def nmi_inside_stock_lock(k, task, nmi, nth=1):
    """Run ``task`` on CPU0 and deliver one NMI running ``nmi`` just after the task's ``nth`` entry
    into stock_lock; return what ``nmi`` returned."""
    got = []
    k.spawn(0, task)
    k.on_interrupt(0, "nmi", lambda: got.append(nmi()))
    k.run(Scripted(When(cpu=0, op="acquired", obj=M.STOCK_LOCK, inject="nmi", nth=nth)))
    assert len(got) == 1, "the NMI did not arrive inside the section"
    return got[0]


# --- consume_stock ----------------------------------------------------------------------------------
@pytest.mark.rule("R4.1")
def test_a_request_above_the_batch_fails_without_touching_the_lock():
    k = machine()
    a = M.mem_cgroup_create(k, "a")
    k.call(M.try_charge_memcg, a, GFP_KERNEL, 1)
    assert k.call(M.consume_stock, a, M.MEMCG_CHARGE_BATCH + 1, NOSPIN) is False
    assert stock_lock_ops(k, "task") == [] and stock(k) == ("a", M.MEMCG_CHARGE_BATCH - 1)


@pytest.mark.rule("R4.2")
@pytest.mark.parametrize("gfp", [GFP_KERNEL, NOSPIN], ids=["spinning", "non-spinning"])
def test_with_the_lock_free_consume_stock_is_the_baseline(gfp):
    k = machine()
    a, b = M.mem_cgroup_create(k, "a"), M.mem_cgroup_create(k, "b")
    k.call(M.try_charge_memcg, a, GFP_KERNEL, M.MEMCG_CHARGE_BATCH - 10)  # the stock keeps 10 of a's
    assert k.call(M.consume_stock, a, 4, gfp) is True and stock(k) == ("a", 6)
    assert k.call(M.consume_stock, a, 7, gfp) is False and stock(k) == ("a", 6)
    assert k.call(M.consume_stock, b, 1, gfp) is False and stock(k) == ("a", 6)
    assert k.call(M.consume_stock, a, 6, gfp) is True and stock(k) == ("a", 0)


@pytest.mark.rule("R4.3")
def test_a_non_spinning_consume_inside_the_lock_gives_up_at_once():
    k = machine()
    a = M.mem_cgroup_create(k, "a")
    k.call(M.try_charge_memcg, a, GFP_KERNEL, 1)  # 63 pages of a in the stock
    got = nmi_inside_stock_lock(k, lambda: M.drain_local_stock(), lambda: M.consume_stock(a, 1, NOSPIN))
    assert got is False
    assert stock_lock_ops(k) == ["local_trylock_irqsave", "trylock-failed"]  # no blocking attempt
    assert stock(k) == (None, 0)  # the task's drain went on undisturbed


# --- refill_stock -----------------------------------------------------------------------------------
@pytest.mark.rule("R4.4")
@pytest.mark.parametrize("nth", [1, 2], ids=["in_consume_stock", "in_refill_stock"])
def test_a_refill_that_cannot_trylock_uncharges_the_counter_directly(nth):
    k = machine()
    a, b = M.mem_cgroup_create(k, "a"), M.mem_cgroup_create(k, "b")
    k.call(M.try_charge_memcg, b, NOSPIN, 5)  # b: 5 pages charged, none stocked
    before = {}

    def nmi():
        before.update(stock=stock(k), b=b.memory.usage, root=k.memcg.root_mem_cgroup.memory.usage)
        M.refill_stock(b, 2)
        return stock(k), b.memory.usage, k.memcg.root_mem_cgroup.memory.usage

    got = nmi_inside_stock_lock(k, lambda: M.try_charge_memcg(a, GFP_KERNEL, 1), nmi, nth=nth)
    assert got == (before["stock"], before["b"] - 2, before["root"] - 2)  # the stock untouched
    assert any(e[3] == "memcg_uncharge_direct" and e[4] == "b" for e in k.events)


@pytest.mark.rule("R4.4")
def test_a_refill_for_root_that_cannot_trylock_does_nothing():
    k = machine()
    a = M.mem_cgroup_create(k, "a")
    root = k.memcg.root_mem_cgroup
    k.call(M.try_charge_memcg, a, NOSPIN, 3)  # root's counter holds a's 3 pages
    got = nmi_inside_stock_lock(k, lambda: M.drain_local_stock(),
                                lambda: (M.refill_stock(root, 2), root.memory.usage, stock(k))[1:])
    assert got == (3, (None, 0))


# --- try_charge_memcg ---------------------------------------------------------------------------------
@pytest.mark.rule("R4.5")
def test_a_non_spinning_charge_takes_exactly_nr_and_leaves_the_stock_alone():
    k = machine()
    a, b = M.mem_cgroup_create(k, "a"), M.mem_cgroup_create(k, "b")
    k.call(M.try_charge_memcg, b, GFP_KERNEL, 1)  # the stock caches b
    assert k.call(M.try_charge_memcg, a, NOSPIN, 3) == 0
    assert a.memory.usage == 3 and stock(k) == ("b", M.MEMCG_CHARGE_BATCH - 1)  # no refill, no flush of b
    assert not [e for e in k.events if e[3] == "acquired" and e[4] == M.STOCK_LOCK][1:]  # only the consume


@pytest.mark.rule("R4.5")
def test_an_nmi_charge_inside_consume_stock_charges_nr_directly():
    """The issue's experiment: the NMI's trylock fails, the page counter is charged directly."""
    k = machine()
    a, b = M.mem_cgroup_create(k, "a"), M.mem_cgroup_create(k, "b")
    got = nmi_inside_stock_lock(k, lambda: M.try_charge_memcg(a, GFP_KERNEL, 1),
                                lambda: (M.try_charge_memcg(b, NOSPIN, 1), b.memory.usage, stock(k)))
    assert got == (0, 1, (None, 0))
    assert stock(k) == ("a", M.MEMCG_CHARGE_BATCH - 1)
    assert a.memory.usage == M.MEMCG_CHARGE_BATCH and b.memory.usage == 1


def _full(k, name="a"):
    """A memcg at its limit of 2 pages."""
    memcg = M.mem_cgroup_create(k, name, max=2)
    k.call(M.try_charge_memcg, memcg, NOSPIN, 2)
    return memcg


@pytest.mark.rule("R4.6")
@pytest.mark.rule("R4.9")
def test_a_failing_non_spinning_charge_is_enomem_without_reclaim_or_event():
    k = machine()
    a = _full(k)
    got = nmi_inside_stock_lock(k, lambda: M.drain_local_stock(), lambda: M.try_charge_memcg(a, NOSPIN, 1))
    assert got == -M.ENOMEM and a.memory.usage == 2
    ops = {e[3] for e in k.events}
    assert "try_to_free_mem_cgroup_pages" not in ops and "cgroup_file_notify" not in ops
    assert a.memory_events["max"] == 0


@pytest.mark.rule("R4.6")
@pytest.mark.rule("R4.9")
def test_v6_gap_a_pf_memalloc_task_makes_the_nmi_charge_forced_and_notified():
    """The interrupted task reclaims (PF_MEMALLOC): the NMI's charge is forced past the limit, raises
    MEMCG_MAX and reaches cgroup_file_notify, which may spin (closed in 2025, S9.13a.1)."""
    k = machine()
    a = _full(k)

    def task():
        k.cpus[0].task.flags |= M.PF_MEMALLOC
        M.drain_local_stock()

    got = nmi_inside_stock_lock(k, task, lambda: M.try_charge_memcg(a, NOSPIN, 1))
    assert got == 0 and a.memory.usage == 3 and a.memory_events["max"] == 1
    assert [e[2] for e in k.events if e[3] == "cgroup_file_notify"] == ["task>nmi"]


@pytest.mark.rule("R4.7")
def test_v6_gap_a_non_spinning_charge_above_high_still_schedules_the_high_work():
    k = machine()
    a = M.mem_cgroup_create(k, "a", high=0)
    got = nmi_inside_stock_lock(k, lambda: M.drain_local_stock(), lambda: M.try_charge_memcg(a, NOSPIN, 1))
    assert got == 0 and a.memory.usage == 1  # exactly nr (R4.5) ...
    assert a.high_work_scheduled == 1  # ... and the work item queued from NMI (the gap)
    assert [e[2] for e in k.events if e[3] == "schedule_work"] == ["task>nmi"]


def test_in_task_context_a_charge_above_high_is_left_to_the_return_to_user_space():
    k = machine()
    a = M.mem_cgroup_create(k, "a", high=10)
    k.call(M.try_charge_memcg, a, GFP_KERNEL, 1)
    assert a.high_work_scheduled == 0 and k.memcg.nr_pages_over_high[k.cpus[0].task] == M.MEMCG_CHARGE_BATCH
    k.call(M.try_charge_memcg, a, GFP_KERNEL, 1, context="hardirq")  # the stock hit: no walk at all
    assert a.high_work_scheduled == 0


@pytest.mark.rule("R4.10")
def test_v6_gap_a_kmem_charge_from_nmi_updates_the_memcg_statistics_in_nmi():
    """The charge now gets through from an NMI inside stock_lock, and with it the MEMCG_KMEM update,
    which in v6.13 is not NMI-safe (per-CPU add with IRQs off, rstat's per-CPU raw spinlock)."""
    k = machine()
    a, b = M.mem_cgroup_create(k, "a"), M.mem_cgroup_create(k, "b")
    page = k.mem_map.page(100)

    def nmi():
        old = M.set_active_memcg(b)
        ret = M.__memcg_kmem_charge_page(page, NOSPIN, 0)
        M.set_active_memcg(old)
        return ret

    assert nmi_inside_stock_lock(k, lambda: M.try_charge_memcg(a, GFP_KERNEL, 1), nmi) == 0
    assert b.kmem == 1 and [e[2] for e in k.events if e[3] == "mod_memcg_state"] == ["task>nmi"]


@pytest.mark.rule("S9.4.3")
def test_from_6_15_a_spinning_consume_locks_at_once_and_only_a_non_spinning_one_tries():
    k = machine()
    a = M.mem_cgroup_create(k, "a")
    k.call(M.try_charge_memcg, a, GFP_KERNEL, 1)
    k.call(M.consume_stock, a, 1, GFP_KERNEL)
    assert stock_lock_ops(k, "task") == ["local_lock_irqsave", "acquired", "local_unlock_irqrestore"]
    k.call(M.consume_stock, a, 1, NOSPIN)
    assert stock_lock_ops(k, "task") == ["local_trylock_irqsave", "acquired", "local_unlock_irqrestore"]
    # and a non-spinning one that finds the lock held still gives up
    got = nmi_inside_stock_lock(k, lambda: M.drain_local_stock(), lambda: M.consume_stock(a, 1, NOSPIN))
    assert got is False and stock(k) == (None, 0)


# --- PREEMPT_RT ---------------------------------------------------------------------------------
@pytest.mark.rule("R4.8")
def test_on_rt_a_hardirq_uncharge_takes_the_direct_path():
    k = machine(preempt_rt=True)
    a = M.mem_cgroup_create(k, "a")
    k.call(M.try_charge_memcg, a, GFP_KERNEL, 1)  # the stock: 63 of a's pages
    k.call(M.refill_stock, a, 1, context="hardirq")
    assert stock(k) == ("a", M.MEMCG_CHARGE_BATCH - 1) and a.memory.usage == M.MEMCG_CHARGE_BATCH - 1
    assert k.call(M.consume_stock, a, 1, NOSPIN, context="hardirq") is False  # the trylock always fails
    assert k.call(M.consume_stock, a, 1, NOSPIN) is True  # in task context it is an ordinary trylock


# --- bad input -------------------------------------------------------------------------------------
def test_charging_a_removed_memcg_is_refused_and_changes_nothing():
    k = machine()
    a = M.mem_cgroup_create(k, "a")
    M.mem_cgroup_offline(k, a)
    with pytest.raises(InvalidArgumentError, match="a is offline"):
        k.call(M.try_charge_memcg, a, NOSPIN, 1)
    assert a.memory.usage == 0 and stock(k) == (None, 0)


@pytest.mark.parametrize("fn", [M.try_charge_memcg, M.refill_stock,
                                pytest.param(M.consume_stock, marks=pytest.mark.levels(since="4"))])
@pytest.mark.parametrize("nr", [-1, 0, True, 1.5])
def test_a_count_that_is_not_positive_is_refused(fn, nr):
    k = machine()
    a = M.mem_cgroup_create(k, "a")
    k.call(M.try_charge_memcg, a, GFP_KERNEL, 1)
    args = (a, NOSPIN, nr) if fn is M.try_charge_memcg else (a, nr, NOSPIN) if fn is M.consume_stock else (a, nr)
    with pytest.raises(InvalidArgumentError, match="nr_pages must be a positive int"):
        k.call(fn, *args)
    assert a.memory.usage == M.MEMCG_CHARGE_BATCH and stock(k) == ("a", M.MEMCG_CHARGE_BATCH - 1)


@pytest.mark.levels(since="4")  # a non-spinning charge of exactly 3, and the direct path
@pytest.mark.parametrize("where", ["stock", "direct"])
def test_uncharging_more_than_was_charged_is_refused_and_changes_nothing(where):
    k = machine()
    a, b = M.mem_cgroup_create(k, "a"), M.mem_cgroup_create(k, "b")
    k.call(M.try_charge_memcg, a, NOSPIN, 3)
    if where == "direct":  # from an NMI inside the stock lock: the direct-uncharge path
        with pytest.raises(MemcgAccountingError, match="returning 4 pages to a, which has only 3"):
            nmi_inside_stock_lock(k, lambda: M.try_charge_memcg(b, GFP_KERNEL, 1), lambda: M.refill_stock(a, 4))
    else:
        with pytest.raises(MemcgAccountingError, match="returning 4 pages to a, which has only 3"):
            k.call(M.refill_stock, a, 4)
    assert a.memory.usage == 3


def _pf_memalloc_nmi_charge(release):
    """The R4.9 scene on ``release``: a PF_MEMALLOC task drains its stock, an NMI charges one page with
    the nolock mask into a full memcg, so the charge is forced past the limit."""
    k = machine(release=release)
    a = _full(k)

    def task():
        k.cpus[0].task.flags |= M.PF_MEMALLOC
        M.drain_local_stock()

    got = nmi_inside_stock_lock(k, task, lambda: M.try_charge_memcg(a, NOSPIN, 1))
    return got, a.memory.usage, a.memory_events["max"], [e[2] for e in k.events if e[3] == "cgroup_file_notify"]


@pytest.mark.rule("S9.13a.1")
def test_6_18_a_non_spinning_forced_charge_counts_max_but_notifies_nobody():
    """S9.13a.1: on 6.18 the NMI's forced charge still counts MEMCG_MAX but calls no cgroup_file_notify
    (the notification takes locks); on 6.15 it notifies from NMI.  An ordinary charge still notifies."""
    assert _pf_memalloc_nmi_charge("6.15") == (0, 3, 1, ["task>nmi"])
    assert _pf_memalloc_nmi_charge("6.18") == (0, 3, 1, [])
    k = machine(release="6.18")
    a = _full(k)
    k.cpus[0].task.flags |= M.PF_MEMALLOC
    assert k.call(M.try_charge_memcg, a, GFP_KERNEL, 1) == 0
    assert a.memory_events["max"] == 1 and [e for e in k.events if e[3] == "cgroup_file_notify"]


@pytest.mark.rule("S9.13a.2")
def test_6_16_an_nmi_unsafe_arch_charges_nothing_in_nmi():
    """S9.13a.2 (unconfirmed details): on 6.16, with neither NMI-safe this_cpu ops nor cmpxchg, an NMI has
    no objcg to charge, so a kmem charge there charges nothing; in a hardirq, or on 6.15, it charges."""
    def charged(release, context, safe=False):
        k = machine(release=release, arch_nmi_safe=safe)
        a = M.mem_cgroup_create(k, "a")

        def charge():
            old = M.set_active_memcg(a)
            try:
                return M.current_obj_cgroup() is not None
            finally:
                M.set_active_memcg(old)

        return k.call(charge, context=context)

    assert not charged("6.16", "nmi")
    assert charged("6.16", "hardirq") and charged("6.16", "nmi", safe=True) and charged("6.15", "nmi")

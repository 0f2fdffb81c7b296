"""memcg kmem charging at the baseline: page counters, the per-CPU stock, objcg tagging, and the NMI
corruption of the stock that patch 4 of the series fixes."""
import pytest

from tryalloc import Kernel, Scripted, When, explore
from tryalloc.errors import (
    ConfigError,
    ContextError,
    InvalidArgumentError,
    InvalidContextError,
    MemcgAccountingError,
    PerCpuCorruptionError,
)
from tryalloc.include.gfp import __GFP_NOFAIL, GFP_ATOMIC, GFP_KERNEL, GFP_NOWAIT
from tryalloc.kernel.percpu import per_cpu_ptr
from tryalloc.kernel.preempt import local_irq_restore, local_irq_save
from tryalloc.mm import page as _memmap  # noqa: F401  (its initcall gives every Kernel a mem_map)
from tryalloc.mm.memcontrol import (
    ENOMEM,
    MEMCG_CHARGE_BATCH,
    MEMCG_DATA_KMEM,
    PF_MEMALLOC,
    STOCK_LOCK,
    __memcg_kmem_charge_page,
    __memcg_kmem_uncharge_page,
    consume_stock,
    current_obj_cgroup,
    drain_local_stock,
    mem_cgroup_create,
    mem_cgroup_offline,
    memcg_invariants,
    memcg_stock_view,
    memcg_usage_view,
    page_counter_uncharge,
    refill_stock,
    set_active_memcg,
    task_set_memcg,
    try_charge_memcg,
)
from tryalloc.series import LEVEL
from tryalloc.series.rules import LEVELS

#: consume_stock gains a gfp mask at patch 4
CONSUME_GFP = (GFP_KERNEL,) if LEVELS.index(LEVEL) >= LEVELS.index("4") else ()


def stock(k, cpu=0):
    return memcg_stock_view(k)[cpu]


def usage(k, name):
    return next(r["usage"] for r in memcg_usage_view(k) if r["name"] == name)


@pytest.fixture
def k():
    return Kernel(nr_cpus=2, pages_per_node=1024)


# --- charging ---------------------------------------------------------------------------------------
def test_charge_takes_a_batch_and_stocks_the_surplus(k):
    a = mem_cgroup_create(k, "a")
    assert k.call(try_charge_memcg, a, GFP_KERNEL, 1) == 0
    assert usage(k, "a") == MEMCG_CHARGE_BATCH and usage(k, "root") == MEMCG_CHARGE_BATCH
    assert stock(k) == {"cpu": 0, "cached": "a", "nr_pages": MEMCG_CHARGE_BATCH - 1, "locked_by": None}
    # the next charge on this CPU comes from the stock; on the other CPU it charges a new batch
    assert k.call(try_charge_memcg, a, GFP_KERNEL, 3) == 0
    assert usage(k, "a") == MEMCG_CHARGE_BATCH and stock(k)["nr_pages"] == MEMCG_CHARGE_BATCH - 4
    assert k.call(try_charge_memcg, a, GFP_KERNEL, 2, cpu=1) == 0
    assert usage(k, "a") == 2 * MEMCG_CHARGE_BATCH and stock(k, 1)["nr_pages"] == MEMCG_CHARGE_BATCH - 2


def test_a_charge_larger_than_the_batch_bypasses_the_stock(k):
    a = mem_cgroup_create(k, "a")
    k.call(try_charge_memcg, a, GFP_KERNEL, 1)  # the stock now holds a batch less one
    assert k.call(consume_stock, a, MEMCG_CHARGE_BATCH + 1, *CONSUME_GFP) is False
    assert k.call(try_charge_memcg, a, GFP_KERNEL, 100) == 0
    assert usage(k, "a") == MEMCG_CHARGE_BATCH + 100 and stock(k)["nr_pages"] == MEMCG_CHARGE_BATCH - 1


def test_the_root_memcg_is_never_charged(k):
    root = k.memcg.root_mem_cgroup
    assert k.call(try_charge_memcg, root, GFP_KERNEL, 5) == 0
    assert usage(k, "root") == 0 and stock(k)["cached"] is None
    assert k.call(current_obj_cgroup) is None  # a task in root has no objcg: its pages go uncharged


def test_a_limit_anywhere_up_the_tree_refuses_and_partial_charges_are_undone(k):
    parent = mem_cgroup_create(k, "parent", max=10)
    child = mem_cgroup_create(k, "child", parent=parent)
    # the batch of 64 does not fit the parent: the retry charges just nr, and nothing is stocked
    assert k.call(try_charge_memcg, child, GFP_NOWAIT, 4) == 0
    assert (usage(k, "child"), usage(k, "parent"), stock(k)["nr_pages"]) == (4, 4, 0)
    assert k.call(try_charge_memcg, child, GFP_NOWAIT, 7) == -ENOMEM
    assert (usage(k, "child"), usage(k, "parent"), usage(k, "root")) == (4, 4, 4)
    assert parent.memory.failcnt == 3 and child.memory.failcnt == 0  # batch, then 64 and 7
    assert parent.memory_events["max"] == 0  # a non-blocking charge fails silently


def test_a_blocking_charge_reclaims_raises_memcg_max_then_fails(k):
    a = mem_cgroup_create(k, "a", max=2)
    assert k.call(try_charge_memcg, a, GFP_KERNEL, 3) == -ENOMEM
    assert a.memory_events["max"] == 1 and usage(k, "a") == 0
    assert [e[3] for e in k.events if e[4] == "a"][-2:] == ["try_to_free_mem_cgroup_pages", "memcg_charge_failed"]


def test_a_blocking_charge_over_the_limit_in_atomic_context_is_an_invalid_context(k):
    a = mem_cgroup_create(k, "a", max=2)

    def charge_with_irqs_off():
        flags = local_irq_save()
        try_charge_memcg(a, GFP_KERNEL, 3)
        local_irq_restore(flags)

    with pytest.raises(InvalidContextError, match="try_to_free_mem_cgroup_pages"):
        k.call(charge_with_irqs_off)


@pytest.mark.parametrize("gfp", [GFP_ATOMIC, GFP_KERNEL | __GFP_NOFAIL])
def test_high_and_nofail_charges_are_forced_past_the_limit(k, gfp):
    a = mem_cgroup_create(k, "a", max=2)
    assert k.call(try_charge_memcg, a, gfp, 5) == 0
    assert usage(k, "a") == 5 and a.memory_events["max"] == 1


def test_a_pf_memalloc_task_is_force_charged_even_from_an_interrupt(k):
    a = mem_cgroup_create(k, "a", max=2)
    k.cpus[0].task.flags |= PF_MEMALLOC
    assert k.call(try_charge_memcg, a, GFP_NOWAIT, 5, context="hardirq") == 0
    assert usage(k, "a") == 5


# --- the stock ----------------------------------------------------------------------------------------
def test_refilling_for_another_memcg_drains_the_old_one(k):
    a, b = mem_cgroup_create(k, "a"), mem_cgroup_create(k, "b")
    k.call(try_charge_memcg, a, GFP_KERNEL, 4)  # a: 64 charged, 60 stocked
    k.call(try_charge_memcg, b, GFP_KERNEL, 4)  # stock switches to b: a's 60 go back
    assert usage(k, "a") == 4 and usage(k, "b") == 64 and stock(k)["cached"] == "b"


def test_a_stock_above_the_batch_is_drained(k):
    a = mem_cgroup_create(k, "a")
    k.call(try_charge_memcg, a, GFP_KERNEL, 1)  # 64 charged, 63 stocked
    k.call(try_charge_memcg, a, GFP_KERNEL, 100)  # too big for the stock: 164 charged
    k.call(refill_stock, a, 2)  # returning 2 of them makes 65 > 64: the whole stock goes back
    assert stock(k) == {"cpu": 0, "cached": None, "nr_pages": 0, "locked_by": None}
    assert usage(k, "a") == 1 + 98


def test_drain_local_stock_returns_this_cpus_pages_only(k):
    a = mem_cgroup_create(k, "a")
    k.call(try_charge_memcg, a, GFP_KERNEL, 1, cpu=0)
    k.call(try_charge_memcg, a, GFP_KERNEL, 1, cpu=1)
    k.call(drain_local_stock, cpu=0)
    assert stock(k, 0)["nr_pages"] == 0 and stock(k, 1)["nr_pages"] == 63
    assert usage(k, "a") == 1 + 64


# --- objcg resolution and kmem pages -----------------------------------------------------------------
def test_current_obj_cgroup_follows_active_memcg_task_memcg_and_int_active_memcg(k):
    a, b, c = (mem_cgroup_create(k, n) for n in "abc")
    task_set_memcg(k, 0, a)

    def task():
        own = current_obj_cgroup()
        old = set_active_memcg(b)
        active = current_obj_cgroup()
        set_active_memcg(old)
        return own, active, current_obj_cgroup()

    assert k.call(task) == (a.objcg, b.objcg, a.objcg)
    # outside task context the task's memcg does not count: only int_active_memcg
    assert k.call(current_obj_cgroup, context="hardirq") is None

    def irq():
        old = set_active_memcg(c)
        return current_obj_cgroup(), old

    assert k.call(irq, context="softirq") == (c.objcg, None)
    assert k.memcg.int_active_memcg == [c, None] and k.cpus[0].task.active_memcg is None


def test_kmem_charge_tags_the_page_and_uncharge_returns_it_through_the_stock(k):
    a = mem_cgroup_create(k, "a")
    task_set_memcg(k, 0, a)
    page = k.mem_map.page(8)
    assert k.call(__memcg_kmem_charge_page, page, GFP_KERNEL, 2) == 0
    assert page.memcg_data == a.objcg.id | MEMCG_DATA_KMEM and a.objcg.refcnt == 2
    assert a.kmem == 4 and k.memcg.root_mem_cgroup.kmem == 4
    memcg_invariants(k)
    k.call(__memcg_kmem_uncharge_page, page, 2)
    assert page.memcg_data == 0 and a.objcg.refcnt == 1 and a.kmem == 0
    assert usage(k, "a") == 64 and stock(k)["nr_pages"] == 64  # back in the stock, not yet uncharged
    memcg_invariants(k)
    k.call(drain_local_stock)
    assert usage(k, "a") == 0
    memcg_invariants(k)


def test_a_kmem_charge_without_an_objcg_leaves_the_page_untagged(k):
    page = k.mem_map.page(3)
    assert k.call(__memcg_kmem_charge_page, page, GFP_ATOMIC, 0, context="nmi") == 0
    assert page.memcg_data == 0 and usage(k, "root") == 0


def test_a_failed_kmem_charge_changes_nothing(k):
    a = mem_cgroup_create(k, "a", max=3)
    task_set_memcg(k, 0, a)
    page = k.mem_map.page(16)
    assert k.call(__memcg_kmem_charge_page, page, GFP_NOWAIT, 2) == -ENOMEM
    assert page.memcg_data == 0 and a.objcg.refcnt == 1 and usage(k, "a") == 0 and a.kmem == 0
    memcg_invariants(k)


# --- offline --------------------------------------------------------------------------------------------
def test_offline_drains_stocks_reparents_the_objcg_and_refuses_later_charges(k):
    parent = mem_cgroup_create(k, "parent")
    child = mem_cgroup_create(k, "child", parent=parent)
    task_set_memcg(k, 0, child)
    page = k.mem_map.page(1)
    k.call(__memcg_kmem_charge_page, page, GFP_KERNEL, 0)
    task_set_memcg(k, 0, parent)
    objcg = child.objcg
    mem_cgroup_offline(k, child)
    assert stock(k)["cached"] is None and objcg.memcg is parent and child.objcg is None
    memcg_invariants(k)
    before = (usage(k, "parent"), usage(k, "child"), stock(k))
    with pytest.raises(InvalidArgumentError, match="child is offline"):
        k.call(try_charge_memcg, child, GFP_KERNEL, 1)
    with pytest.raises(InvalidArgumentError, match="offline"):
        k.call(set_active_memcg, child)
    assert (usage(k, "parent"), usage(k, "child"), stock(k)) == before
    assert k.cpus[0].task.active_memcg is None
    # the page charged before offline uncharges from the parent now
    k.call(__memcg_kmem_uncharge_page, page, 0)
    assert stock(k)["cached"] == "parent" and objcg.refcnt == 0
    memcg_invariants(k)
    k.call(drain_local_stock)
    assert usage(k, "parent") == 0 and usage(k, "root") == 0


def test_offline_refuses_root_busy_and_offline_memcgs(k):
    parent = mem_cgroup_create(k, "parent")
    child = mem_cgroup_create(k, "child", parent=parent)
    with pytest.raises(InvalidArgumentError, match="root"):
        mem_cgroup_offline(k, k.memcg.root_mem_cgroup)
    with pytest.raises(InvalidArgumentError, match="busy.*child"):
        mem_cgroup_offline(k, parent)
    task_set_memcg(k, 1, child)
    with pytest.raises(InvalidArgumentError, match="busy.*task1"):
        mem_cgroup_offline(k, child)
    assert child.online and parent.online


# --- bad input ---------------------------------------------------------------------------------------------
def test_bad_input_is_refused_before_anything_changes(k):
    a = mem_cgroup_create(k, "a")
    other = mem_cgroup_create(Kernel(), "a")
    with pytest.raises(InvalidArgumentError, match="already taken"):
        mem_cgroup_create(k, "a")
    with pytest.raises(InvalidArgumentError, match="max"):
        mem_cgroup_create(k, "b", max=-1)
    with pytest.raises(InvalidArgumentError, match="not a memcg of this machine"):
        mem_cgroup_create(k, "c", parent=other)
    with pytest.raises(InvalidArgumentError, match="not a memcg of this machine"):
        k.call(try_charge_memcg, other, GFP_KERNEL, 1)
    with pytest.raises(InvalidArgumentError, match="nr_pages"):
        k.call(try_charge_memcg, a, GFP_KERNEL, 0)
    with pytest.raises(InvalidArgumentError, match="gfp"):
        k.call(try_charge_memcg, a, 1 << 40, 1)
    with pytest.raises(ContextError, match="between runs"):
        k.call(mem_cgroup_create, k, "d")
    with pytest.raises(ContextError, match="no CPU"):
        task_set_memcg(k, 5, a)
    with pytest.raises(ConfigError, match="memcg=False"):
        mem_cgroup_create(Kernel(memcg=False), "a")
    assert sorted(k.memcg.memcgs) == ["a", "root"] and usage(k, "a") == 0


def test_a_charge_returned_twice_is_an_underflow_and_changes_no_counter(k):
    a = mem_cgroup_create(k, "a")
    k.call(try_charge_memcg, a, GFP_KERNEL, MEMCG_CHARGE_BATCH)
    page_counter_uncharge(a.memory, MEMCG_CHARGE_BATCH)
    with pytest.raises(MemcgAccountingError, match="page_counter underflow"):
        page_counter_uncharge(a.memory, 1)
    assert usage(k, "a") == 0 and usage(k, "root") == 0


def test_the_invariant_checker_catches_a_lost_tag_and_a_leaked_stock(k):
    a = mem_cgroup_create(k, "a")
    task_set_memcg(k, 0, a)
    page = k.mem_map.page(2)
    k.call(__memcg_kmem_charge_page, page, GFP_KERNEL, 0)
    page.memcg_data = 0
    with pytest.raises(MemcgAccountingError, match="lost its charge"):
        memcg_invariants(k)
    page.memcg_data = a.objcg.id | MEMCG_DATA_KMEM
    per_cpu_ptr(k.memcg.memcg_stock, 0).nr_pages -= 1  # a stock page vanishing without an uncharge
    with pytest.raises(MemcgAccountingError, match="usage 64 != charged pages 1 \\+ stock 62"):
        memcg_invariants(k)


# --- the bug the series fixes ----------------------------------------------------------------------------
def _nmi_charging_scenario(k, task_op):
    a = mem_cgroup_create(k, "a")
    b = mem_cgroup_create(k, "b")
    task_set_memcg(k, 0, a)

    def nmi():  # a BPF program in a perf NMI charging a page to its map's memcg
        old = set_active_memcg(b)
        __memcg_kmem_charge_page(k.mem_map.page(100), GFP_ATOMIC, 0)
        set_active_memcg(old)

    k.spawn(0, lambda: task_op(a))
    k.on_interrupt(0, "nmi", nmi)


def _charge_a_page(k):
    return lambda a: __memcg_kmem_charge_page(k.mem_map.page(7), GFP_KERNEL, 0)


@pytest.mark.parametrize("nth", [1, 2], ids=["consume_stock", "refill_stock"])
def test_an_nmi_charging_inside_the_stock_lock_corrupts_the_stock(k, nth):
    """The task's charge misses the empty stock (1st section) and stocks the surplus (2nd)."""
    _nmi_charging_scenario(k, lambda a: try_charge_memcg(a, GFP_KERNEL, 1))
    with pytest.raises(PerCpuCorruptionError, match=r"CPU0/nmi and CPU0/task0 both inside memcg_stock.stock_lock"):
        k.run(Scripted(When(cpu=0, op="acquired", obj=STOCK_LOCK, inject="nmi", nth=nth)))


def test_an_nmi_outside_the_stock_lock_charges_cleanly(k):
    _nmi_charging_scenario(k, _charge_a_page(k))
    k.run(Scripted(When(cpu=0, op="start", inject="nmi")))  # the NMI arrives before the task's first lock
    b = k.memcg.memcgs["b"]
    assert k.mem_map.page(100).memcg_data == b.objcg.id | MEMCG_DATA_KMEM
    assert usage(k, "b") == 1 and stock(k)["cached"] == "a"  # the task's refill drained b's stock
    memcg_invariants(k)


def test_exploring_nmi_arrivals_finds_the_stock_corruption():
    def setup(k):
        _nmi_charging_scenario(k, _charge_a_page(k))

    result = explore(setup, boot=dict(nr_cpus=1, pages_per_node=512), preemption_bound=0,
                     check=lambda k, res: memcg_invariants(k))
    assert isinstance(result.failures[0], PerCpuCorruptionError)
    assert result.executions > 1  # the NMIs at the task's start and end were clean


def test_on_rt_the_nmi_takes_a_sleeping_lock_instead():
    k = Kernel(nr_cpus=1, preempt_rt=True, pages_per_node=512)
    _nmi_charging_scenario(k, lambda a: try_charge_memcg(a, GFP_KERNEL, 1))
    with pytest.raises(InvalidContextError, match="in NMI"):
        k.run(Scripted(When(cpu=0, op="start", inject="nmi")))


def test_a_page_outliving_a_child_of_root_uncharges_through_roots_stock(k):
    a = mem_cgroup_create(k, "a")
    task_set_memcg(k, 0, a)
    page = k.mem_map.page(4)
    k.call(__memcg_kmem_charge_page, page, GFP_KERNEL, 0)
    task_set_memcg(k, 0, k.memcg.root_mem_cgroup)
    mem_cgroup_offline(k, a)
    assert usage(k, "root") == 1  # the offline drain returned a's stock; the page's charge remains
    k.call(__memcg_kmem_uncharge_page, page, 0)
    assert stock(k)["cached"] == "root" and stock(k)["nr_pages"] == 1
    memcg_invariants(k)
    k.call(drain_local_stock)
    assert usage(k, "root") == 0 and usage(k, "a") == 1  # a dying memcg keeps what it was charged
    memcg_invariants(k)

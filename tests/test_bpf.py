"""The BPF baseline: programs on tracepoints and perf NMIs, memcg-accounted map pages, and the arena."""
import pytest

from tryalloc import DeadlockError, Kernel, Scripted, When, explore
from tryalloc.book.bpf_scenarios import map_alloc_pages
from tryalloc.bpf import syscall
from tryalloc.bpf.arena import (
    BPF_F_MMAPABLE,
    BPF_F_SEGV_ON_FAULT,
    PAGE_SIZE,
    VM_FAULT_SIGSEGV,
    arena_free_pages,
    arena_map_alloc,
    arena_vm_fault,
    bpf_arena_alloc_pages,
    bpf_arena_free_pages,
)
from tryalloc.bpf.prog import bpf_prog_attach_perf_event, bpf_prog_attach_tracepoint
from tryalloc.bpf.syscall import BPF_MAP_TYPE_ARRAY, bpf_map_init_from_attr
from tryalloc.errors import InvalidArgumentError, InvalidContextError, PerCpuCorruptionError
from tryalloc.include.gfp import __GFP_ZERO, GFP_ATOMIC, GFP_KERNEL, GFP_KERNEL_ACCOUNT
from tryalloc.kernel.locking import spin_lock_irqsave, spin_unlock_irqrestore
from tryalloc.mm.debug import check_invariants, pfn_states
from tryalloc.mm.memcontrol import (
    ENOMEM,
    MEMCG_DATA_KMEM,
    STOCK_LOCK,
    drain_local_stock,
    mem_cgroup_create,
    memcg_invariants,
    set_active_memcg,
    task_set_memcg,
)
from tryalloc.mm.page import CONTENT_ZERO, page_ref_count
from tryalloc.mm.page_alloc import NUMA_NO_NODE, __free_page, alloc_pages
from tryalloc.series import LEVEL


@pytest.fixture
def k():
    return Kernel(nr_cpus=2, pages_per_node=1024)


def allocated(k):
    return pfn_states(k).count(0)


def books(k):
    check_invariants(k)
    memcg_invariants(k)


def array_map(k, memcg):
    return bpf_map_init_from_attr(k, BPF_MAP_TYPE_ARRAY, 16, memcg=memcg)


# --- bpf_map_alloc_pages ------------------------------------------------------------------------------------
def test_map_pages_are_charged_to_the_maps_memcg_and_the_caller_memcg_is_restored(k):
    a, b = mem_cgroup_create(k, "a"), mem_cgroup_create(k, "b")
    m = array_map(k, a)
    pages = [None] * 3

    def task():
        set_active_memcg(b)
        ret = map_alloc_pages(syscall, m, GFP_KERNEL | __GFP_ZERO, NUMA_NO_NODE, 3, pages)
        return ret, k.cpus[0].task.active_memcg

    assert k.call(task) == (0, b)
    assert all(p.memcg_data == a.objcg.id | MEMCG_DATA_KMEM for p in pages)
    assert all(p.contents == CONTENT_ZERO for p in pages)
    assert a.kmem == 3 and b.kmem == 0 and allocated(k) == 3
    books(k)
    for p in pages:
        k.call(__free_page, p)
    assert a.kmem == 0 and allocated(k) == 0
    books(k)


def test_a_map_of_the_root_memcg_charges_nothing(k):
    m = array_map(k, None)
    pages = [None]
    assert k.call(map_alloc_pages, syscall, m, GFP_KERNEL, 0, 1, pages) == 0
    assert pages[0].memcg_data == 0 and k.memcg.root_mem_cgroup.memory.usage == 0


def test_map_allocation_is_all_or_nothing_and_leaks_nothing(k):
    a = mem_cgroup_create(k, "a", max=3)
    m = array_map(k, a)
    pages = [None] * 5
    assert k.call(map_alloc_pages, syscall, m, GFP_KERNEL, NUMA_NO_NODE, 5, pages) == -ENOMEM
    assert pages == [None] * 5 and allocated(k) == 0 and a.kmem == 0
    assert a.memory_events["max"] == 1  # the fourth page's charge hit memory.max
    books(k)
    k.call(drain_local_stock)
    assert a.memory.usage == 0


def test_bad_map_arguments_are_refused_before_anything_is_allocated(k):
    m = array_map(k, mem_cgroup_create(k, "a"))
    with pytest.raises(InvalidArgumentError, match="no node 3"):
        k.call(map_alloc_pages, syscall, m, GFP_KERNEL, 3, 1, [None])
    with pytest.raises(InvalidArgumentError, match="room for 2"):
        k.call(map_alloc_pages, syscall, m, GFP_KERNEL, 0, 2, [None])
    with pytest.raises(InvalidArgumentError, match="another machine"):
        k.call(map_alloc_pages, syscall, array_map(Kernel(), None), GFP_KERNEL, 0, 1, [None])
    with pytest.raises(InvalidArgumentError, match="max_entries"):
        bpf_map_init_from_attr(k, BPF_MAP_TYPE_ARRAY, -1)
    assert allocated(k) == 0 and k.cpus[0].task.active_memcg is None


# --- the arena ---------------------------------------------------------------------------------------------
@pytest.fixture
def arena(k):
    return arena_map_alloc(k, 16, BPF_F_MMAPABLE, map_extra=1 << 32, memcg=mem_cgroup_create(k, "a", max=8))


def test_arena_reserves_a_free_range_or_the_one_asked_for(k, arena):
    base = arena.user_vm_start
    assert k.call(bpf_arena_alloc_pages, arena, None, 4, NUMA_NO_NODE, 0) == base
    assert k.call(bpf_arena_alloc_pages, arena, base + 10 * PAGE_SIZE, 2, NUMA_NO_NODE, 0) == base + 10 * PAGE_SIZE
    assert arena.rt.runs == [[4, 10], [12, 16]]
    # a range partly taken, misaligned or beyond the arena gives NULL and changes nothing
    assert k.call(bpf_arena_alloc_pages, arena, base + 3 * PAGE_SIZE, 2, NUMA_NO_NODE, 0) is None
    assert k.call(bpf_arena_alloc_pages, arena, base + 5, 1, NUMA_NO_NODE, 0) is None
    assert k.call(bpf_arena_alloc_pages, arena, base + 15 * PAGE_SIZE, 2, NUMA_NO_NODE, 0) is None
    assert arena.rt.runs == [[4, 10], [12, 16]] and allocated(k) == 6
    # best fit: a 3-page request goes to the 4-page hole at 12, not the 6-page one at 4
    assert k.call(bpf_arena_alloc_pages, arena, None, 1, NUMA_NO_NODE, 0) == base + 12 * PAGE_SIZE
    assert arena.map.objcg.memcg.kmem == 7
    books(k)


def test_arena_free_unreserves_and_returns_the_pages(k, arena):
    base = arena.user_vm_start
    k.call(bpf_arena_alloc_pages, arena, None, 5, NUMA_NO_NODE, 0)
    k.call(bpf_arena_free_pages, arena, base + PAGE_SIZE, 2)
    assert arena.rt.runs == [[1, 3], [5, 16]] and sorted(arena.kern_vm) == [0, 3, 4] and allocated(k) == 3
    k.call(arena_free_pages, arena, base, 100)  # clipped to the arena's end
    assert arena.rt.runs == [[0, 16]] and allocated(k) == 0 and arena.map.objcg.memcg.kmem == 0
    books(k)


def test_arena_allocation_failing_its_charge_leaves_the_range_free_and_nothing_leaked(k, arena):
    assert k.call(bpf_arena_alloc_pages, arena, None, 9, NUMA_NO_NODE, 0) is None  # memcg max is 8
    assert arena.rt.runs == [[0, 16]] and arena.kern_vm == {} and allocated(k) == 0
    books(k)


@pytest.mark.parametrize("args", [(0, 1, 0), (1, 0, 0), (1, 1, 1)], ids=["not-an-arena", "zero-count", "flags"])
def test_the_kfunc_returns_null_for_a_non_arena_map_zero_count_or_flags(k, arena, args):
    which, count, flags = args
    target = arena if which else array_map(k, None)
    assert k.call(bpf_arena_alloc_pages, target, None, count, NUMA_NO_NODE, flags) is None
    assert allocated(k) == 0 and arena.rt.runs == [[0, 16]]


def test_arena_kfunc_from_an_nmi_is_an_invalid_context(k, arena):
    with pytest.raises(InvalidContextError, match="may sleep"):
        k.call(bpf_arena_alloc_pages, arena, None, 1, NUMA_NO_NODE, 0, context="nmi")


def test_a_user_fault_allocates_once_and_maps_with_an_extra_reference(k, arena):
    addr = arena.user_vm_start + 6 * PAGE_SIZE + 123
    assert k.call(arena_vm_fault, arena, addr) == 0
    page = arena.kern_vm[6]
    assert page_ref_count(page) == 2 and arena.rt.runs == [[0, 6], [7, 16]]
    assert k.call(arena_vm_fault, arena, addr) == 0  # the same page again, no new reference
    assert page_ref_count(page) == 2 and allocated(k) == 1
    k.call(arena_free_pages, arena, arena.user_vm_start + 6 * PAGE_SIZE, 1)  # zap, then free
    assert allocated(k) == 0 and arena.user_mapped == {}
    books(k)


def test_a_fault_gets_sigsegv_with_segv_on_fault_or_when_the_charge_fails(k):
    strict = arena_map_alloc(k, 4, BPF_F_MMAPABLE | BPF_F_SEGV_ON_FAULT)
    assert k.call(arena_vm_fault, strict, strict.user_vm_start) == VM_FAULT_SIGSEGV
    full = arena_map_alloc(k, 4, memcg=mem_cgroup_create(k, "tiny", max=0))
    assert k.call(arena_vm_fault, full, full.user_vm_start) == VM_FAULT_SIGSEGV
    assert full.rt.runs == [[0, 4]] and allocated(k) == 0
    books(k)
    with pytest.raises(InvalidArgumentError, match="outside the arena"):
        k.call(arena_vm_fault, full, full.user_vm_end)


def test_arena_creation_checks_its_attributes(k):
    for kwargs, match in [({"max_entries": 0}, "max_entries"), ({"map_flags": 0}, "BPF_F_MMAPABLE"),
                          ({"map_extra": 5}, "aligned"), ({"max_entries": (1 << 20) + 1}, "4 GiB"),
                          ({"map_extra": (1 << 32) - PAGE_SIZE}, "crosses")]:
        with pytest.raises(InvalidArgumentError, match=match):
            arena_map_alloc(k, **{"max_entries": 4, **kwargs})


def test_two_cpus_allocating_in_one_arena_serialize_on_its_mutex():
    def setup(k):
        arena = arena_map_alloc(k, 8, memcg=mem_cgroup_create(k, "a"))
        k.spawn(0, lambda: bpf_arena_alloc_pages(arena, None, 2, NUMA_NO_NODE, 0))
        k.spawn(1, lambda: bpf_arena_alloc_pages(arena, None, 2, NUMA_NO_NODE, 0))
        k.arena = arena

    def check(k, res):
        base = k.arena.user_vm_start
        assert sorted(res.results.values()) == [base, base + 2 * PAGE_SIZE]
        books(k)

    def slept(k, res):
        return any(e[3] == "sleep" and e[4] == "arena->lock" for e in res.events)

    result = explore(setup, boot=dict(nr_cpus=2, pages_per_node=512), preemption_bound=1, check=check,
                     outcome=slept)
    assert result.ok and result.complete and result.outcomes[True] > 0


# --- programs --------------------------------------------------------------------------------------------------
def test_a_program_on_mm_page_alloc_can_allocate_atomically(k):
    got = []
    prog = bpf_prog_attach_tracepoint(k, "mm_page_alloc", lambda ctx: got.append(alloc_pages(GFP_ATOMIC, 0)))
    page = k.call(alloc_pages, GFP_KERNEL, 0)
    assert page is not None and got[0] is not None and got[0] != page
    # the program's own allocation fires mm_page_alloc again: the kernel's recursion guard skips it
    assert (prog.run_cnt, prog.misses) == (1, 1) and allocated(k) == 2
    check_invariants(k)


def test_a_perf_nmi_program_runs_on_top_of_a_tracepoint_program(k):
    seen = []

    def tp_prog(ctx):
        seen.append("tp")
        alloc_pages(GFP_ATOMIC, 0)

    tp = bpf_prog_attach_tracepoint(k, "mm_page_free", tp_prog)
    page = k.call(alloc_pages, GFP_KERNEL, 0)
    perf = bpf_prog_attach_perf_event(k, 0, lambda ctx: seen.append(("perf", ctx["cpu"], tp.active[0])))
    k.spawn(0, lambda: __free_page(page))
    k.run(Scripted(When(cpu=0, op="bpf_prog_run", obj="tp_prog", inject="nmi")))
    # the NMI arrived inside tp_prog (its active count is 1) and the perf program still ran
    assert seen == ["tp", ("perf", 0, 1)] and (perf.run_cnt, perf.misses) == (1, 0)


def test_a_perf_nmi_program_allocating_while_the_task_holds_zone_lock_deadlocks(k):
    zone = k.mem_map.zones[0]

    def task():
        flags = spin_lock_irqsave(zone.lock)
        spin_unlock_irqrestore(zone.lock, flags)

    bpf_prog_attach_perf_event(k, 0, lambda ctx: alloc_pages(GFP_ATOMIC, 0))
    k.spawn(0, task)
    with pytest.raises(DeadlockError, match="CPU0/nmi spins on zone->lock held by CPU0/task0"):
        k.run(Scripted(When(cpu=0, op="acquired", obj="zone->lock", inject="nmi")))


def test_attaching_bad_programs_is_refused(k):
    with pytest.raises(InvalidArgumentError, match="callable"):
        bpf_prog_attach_tracepoint(k, "mm_page_alloc", 42)
    with pytest.raises(InvalidArgumentError, match="unknown tracepoint"):
        bpf_prog_attach_tracepoint(k, "sched_switch", lambda ctx: None)
    assert k.tracepoints["mm_page_alloc"] == []


@pytest.mark.levels(until="6")
def test_a_perf_nmi_program_filling_its_map_while_the_task_charges_corrupts_the_memcg_stock():
    """The memcg half of the problem (spec 0.1): the task is inside stock_lock charging its own
    allocation when the NMI's program allocates map pages and charges them too.  Both take their
    page from the buddy lists here, so lockdep (set to warn) also flags the NMI's zone->lock -- where
    that is a blocking acquire: at levels 1..6 ordinary callers try the lock first (R1.16), and an
    uncontended trylock in NMI is no lockdep violation.  From patch 6 the NMI's map allocation goes
    through try_alloc_pages, whose charge only tries the stock lock: no corruption (see test_patch6)."""
    k = Kernel(nr_cpus=2, pages_per_node=1024, detectors={"lockdep": "warn"})
    task_set_memcg(k, 0, mem_cgroup_create(k, "task"))
    m = array_map(k, mem_cgroup_create(k, "map"))
    bpf_prog_attach_perf_event(k, 0, lambda ctx: map_alloc_pages(syscall, m, GFP_ATOMIC, NUMA_NO_NODE, 1, [None]))
    k.spawn(0, lambda: alloc_pages(GFP_KERNEL_ACCOUNT, 0))
    with pytest.raises(PerCpuCorruptionError, match="CPU0/nmi and CPU0/task0 both inside memcg_stock.stock_lock"):
        k.run(Scripted(When(cpu=0, op="acquired", obj=STOCK_LOCK, inject="nmi")))
    blocking_first = LEVEL in ("0", "6.15")
    assert [r.title for r in k.reports] == ["WARNING: inconsistent lock state"] * blocking_first


def test_the_same_program_firing_outside_the_stock_lock_charges_both_memcgs(k):
    own = mem_cgroup_create(k, "task")
    task_set_memcg(k, 0, own)
    m = array_map(k, mem_cgroup_create(k, "map"))
    got = [None]
    bpf_prog_attach_perf_event(k, 0, lambda ctx: map_alloc_pages(syscall, m, GFP_ATOMIC, NUMA_NO_NODE, 1, got))
    k.spawn(0, lambda: alloc_pages(GFP_KERNEL_ACCOUNT, 0))
    res = k.run(Scripted(When(cpu=0, op="start", inject="nmi")))
    assert res.results[0].memcg_data == own.objcg.id | MEMCG_DATA_KMEM
    assert got[0].memcg_data == m.objcg.id | MEMCG_DATA_KMEM
    assert (own.kmem, m.objcg.memcg.kmem) == (1, 1)
    books(k)

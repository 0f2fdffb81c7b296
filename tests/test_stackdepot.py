"""Stack depot, v6.13 baseline (spec 1.5): handles, pools, pool_lock in NMI and by re-entry."""
import types

import pytest

import tryalloc.mm
from tryalloc import DeadlockError, Kernel, Scripted, When, explore
from tryalloc.errors import InvalidArgumentError
from tryalloc.include.gfp import __GFP_ACCOUNT, __GFP_DMA32, __GFP_NOWARN, __GFP_ZERO, GFP_ATOMIC, GFP_KERNEL
from tryalloc.kernel.sched import event, inject_interrupt, running
from tryalloc.lib import stackdepot as sd
from tryalloc.series import LEVEL


@pytest.fixture
def pool_pages(monkeypatch):
    """Record each pool page the depot takes from or gives back to the real allocator:
    ("alloc"/"free", gfp or page, order, the context of this CPU holding pool_lock then, if any)."""
    log = []
    real = tryalloc.mm.page_alloc

    def owner_here():
        run = running()
        owner = run.kernel.stack_depot.pool_lock.owner
        return owner if owner is not None and owner.cpu is run.cpu else None

    def alloc_pages(gfp, order):
        event("alloc_pages", f"order {order}")
        log.append(("alloc", gfp, order, owner_here()))
        return real.alloc_pages(gfp, order)

    def free_pages(page, order):
        event("free_pages", f"pfn {page.pfn}")
        log.append(("free", page, order, owner_here()))
        real.free_pages(page, order)

    monkeypatch.setattr(tryalloc.mm, "page_alloc", types.SimpleNamespace(alloc_pages=alloc_pages,
                                                                         free_pages=free_pages))
    return log


def save(entries, gfp=GFP_KERNEL, flags=sd.STACK_DEPOT_FLAG_CAN_ALLOC):
    return sd.stack_depot_save_flags(entries, gfp, flags)


def test_same_trace_same_handle_and_fetch(pool_pages):
    k = Kernel()

    def body():
        a, b, a2 = save(("f", "g")), save(("f", "h")), save(("f", "g"))
        return a, b, a2, sd.stack_depot_fetch(a), sd.stack_depot_fetch(b), sd.stack_depot_fetch(0)

    a, b, a2, ta, tb, t0 = k.call(body)
    assert a == a2 != 0 and b not in (0, a)
    assert (ta, tb, t0) == (("f", "g"), ("f", "h"), ())
    assert k.stack_depot.nr_records() == 2


def test_distinct_call_paths_give_distinct_handles(pool_pages):
    def leaf():
        return sd.stack_depot_save(sd.stack_trace_save(), GFP_KERNEL)

    def path_one():
        return leaf()

    def path_two():
        return leaf()

    def body():
        return path_one(), path_two(), path_one(), sd.stack_depot_fetch(path_two())

    one, two, one_again, trace_two = Kernel().call(body)
    assert one == one_again and one != two
    assert trace_two == ("leaf", "path_two", "body")


def test_an_nmi_trace_stops_at_the_interrupt_entry(pool_pages):
    """filter_irq_stacks: the NMI's trace holds its own frames, not the task's it interrupted."""
    traces = []

    def handler():
        traces.append(sd.stack_trace_save())

    def task_work():
        inject_interrupt("nmi", handler)

    Kernel().call(task_work)
    assert traces == [("handler",)]


def test_empty_trace_saves_nothing(pool_pages):
    k = Kernel()
    assert k.call(save, ()) == 0
    assert pool_pages == [] and k.stack_depot.nr_records() == 0


def test_pool_page_is_allocated_outside_pool_lock_with_the_restricted_mask(pool_pages):
    k = Kernel()
    gfp = GFP_KERNEL | __GFP_DMA32 | __GFP_ACCOUNT | __GFP_ZERO
    k.call(save, ("a",), gfp)
    assert pool_pages == [("alloc", GFP_KERNEL | __GFP_NOWARN, sd.DEPOT_POOL_ORDER, None)]
    allocs = [e for e in k.events if e[3] == "alloc_pages"]
    lock = [e for e in k.events if e[3] == "raw_spin_lock_irqsave" and e[4] == "pool_lock"]
    assert allocs[0][0] < lock[0][0]


def test_pools_fill_up_and_the_spare_is_kept_then_used(pool_pages):
    k = Kernel()
    k.stack_depot.records_per_pool = 2

    def body():
        return [save((f"s{i}",)) for i in range(5)]

    handles = k.call(body)
    depot = k.stack_depot
    assert len(set(handles)) == 5 and depot.pools_num == 3
    assert [len(p.records) for p in depot.stack_pools] == [2, 2, 1]
    # saves 1 and 3 kept a spare, which the next save (its pool full) turned into pools 1 and 2;
    # so no spare is left, one is wanted, and only three pages were ever taken
    assert depot.new_pool is None  # a spare wanted
    assert sum(1 for e in pool_pages if e[0] == "alloc") == 3 and not [e for e in pool_pages if e[0] == "free"]
    assert k.call(lambda: [sd.stack_depot_fetch(h) for h in handles]) == [(f"s{i}",) for i in range(5)]


def test_without_can_alloc_and_no_pool_the_save_fails(pool_pages):
    k = Kernel()
    assert k.call(save, ("a",), GFP_KERNEL, 0) == 0
    assert pool_pages == [] and k.stack_depot.pools_num == 0


def test_pool_cap_reached_warns_once_and_fails(pool_pages):
    k = Kernel()
    k.stack_depot.records_per_pool = 1
    k.stack_depot.max_pools = 1

    def body():
        return save(("a",)), save(("b",)), save(("c",))

    a, b, c = k.call(body)
    assert a != 0 and b == 0 and c == 0
    assert k.stack_depot.warnings == ["Stack depot reached limit capacity"]
    # v6.13 depot_init_pool compares the pool count with the cap before incrementing it, so opening the
    # last pool still asks for a spare (new_pool = NULL, not STACK_DEPOT_POISON): save b preallocates
    # one, keeps it, and it is never used nor freed; save c, finding a spare, preallocates nothing
    allocs = [e for e in pool_pages if e[0] == "alloc"]
    frees = [e for e in pool_pages if e[0] == "free"]
    assert len(allocs) == 2 and not frees
    assert k.stack_depot.new_pool is not None and k.stack_depot.new_pool is not sd.STACK_DEPOT_POISON


def _concurrent_same_trace(log):
    """Two CPUs save the same new trace while pool 0 still has room and a spare is wanted."""
    def build():
        log.clear()
        k = Kernel(nr_cpus=2)
        k.call(save, ("first",))  # pool 0 from the first prealloc; a spare is still wanted
        log.clear()
        for cpu in (0, 1):
            k.spawn(cpu, lambda: save(("same",)))
        return k
    return build


def test_an_unused_prealloc_is_freed_after_the_unlock(pool_pages):
    build = _concurrent_same_trace(pool_pages)

    def check(kernel, result):
        depot = kernel.stack_depot
        assert result.results[0] == result.results[1] != 0
        allocs = [e for e in pool_pages if e[0] == "alloc"]
        frees = [e for e in pool_pages if e[0] == "free"]
        # every preallocated page is kept as the spare or given back, and nothing is taken under the lock
        assert len(allocs) == len(frees) + (depot.new_pool is not None)
        assert all(owner is None for *_, owner in pool_pages)

    res = explore(build, preemption_bound=2, check=check,
                  outcome=lambda k, r: sum(1 for e in pool_pages if e[0] == "free"))
    assert res.ok and res.complete
    assert res.outcomes[1] > 0 and res.outcomes[0] > 0  # both CPUs preallocated in some schedules only


def test_nmi_save_while_the_task_holds_pool_lock_returns_0(pool_pages):
    """In NMI pool_lock is only trylocked: held by the interrupted task, the save gives up.

    The NMI's own pool page comes from an ordinary allocation, which takes zone->lock in NMI to
    refill the order-2 pcp list: lockdep's warning about that (the hazard the series removes) is
    recorded rather than raised here, and checked."""
    k = Kernel(nr_cpus=1, detectors={"lockdep": "warn"})
    k.stack_depot.records_per_pool = 1  # the task's save opens a pool, so a spare is still wanted in the NMI
    got = {}
    k.call(save, ("known",))
    k.spawn(0, lambda: save(("task",)))
    pool_pages.clear()

    def nmi():
        got.update(new=save(("nmi",), GFP_KERNEL, 0), known=save(("known",)), can_alloc=save(("nmi2",), GFP_ATOMIC))

    k.on_interrupt(0, "nmi", nmi)
    k.run(Scripted(When(cpu=0, op="acquired", obj="pool_lock", inject="nmi")))
    assert got["new"] == 0 and got["can_alloc"] == 0
    assert got["known"] != 0  # found by the lock-free lookup, no lock needed
    assert sum(1 for e in k.events if e[3] == "trylock-failed" and e[4] == "pool_lock" and e[2].endswith("nmi")) == 2
    # asking to allocate in NMI is warned about (the v6.13 code still preallocates), and the page it
    # took goes back once the trylock has failed
    assert k.stack_depot.warnings == ["stack_depot_save_flags: can_alloc in NMI"]
    assert [e[0] for e in pool_pages] == ["alloc", "alloc", "free"]
    assert pool_pages[1][3].kind == "task"  # taken by the NMI while the task held pool_lock
    assert k.stack_depot.pools_num == 2 and k.stack_depot.new_pool is None
    # a blocking acquire: at levels 1..6 ordinary callers try first (R1.16) and an uncontended
    # trylock in NMI is no lockdep violation
    blocking_first = LEVEL in ("0", "6.15")
    assert [r.report.splitlines()[1] for r in k.reports] == ["inconsistent {INITIAL USE} -> {IN-NMI} usage"] * \
        blocking_first
    assert all("zone->lock" in r.report for r in k.reports)


def test_nmi_saves_never_deadlock_in_any_schedule(pool_pages):
    def setup(k):
        k.spawn(0, lambda: save(("task0",)))
        k.spawn(1, lambda: save(("task1",)))
        k.on_interrupt(0, "nmi", lambda: save(("nmi",), GFP_KERNEL, 0))

    def outcome(kernel, result):
        return kernel.stack_depot.nr_records()

    res = explore(setup, boot=dict(nr_cpus=2), preemption_bound=1, outcome=outcome)
    assert res.ok and res.complete
    assert set(res.outcomes) == {2, 3}  # the NMI's trace is stored, or dropped when pool_lock was busy


def test_a_reentrant_save_under_pool_lock_outside_nmi_deadlocks(pool_pages, monkeypatch):
    """A kprobe on depot_alloc_stack (run with pool_lock held) saving a stack: outside NMI it spins
    on the lock its own CPU holds."""
    real = sd.depot_alloc_stack

    def kprobed(*args):
        save(("kprobe",), GFP_KERNEL, 0)
        return real(*args)

    monkeypatch.setattr(sd, "depot_alloc_stack", kprobed)
    with pytest.raises(DeadlockError, match="pool_lock"):
        Kernel().call(save, ("a",))


@pytest.mark.parametrize("entries, gfp, flags, what", [
    (["a"], GFP_KERNEL, 1, "tuple of frame names"),
    (("a", 3), GFP_KERNEL, 1, "tuple of frame names"),
    (("a",), 1 << 30, 1, "gfp mask"),
    (("a",), GFP_KERNEL, 2, "depot_flags"),
])
def test_bad_input_is_refused_and_changes_nothing(pool_pages, entries, gfp, flags, what):
    k = Kernel()
    with pytest.raises(InvalidArgumentError, match=what):
        k.call(sd.stack_depot_save_flags, entries, gfp, flags)
    assert k.stack_depot.stack_table == {} and pool_pages == []


def test_bad_handles_and_limits_are_refused(pool_pages):
    k = Kernel()
    h = k.call(save, ("a",))
    for bad in (-1, "1", h + 1, h | (5 << sd.DEPOT_POOL_INDEX_BITS)):
        with pytest.raises(InvalidArgumentError, match="handle"):
            k.call(sd.stack_depot_fetch, bad)
    for bad in (0, True, 1 << 11):
        with pytest.raises(InvalidArgumentError, match="records_per_pool"):
            k.stack_depot.records_per_pool = bad
    assert k.stack_depot.records_per_pool == sd.DEFAULT_RECORDS_PER_POOL

"""Partial-order reduction: a reduced search sees every outcome the full search sees, in fewer executions."""
from functools import partial

import pytest

from tryalloc import Kernel, explore
from tryalloc.kernel import frontier, por
from tryalloc.kernel.locking import spin_lock, spin_trylock, spin_unlock, spinlock_t
from tryalloc.kernel.sched import IRQ, RUN, Strategy, point
from tryalloc.lib.llist import llist_add, llist_del_all, llist_for_each, llist_head, llist_node
from tryalloc.mm import scenarios


def _nested(outer, inner, log):
    spin_lock(outer)
    spin_lock(inner)
    log.append(outer.name)
    spin_unlock(inner)
    spin_unlock(outer)


def private_locks():
    """Each CPU nests two locks of its own: everything inside commutes."""
    k = Kernel(nr_cpus=2, detectors={"lockdep": "off"})
    k.log = []
    for cpu in range(2):
        k.spawn(cpu, partial(_nested, spinlock_t(f"outer{cpu}"), spinlock_t(f"inner{cpu}"), k.log))
    return k


def shared_inner():
    """Both CPUs nest a private lock around one shared lock: the order of the shared sections shows."""
    k = Kernel(nr_cpus=2, detectors={"lockdep": "off"})
    k.log = []
    shared = spinlock_t("shared")
    for cpu in range(2):
        k.spawn(cpu, partial(_nested, spinlock_t(f"outer{cpu}"), shared, k.log))
    return k


def _push_then_take(head, name, take):
    llist_add(llist_node(name), head)
    return tuple(n.payload for n in llist_for_each(llist_del_all(head))) if take else None


def llist_with_nmi():
    k = Kernel(nr_cpus=2)
    k.head = llist_head("deferred")
    k.spawn(0, partial(_push_then_take, k.head, "cpu0", False))
    k.spawn(1, partial(_push_then_take, k.head, "cpu1", True))
    k.on_interrupt(0, "nmi", partial(_push_then_take, k.head, "nmi", False))
    return k


def _abba_task(first, second, trylock):
    spin_lock(first)
    if not trylock:
        spin_lock(second)
        spin_unlock(second)
    elif spin_trylock(second):
        spin_unlock(second)
    spin_unlock(first)


def abba(trylock=False):
    k = Kernel(nr_cpus=2, detectors={"lockdep": "off"})
    a, b = spinlock_t("A"), spinlock_t("B")
    k.spawn(0, partial(_abba_task, a, b, trylock))
    k.spawn(1, partial(_abba_task, b, a, trylock))
    return k


def results(k, r):
    return (tuple(sorted(r.results.items())), tuple(getattr(k, "log", ())),
            tuple(n.payload for n in k.head) if hasattr(k, "head") else ())


# name: (builder, outcome, whether some steps commute without a bound)
SCENARIOS = {
    "private locks": (private_locks, results, True),
    "shared inner lock": (shared_inner, results, True),
    "llist with an NMI": (llist_with_nmi, results, False),  # every step touches the one head, or is an NMI
    "abba with trylocks": (partial(abba, True), results, False),  # both CPUs' sections meet on A or B
    "alloc+free, 2 CPUs": (partial(scenarios.alloc_free, nmis=0), scenarios.alloc_free_outcome, True),
    "alloc+free, 2 CPUs, PREEMPT_RT": (partial(scenarios.alloc_free, nmis=0, preempt_rt=True),
                                        scenarios.alloc_free_outcome, True),
}
# bounded searches: name -> the bounds to compare at (the NMI scenario is large beyond bound 0)
BOUNDED = {name: (0, 1, 2) for name in SCENARIOS}
BOUNDED["alloc+free, 2 CPUs, one NMI each"] = (0,)
SCENARIOS["alloc+free, 2 CPUs, one NMI each"] = (partial(scenarios.alloc_free, nmis=1),
                                                 scenarios.alloc_free_outcome, None)


def _compare(build, outcome, bound):
    full = explore(build, preemption_bound=bound, outcome=outcome, stop_on_failure=False)
    reduced = explore(build, preemption_bound=bound, outcome=outcome, stop_on_failure=False, reduce=True)
    assert full.complete and reduced.complete and full.ok and reduced.ok
    assert set(reduced.outcomes) == set(full.outcomes)
    assert reduced.executions + reduced.pruned <= full.executions
    return full, reduced


@pytest.mark.parametrize("name", [n for n, (_, _, c) in SCENARIOS.items() if c is not None])
def test_the_reduced_search_sees_the_same_outcomes(name):
    build, outcome, commuting = SCENARIOS[name]
    full, reduced = _compare(build, outcome, None)
    if commuting:
        assert reduced.executions + reduced.pruned < full.executions and reduced.skipped > 0


@pytest.mark.parametrize("name,bound", [(n, b) for n, bounds in BOUNDED.items() for b in bounds])
def test_the_reduced_bounded_search_sees_the_same_outcomes(name, bound):
    build, outcome, _ = SCENARIOS[name]
    _compare(build, outcome, bound)


def test_a_bounded_reduction_skips_schedules():
    """The alloc+free scenario at bound 2 has orders the bound-aware sleep sets do skip."""
    full, reduced = _compare(partial(scenarios.alloc_free, nmis=0), scenarios.alloc_free_outcome, 2)
    assert reduced.skipped > 0 and reduced.executions + reduced.pruned < full.executions


def test_an_interrupt_declares_what_its_handler_touches_before_its_first_point():
    """An NMI's first segment runs outside any lock: it reads the zone's counters, nothing else
    shared, so it commutes with the other CPU's step inside a pcp lock but not with a zone->lock one."""
    k = scenarios.alloc_free(nmis=1)
    nmi = por.footprint(_Run(k), (IRQ, 0))
    assert nmi == frozenset({"?zone->lock"})
    assert not por.conflict(nmi, frozenset({"pcp->lock[cpu1]"}))
    assert por.conflict(nmi, frozenset({"pcp->lock[cpu1]", "zone->lock"}))
    assert not por.conflict(nmi, nmi)  # two readers commute


class _Run:
    """Just what :func:`por.footprint` reads of a run, for a machine that is not running."""

    def __init__(self, kernel):
        self.kernel, self.cpus, self.sources, self._unstarted = kernel, kernel.cpus, kernel._sources, set()


def test_the_reduced_search_finds_the_same_deadlocks():
    full = explore(abba, preemption_bound=None, stop_on_failure=False)
    reduced = explore(abba, preemption_bound=None, stop_on_failure=False, reduce=True)
    assert {f.title for f in reduced.failures} == {f.title for f in full.failures} != set()
    assert reduced.executions <= full.executions


def test_commuting_critical_sections_are_explored_in_one_order_only():
    """The private sections of two CPUs commute, so only the orders of the unlocked steps (task
    start, the step after the last unlock) are left; the shared lock keeps both of its orders."""
    private = explore(private_locks, preemption_bound=None, reduce=True, outcome=results)
    shared = explore(shared_inner, preemption_bound=None, reduce=True, outcome=results)
    assert len(private.outcomes) == 2 and len(shared.outcomes) == 2  # log order: which CPU went first
    assert private.executions + private.pruned < shared.executions + shared.pruned


class Footprints(Strategy):
    """Serial, recording the footprint of every option at every decision."""

    def __init__(self):
        self.seen = []

    def choose(self, run, options):
        self.seen.append({o: por.footprint(run, o) for o in options})
        return 0


def test_footprints_name_the_locks_and_an_unannotated_point_touches_everything():
    k = Kernel(nr_cpus=2, detectors={"lockdep": "off"})
    a, b = spinlock_t("A"), spinlock_t("B")

    def cpu0():
        spin_lock(a)
        point("unannotated", a)
        spin_unlock(a)

    def cpu1():
        spin_lock(b)
        spin_unlock(b)

    k.spawn(0, cpu0)
    k.spawn(1, cpu1)
    k.on_interrupt(1, "nmi", lambda: None)
    strategy = Footprints()
    k.run(strategy)
    seen = [fp for options in strategy.seen for fp in options.items()]
    assert ((RUN, 0), frozenset({"A"})) in seen  # spin_lock(A): the critical section
    assert ((RUN, 1), frozenset({"B"})) in seen
    unlocked = por.unlocked(k)  # the zone counters read, memcg's charged: what code outside any lock shares
    assert unlocked >= {"?zone->lock", "memcg"}
    assert all(fp == unlocked for (kind, _), fp in seen if kind == IRQ)  # the handler's unlocked first segment
    assert ((RUN, 0), None) in seen  # the unannotated point inside A touches everything
    assert ((RUN, 1), frozenset({"B"}) | unlocked) in seen  # the unlock of B, then code outside any lock


def test_independence_needs_two_cpus_and_footprints_that_do_not_conflict():
    k = Kernel(nr_cpus=2)
    for cpu in range(2):
        k.on_interrupt(cpu, "nmi", lambda: None)  # sources 0 and 1, on CPU0 and CPU1
    run = _Run(k)
    a, b, read_b = frozenset({"A"}), frozenset({"B"}), frozenset({"?B"})
    assert por.independent(run, (RUN, 0), a, (RUN, 1), b)
    assert not por.independent(run, (RUN, 0), a, (RUN, 1), a)
    assert not por.independent(run, (RUN, 0), a, (RUN, 0), b)
    assert not por.independent(run, (RUN, 0), None, (RUN, 1), b)
    assert not por.independent(run, (RUN, 0), read_b, (RUN, 1), b)  # a read and a write of B
    assert por.independent(run, (RUN, 0), read_b, (IRQ, 1), read_b)  # two reads, two CPUs
    assert not por.independent(run, (RUN, 0), a, (IRQ, 0), b)  # an NMI on CPU0 is CPU0's step


def test_a_trylock_that_will_fail_outside_any_lock_touches_everything():
    k = Kernel(nr_cpus=2, detectors={"lockdep": "off"})
    lock = spinlock_t("L")
    seen = []

    class Record(Strategy):
        def choose(self, run, options):
            if run.cpus[1].stack[-1].announced is not None:
                seen.append((lock.owner is not None, por.footprint(run, (RUN, 1))))
            if lock.owner is not None and (RUN, 1) in options:
                return options.index((RUN, 1))  # CPU1 gets to its trylock while CPU0 holds the lock
            return 0

    def holder():
        spin_lock(lock)
        point("inside", lock)
        spin_unlock(lock)

    k.spawn(0, holder)
    k.spawn(1, lambda: spin_trylock(lock) and spin_unlock(lock))
    k.run(Record())
    # held by CPU0: the trylock fails (it read L), CPU1 goes on unlocked
    assert (True, frozenset({"L"}) | por.unlocked(k)) in seen


def _nest_pairs(k, cpu, pairs):
    """Take each pair's first lock, then its second inside it (if any); log who was inside each."""
    for outer, inner in pairs:
        spin_lock(k.locks[outer])
        k.logs[outer].append(cpu)
        if inner is not None:
            spin_lock(k.locks[inner])
            k.logs[inner].append(cpu)
            spin_unlock(k.locks[inner])
        spin_unlock(k.locks[outer])


def three_locks():
    """Found by a random search over small programs: at preemption bound 1, plain sleep sets lose
    two of its six outcomes (the order covering a skipped one needs a second preemption)."""
    k = Kernel(nr_cpus=2, memcg=False, detectors={"lockdep": "off"})
    k.locks = {n: spinlock_t(n) for n in "ABC"}
    k.logs = {n: [] for n in "ABC"}
    k.spawn(0, partial(_nest_pairs, k, 0, [("A", "C"), ("C", "A"), ("B", None)]))
    k.spawn(1, partial(_nest_pairs, k, 1, [("C", None), ("B", "C")]))
    return k


def _logs(k, r):
    return tuple(tuple(k.logs[n]) for n in "ABC")


def test_under_a_bound_the_sleep_sets_keep_what_plain_ones_lose(monkeypatch):
    """Coons et al.'s point, on a scenario of the model: ignore the preemptions the covering order
    costs (every debt zero) and the reduced search at bound 1 misses outcomes; with the debts it
    sees them all."""
    full = explore(three_locks, preemption_bound=1, outcome=_logs, stop_on_failure=False)
    sound = explore(three_locks, preemption_bound=1, outcome=_logs, stop_on_failure=False, reduce=True)
    assert set(sound.outcomes) == set(full.outcomes)
    monkeypatch.setattr(frontier, "debt", lambda u_cost, w, w_cost: 0)
    plain = explore(three_locks, preemption_bound=1, outcome=_logs, stop_on_failure=False, reduce=True)
    assert set(plain.outcomes) < set(full.outcomes)

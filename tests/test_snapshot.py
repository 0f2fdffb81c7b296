"""Booting once: a machine restored from its booted snapshot is the machine a fresh boot gives, field
by field, for every subsystem, and a search over restored machines runs the executions a search over
fresh ones runs."""
from __future__ import annotations

import random
import types
from array import array
from collections import deque

import pytest
from greenlet import greenlet

from tryalloc import Config, Kernel, explore, random_search, replay
from tryalloc.bpf.prog import bpf_prog_attach_tracepoint
from tryalloc.errors import ContextError, LockdepError
from tryalloc.include.gfp import __GFP_ACCOUNT, GFP_ATOMIC, GFP_KERNEL
from tryalloc.kernel.locking import spin_lock_irqsave, spin_trylock_irqsave, spin_unlock_irqrestore, spinlock_t
from tryalloc.kernel.snapshot import changes, restore, snapshot
from tryalloc.mm import page_alloc as A
from tryalloc.mm.debug import check_invariants
from tryalloc.mm.memcontrol import mem_cgroup_create, task_set_memcg
from tryalloc.trace import register_trace

BOOT = dict(nr_cpus=2, pages_per_node=64, max_order=3, pageblock_order=3, page_owner=True, debug_objects=True)


def state(obj, memo=None):
    """Everything ``obj`` holds, as plain data: objects by class and fields, shared objects as a
    reference to the first place they were met (so aliasing is compared too).  Written apart from
    the snapshot code on purpose: the two must not share a blind spot."""
    memo = {} if memo is None else memo
    if isinstance(obj, (int, float, str, bytes, bool, type(None))):
        return obj
    if isinstance(obj, (types.FunctionType, types.MethodType, type)):
        return ("code", getattr(obj, "__qualname__", repr(obj)))
    if id(obj) in memo:
        return ("same as", memo[id(obj)])
    memo[id(obj)] = len(memo)
    kind = type(obj).__name__
    if isinstance(obj, (array, bytearray)):
        return (kind, bytes(obj))
    if isinstance(obj, (list, tuple, deque)):
        return (kind, [state(v, memo) for v in obj])
    if isinstance(obj, dict):
        return (kind, [(state(k, memo), state(v, memo)) for k, v in obj.items()])
    if isinstance(obj, (set, frozenset)):
        return (kind, sorted(repr(state(v, memo)) for v in obj))
    if isinstance(obj, random.Random):
        return (kind, obj.getstate())
    fields = dict(vars(obj)) if hasattr(obj, "__dict__") else {}
    for cls in type(obj).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if hasattr(obj, name):
                fields[name] = getattr(obj, name)
    return (kind, [(name, state(value, memo)) for name, value in fields.items()])


def machine_state(kernel) -> dict:
    """Each attribute of the kernel on its own (what a subsystem holds, whoever else shares it), and
    under ``"whole"`` the machine in one piece (which subsystem shares what with which)."""
    each = {name: state(value) for name, value in vars(kernel).items()}
    memo: dict = {}
    each["whole"] = {name: state(value, memo) for name, value in vars(kernel).items()}
    return each


def _workload(k):
    """Touch every subsystem: pages left allocated on every order and on both CPUs' pcps, memcg
    charges, page_owner stacks in the depot, a probe and a BPF program on tracepoints, fault
    injection's generator drawn from, lockdep's marks; then the state a report leaves mid-run."""
    memcg = mem_cgroup_create(k, "job")
    task_set_memcg(k, 1, memcg)
    register_trace(k, "mm_page_alloc", lambda **fields: None)
    bpf_prog_attach_tracepoint(k, "mm_page_free", lambda ctx: None)
    k.fail_page_alloc.probability, k.fail_page_alloc.min_order, k.fail_page_alloc.times = 50, 0, -1
    kept = [k.call(A.alloc_pages, GFP_KERNEL, order) for order in (0, 1, 2, 3)]
    k.call(A.__free_pages, kept[1] or kept[0], 1 if kept[1] else 0)
    k.call(A.alloc_pages, GFP_KERNEL | __GFP_ACCOUNT, 0, cpu=1)
    # a report ends an execution wherever it fires: counters and lock owners stay as they were then
    k.bpf_prog_active[0] = 1
    k.obj_hash_lock.owner = k.cpus[0].stack[0]


def test_a_restored_machine_equals_a_freshly_booted_one_field_by_field():
    fresh = machine_state(Kernel(**BOOT))
    k = Kernel(**BOOT)
    booted = snapshot(k)
    assert machine_state(k) == fresh
    _workload(k)
    touched = machine_state(k)
    subsystems = {"mem_map", "zones", "vm_events", "memcg", "stack_depot", "page_owner", "tracepoints",
                  "bpf_prog_active", "obj_hash_lock", "fail_page_alloc", "lockdep", "events", "_last_run"}
    assert subsystems <= set(fresh)
    for name in subsystems:  # the workload changed each of them, so the comparison below can fail
        assert touched[name] != fresh[name], name
    restore(k, booted)
    restored = machine_state(k)
    assert restored.keys() == fresh.keys()
    for name in fresh:
        assert restored[name] == fresh[name], f"kernel.{name} differs from a fresh boot after restore"


def test_restoring_twice_and_after_a_search_still_gives_the_booted_machine():
    fresh = machine_state(Kernel(**BOOT))
    k = Kernel(**BOOT)
    booted = snapshot(k)
    for _ in range(2):
        _workload(k)  # creates memcg "job" again: the restored machine has none
        restore(k, booted)
        assert machine_state(k) == fresh


def test_a_snapshot_refuses_state_it_cannot_put_back_and_another_machines_snapshot():
    k = Kernel(**BOOT)
    k.zones[0].stray = greenlet(lambda: None)
    with pytest.raises(ContextError, match=r"cannot save greenlet at kernel\..*\.stray"):
        snapshot(k)
    with pytest.raises(ContextError, match="another machine"):
        restore(Kernel(**BOOT), snapshot(Kernel(**BOOT)))


def test_the_same_capture_names_what_a_call_changed_and_nothing_else():
    """Compared instead of restored, the capture finds every change to the machine's state, and only
    those: a run that changes nothing but the last run's log reads as no change."""
    k = Kernel(**BOOT)
    before = snapshot(k, state_only=True)
    assert changes(k, before) == []
    k.call(lambda: None)
    assert changes(k, before) == []
    k.fail_page_alloc.rng.random()
    page = k.call(A.alloc_pages, GFP_KERNEL, 0)
    changed = changes(k, before, limit=1000)
    assert any(".mem_map._refcount" in c for c in changed), changed
    assert any(".fail_page_alloc.rng" in c for c in changed), changed
    assert not any("_last_run" in c or c.startswith("kernel.events") for c in changed), changed
    k.call(A.__free_pages, page, 0)
    with pytest.raises(ContextError, match="another machine"):
        changes(Kernel(**BOOT), before)


# --- the search over restored machines ------------------------------------------------------------
SMALL = dict(nr_cpus=2, pages_per_node=64, max_order=3, pageblock_order=3)


def _two_cpus_and_an_nmi(nmi_alloc):
    """Each CPU allocates and frees orders 0 and 1, then takes a lock of its own; an NMI on CPU 0
    calls ``nmi_alloc``, which must not spin (a trylock of that lock) or may (an allocation)."""
    def setup(k):
        lock = spinlock_t("L")

        def task():
            for order in (0, 1):
                page = A.alloc_pages(GFP_KERNEL, order)
                if page is not None:
                    A.__free_pages(page, order)
            flags = spin_lock_irqsave(lock)
            spin_unlock_irqrestore(lock, flags)

        def nmi():
            nmi_alloc(lock)

        k.spawn(0, task)
        k.spawn(1, task)
        k.on_interrupt(0, "nmi", nmi)
    return setup


def _trylock_in_nmi(lock):
    flags = spin_trylock_irqsave(lock)
    if flags is not None:
        spin_unlock_irqrestore(lock, flags)


def _outcome(k, res):
    return (k.zones[0].vm_stat[A.NR_FREE_PAGES], k.vm_events[A.PGALLOC], len(res.events))


def _searches(setup, **opts):
    def build():
        k = Kernel(**SMALL)
        setup(k)
        return k
    kw = dict(check=lambda k, res: check_invariants(k), outcome=_outcome, **opts)
    return [explore(build, **kw), explore(setup, boot=SMALL, restore=False, **kw),
            explore(setup, boot=Config.make(**SMALL), **kw)]


def _same(results):
    first = results[0]
    for other in results[1:]:
        assert (other.executions, other.complete, other.outcomes) == (first.executions, first.complete,
                                                                      first.outcomes)
        assert [f.replay for f in other.failures] == [f.replay for f in first.failures]


def test_a_search_over_restored_machines_runs_the_same_executions_as_over_fresh_ones():
    results = _searches(_two_cpus_and_an_nmi(_trylock_in_nmi), preemption_bound=1)
    assert results[0].executions > 100 and results[0].ok and results[0].complete
    _same(results)


def test_a_failure_found_on_a_restored_machine_replays_on_a_fresh_one():
    setup = _two_cpus_and_an_nmi(lambda lock: A.alloc_pages(GFP_ATOMIC, 0))
    results = _searches(setup, preemption_bound=1)
    _same(results)
    found = results[-1].failures[0]
    assert isinstance(found, LockdepError)  # lockdep sees spin_lock in NMI before the CPU spins
    with pytest.raises(LockdepError) as again:
        replay(setup, found.replay, boot=SMALL)
    assert again.value.replay == found.replay


def test_random_search_over_restored_machines_draws_the_same_schedules():
    setup = _two_cpus_and_an_nmi(_trylock_in_nmi)
    runs = [random_search(setup, boot=SMALL, executions=200, outcome=_outcome, restore=r) for r in (True, False)]
    assert runs[0].outcomes == runs[1].outcomes and runs[0].executions == 200

"""The 6.15 trylock API of ``local_trylock_t`` (51339d99c013; S9.4.2).

6.15 has two trylocks on a ``local_trylock_t``: ``local_trylock_irqsave`` (patch 3's, R3.1-R3.5) and
the preemption-only ``local_trylock``, plus ``local_trylock_init``.  On !PREEMPT_RT all three take only
a ``local_trylock_t`` (C fails to compile with a ``local_lock_t``: it has no ``acquired`` word; the
model refuses with :class:`~tryalloc.errors.LockUsageError`), and both trylocks succeed exactly when
this CPU's flag is clear.  On RT both types are the same per-CPU ``spinlock_t``.  Before 6.15 the
model has neither ``local_trylock`` nor ``local_trylock_init``, so every test here fails there.
"""
import importlib

import pytest

from tryalloc import Kernel, Scripted, When
from tryalloc.errors import LockUsageError

LL = importlib.import_module("tryalloc.kernel.locking.local_lock")  # the package exports a local_lock()
NAME = "memcg_stock.stock_lock"
QUIET = {"lockdep": "off"}


def cpu_state(k):
    cpu = k.cpus[0]
    return cpu.preempt_count, cpu.irqs_disabled, cpu.migrate_disabled


@pytest.mark.rule("S9.4.2")
def test_local_trylock_disables_preemption_only_and_sets_the_flag():
    """!RT: a successful local_trylock raises the preemption count, leaves interrupts alone and sets
    this CPU's flag; local_unlock undoes all three."""
    k = Kernel(nr_cpus=1, detectors=QUIET)
    lock = LL.local_trylock_t(NAME, 1)

    def task():
        before = cpu_state(k)
        got = LL.local_trylock(lock)
        inside = cpu_state(k), lock.active[0], lock.holder(0) is not None
        LL.local_unlock(lock)
        return before, got, inside, cpu_state(k), lock.active[0]

    before, got, inside, after, flag = k.call(task)
    assert got is True
    assert inside == ((before[0] + 1, before[1], before[2]), 1, True)
    assert after == before and flag == 0


@pytest.mark.rule("S9.4.2")
@pytest.mark.parametrize("holder", ["local_lock_irqsave", "local_trylock"])
def test_local_trylock_fails_on_the_cpu_whose_flag_is_set_and_undoes_its_preempt_disable(holder):
    """!RT, same success condition as the irqsave form: an NMI on a CPU whose task is inside the
    section (entered with local_lock_irqsave or with local_trylock itself) fails, and leaves the
    preemption count and interrupts as it found them."""
    k = Kernel(nr_cpus=1, detectors=QUIET)
    lock = LL.local_trylock_t(NAME, 1)
    got = []

    def task():
        if holder == "local_trylock":
            assert LL.local_trylock(lock)
            LL.local_unlock(lock)
        else:
            LL.local_unlock_irqrestore(lock, LL.local_lock_irqsave(lock))

    def nmi():
        before = cpu_state(k)
        got.append((LL.local_trylock(lock), cpu_state(k) == before, lock.active[0]))

    k.spawn(0, task)
    k.on_interrupt(0, "nmi", nmi)
    k.run(Scripted(When(cpu=0, op="acquired", obj=NAME, inject="nmi")))
    assert got == [(False, True, 1)]
    assert lock.active == [0] and lock.holder(0) is None


@pytest.mark.rule("S9.4.2")
def test_the_irqsave_trylock_fails_on_a_holder_that_used_local_trylock():
    k = Kernel(nr_cpus=1, detectors=QUIET)
    lock = LL.local_trylock_t(NAME, 1)
    got = []

    def task():
        assert LL.local_trylock(lock)
        LL.local_unlock(lock)

    k.spawn(0, task)
    k.on_interrupt(0, "nmi", lambda: got.append(LL.local_trylock_irqsave(lock)))
    k.run(Scripted(When(cpu=0, op="acquired", obj=NAME, inject="nmi")))
    assert got == [None]


@pytest.mark.rule("S9.4.2")
@pytest.mark.parametrize("helper", ["local_trylock", "local_trylock_init"])
def test_on_not_rt_the_trylock_helpers_refuse_a_plain_local_lock_t(helper):
    """!RT: each new helper given a local_lock_t raises LockUsageError saying C would not compile it,
    with the CPU's preemption, interrupt and migration state and the lock unchanged (the irqsave
    trylock's refusal is R3.4's)."""
    k = Kernel(nr_cpus=1)
    plain = LL.local_lock_t(NAME, 1)

    def call():
        before = cpu_state(k)
        with pytest.raises(LockUsageError, match="not a local_trylock_t.*does not compile"):
            getattr(LL, helper)(plain)
        return before, cpu_state(k)

    before, after = k.call(call)
    assert after == before and plain.holder(0) is None


@pytest.mark.rule("S9.4.2")
def test_local_trylock_init_makes_a_free_lock_and_refuses_a_held_one():
    """local_trylock_init leaves every CPU's flag clear and no holder, so the next trylock
    succeeds; given a lock some CPU is inside, it is refused and nothing changes (lockdep's
    "held lock freed" check in the kernel's init)."""
    k = Kernel(nr_cpus=2, detectors=QUIET)
    lock = LL.local_trylock_t(NAME, 2)

    def task():
        LL.local_trylock_init(lock)
        fresh = list(lock.active), [lock.holder(c) for c in range(2)]
        flags = LL.local_lock_irqsave(lock)
        with pytest.raises(LockUsageError, match="held"):
            LL.local_trylock_init(lock)
        held = list(lock.active), lock.holder(0) is not None
        LL.local_unlock_irqrestore(lock, flags)
        LL.local_trylock_init(lock)
        ok = LL.local_trylock(lock)
        LL.local_unlock(lock)
        return fresh, held, ok

    assert k.call(task) == (([0, 0], [None, None]), ([1, 0], True), True)


@pytest.mark.rule("S9.4.2")
@pytest.mark.parametrize("context", ["nmi", "hardirq"])
def test_on_rt_local_trylock_fails_in_nmi_and_hardirq_even_when_free(context):
    """RT: like the irqsave form (R3.5), local_trylock fails at once in NMI and hard-IRQ."""
    k = Kernel(nr_cpus=1, preempt_rt=True)
    lock = LL.local_trylock_t(NAME, 1)

    def attempt():
        before = cpu_state(k)
        return LL.local_trylock(lock), cpu_state(k) == before, lock.holder(0), lock._rt_lock[0].owner

    assert k.call(attempt, context=context) == (False, True, None, None)


@pytest.mark.rule("S9.4.2")
def test_on_rt_local_trylock_is_a_migrate_disabled_per_cpu_spin_trylock():
    """RT, task context: success disables migration (not preemption) and owns this CPU's spinlock;
    a softirq arriving while the task holds it fails, with migration as it found it."""
    k = Kernel(nr_cpus=1, preempt_rt=True, detectors=QUIET)
    lock = LL.local_trylock_t(NAME, 1)
    got = []

    def task():
        before = cpu_state(k)
        ok = LL.local_trylock(lock)
        got.append((before, ok, cpu_state(k), lock._rt_lock[0].owner is not None))
        LL.local_unlock(lock)
        got.append(cpu_state(k) == before)

    def softirq():
        before = cpu_state(k)
        got.append((LL.local_trylock(lock), cpu_state(k) == before))

    k.spawn(0, task)
    k.on_interrupt(0, "softirq", softirq)
    k.run(Scripted(When(cpu=0, op="acquired", obj=f"{NAME}[cpu0]", inject="softirq")))
    (before, ok, inside, owned), failed, restored = got
    assert ok is True and owned and inside[:2] == before[:2] and inside[2] > before[2]
    assert failed == (False, True) and restored is True

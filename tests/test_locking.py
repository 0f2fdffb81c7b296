"""Spin locks, raw spin locks and local locks: semantics on !RT, RT and UP, and their misuse."""
import pytest

from tryalloc import (
    DeadlockError,
    InvalidContextError,
    Kernel,
    LockUsageError,
    PerCpuCorruptionError,
    Scripted,
    When,
)
from tryalloc.kernel.locking import (
    local_lock_irqsave,
    local_lock_t,
    local_unlock_irqrestore,
    raw_spin_lock,
    raw_spin_unlock,
    raw_spinlock_t,
    spin_lock,
    spin_lock_irqsave,
    spin_trylock,
    spin_trylock_irqsave,
    spin_unlock,
    spin_unlock_irqrestore,
    spinlock_t,
)
from tryalloc.kernel.preempt import irqs_disabled, preempt_count
from tryalloc.kernel.sched import inject_interrupt, this_cpu

QUIET_LOCKDEP = {"lockdep": "off"}


def test_aa_deadlock_nmi_spins_on_lock_its_task_holds():
    """An NMI spinning on a lock the interrupted task holds is reported at once, lockdep-style."""
    k = Kernel(nr_cpus=1, detectors=QUIET_LOCKDEP)
    lock = spinlock_t("zone->lock")

    def nmi():
        flags = spin_lock_irqsave(lock)
        spin_unlock_irqrestore(lock, flags)

    def task():
        flags = spin_lock_irqsave(lock)
        inject_interrupt("nmi", nmi)
        spin_unlock_irqrestore(lock, flags)

    with pytest.raises(DeadlockError) as err:
        k.call(task)
    text = str(err.value)
    assert "CPU0/nmi spins on zone->lock held by CPU0/task0" in text
    assert "<Interrupt: nmi>" in text and "*** DEADLOCK ***" in text
    assert "task>nmi" in text and "replay: ta1/" in text


def test_recursive_spin_on_own_lock_is_a_deadlock():
    k = Kernel(nr_cpus=1, detectors=QUIET_LOCKDEP)
    lock = raw_spinlock_t("pool_lock")

    def task():
        raw_spin_lock(lock)
        raw_spin_lock(lock)

    with pytest.raises(DeadlockError, match="already holds"):
        k.call(task)


def test_trylock_in_nmi_fails_instead_of_spinning():
    k = Kernel(nr_cpus=1)
    lock = spinlock_t("zone->lock")
    got = []

    def nmi():
        flags = spin_trylock_irqsave(lock)
        got.append(flags)
        assert irqs_disabled()  # the NMI runs with irqs off; a failed trylock restored that state

    def task():
        flags = spin_lock_irqsave(lock)
        inject_interrupt("nmi", nmi)
        spin_unlock_irqrestore(lock, flags)

    k.call(task)
    assert got == [None]
    assert lock.owner is None


def test_spin_lock_irqsave_disables_irqs_on_non_rt_but_not_on_rt():
    def task(lock):
        flags = spin_lock_irqsave(lock)
        inside = (irqs_disabled(), preempt_count(), this_cpu().migrate_disabled)
        spin_unlock_irqrestore(lock, flags)
        return inside, (irqs_disabled(), preempt_count(), this_cpu().migrate_disabled)

    assert Kernel(nr_cpus=1).call(task, spinlock_t("l")) == ((True, 1, 0), (False, 0, 0))
    assert Kernel(nr_cpus=1, preempt_rt=True).call(task, spinlock_t("l")) == ((False, 0, 1), (False, 0, 0))
    # a raw spinlock spins with preemption off even on RT
    assert Kernel(nr_cpus=1, preempt_rt=True).call(task, raw_spinlock_t("r"))[0] == (True, 1, 0)


@pytest.mark.parametrize("context", ["hardirq", "nmi"])
def test_rt_sleeping_lock_in_atomic_context_is_invalid(context):
    def take():
        spin_lock(spinlock_t("zone->lock"))

    with pytest.raises(InvalidContextError, match="sleeping lock"):
        Kernel(nr_cpus=1, preempt_rt=True).call(take, context=context)


def test_rt_sleeping_lock_with_irqs_disabled_is_invalid_but_fine_on_non_rt():
    def take():
        lock = spinlock_t("l")
        outer = raw_spinlock_t("outer")
        raw_spin_lock(outer)
        spin_lock(lock)
        spin_unlock(lock)
        raw_spin_unlock(outer)
        return True

    assert Kernel(nr_cpus=1).call(take)
    with pytest.raises(InvalidContextError, match="preemption disabled"):
        Kernel(nr_cpus=1, preempt_rt=True).call(take)


@pytest.mark.parametrize("context", ["hardirq", "nmi"])
def test_rt_trylock_in_nmi_or_hardirq_is_invalid(context):
    with pytest.raises(InvalidContextError, match="trylock"):
        Kernel(nr_cpus=1, preempt_rt=True).call(lambda: spin_trylock(spinlock_t("l")), context=context)
    # !RT: a trylock is fine there
    lock = spinlock_t("l")
    assert Kernel(nr_cpus=1).call(lambda: (spin_trylock(lock), spin_unlock(lock))[0], context=context)


def test_uniprocessor_trylock_always_succeeds_and_two_contexts_end_up_inside():
    k = Kernel(nr_cpus=1, smp=False)
    lock = spinlock_t("zone->lock")

    def nmi():
        spin_trylock(lock)

    def task():
        flags = spin_lock_irqsave(lock)
        inject_interrupt("nmi", nmi)
        spin_unlock_irqrestore(lock, flags)

    with pytest.raises(PerCpuCorruptionError, match="uniprocessor"):
        k.call(task)


def test_unlock_not_held_is_refused_and_changes_nothing():
    lock = spinlock_t("zone->lock")

    def task():
        state = (preempt_count(), irqs_disabled())
        with pytest.raises(LockUsageError, match="not held"):
            spin_unlock(lock)
        assert (preempt_count(), irqs_disabled(), lock.owner) == state + (None,)
        return True

    assert Kernel(nr_cpus=1).call(task)


def test_unlock_on_another_cpu_is_refused():
    lock = spinlock_t("zone->lock")
    errors = []

    def cpu0():
        spin_lock(lock)  # and return holding it (lockdep's leak check is off here)

    def cpu1():
        try:
            spin_unlock(lock)
        except LockUsageError as e:
            errors.append(str(e))

    k2 = Kernel(nr_cpus=2, detectors=QUIET_LOCKDEP)
    k2.spawn(0, cpu0)
    k2.spawn(1, cpu1)
    k2.run(Scripted(order=(0, 1)))
    assert errors and "held on another CPU" in errors[0]
    assert lock.owner is not None and lock.owner.cpu.id == 0


def test_local_lock_nmi_walks_into_the_section_on_non_rt():
    """!RT local_lock_irqsave only disables irqs: an NMI enters too, and the model reports it."""
    k = Kernel(nr_cpus=1, detectors=QUIET_LOCKDEP)
    stock_lock = local_lock_t("memcg_stock.stock_lock", 1)

    def nmi():
        flags = local_lock_irqsave(stock_lock)
        local_unlock_irqrestore(stock_lock, flags)

    def task():
        flags = local_lock_irqsave(stock_lock)
        local_unlock_irqrestore(stock_lock, flags)

    k.spawn(0, task)
    k.on_interrupt(0, "nmi", nmi)
    with pytest.raises(PerCpuCorruptionError, match="memcg_stock.stock_lock"):
        k.run(Scripted(When(cpu=0, op="acquired", obj="memcg_stock.stock_lock", inject="nmi")))


def test_local_lock_on_rt_is_a_sleeping_lock_refused_in_nmi():
    stock_lock = local_lock_t("memcg_stock.stock_lock", 1)

    def nmi():
        local_lock_irqsave(stock_lock)

    with pytest.raises(InvalidContextError):
        Kernel(nr_cpus=1, preempt_rt=True).call(nmi, context="nmi")


def test_local_lock_is_per_cpu():
    k = Kernel(nr_cpus=2)
    lock = local_lock_t("memcg_stock.stock_lock", 2)
    inside = []

    def task():
        flags = local_lock_irqsave(lock)
        inside.append([lock.holder(c) is not None for c in range(2)])
        local_unlock_irqrestore(lock, flags)

    k.spawn(0, task)
    k.spawn(1, task)
    k.run(Scripted(order=(0, 1)))
    assert inside == [[True, False], [False, True]]

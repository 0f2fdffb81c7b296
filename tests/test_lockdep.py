"""Lockdep-lite: predictions from single runs, and the trylock exemption."""
import pytest

from tryalloc import Kernel, LockdepError
from tryalloc.kernel.locking import (
    spin_lock,
    spin_lock_irqsave,
    spin_trylock,
    spin_unlock,
    spin_unlock_irqrestore,
    spinlock_t,
)
from tryalloc.kernel.sched import inject_interrupt


def test_inconsistent_irq_usage_is_predicted_without_a_deadlock():
    """Held with irqs on in the task, taken in a hardirq later: lockdep warns though nothing hung."""
    lock = spinlock_t("pcp->lock")

    def task():
        spin_lock(lock)
        spin_unlock(lock)
        inject_interrupt("hardirq", lambda: (spin_lock(lock), spin_unlock(lock)))

    with pytest.raises(LockdepError, match=r"inconsistent \{HARDIRQ-ON-W\} -> \{IN-HARDIRQ-W\} usage"):
        Kernel(nr_cpus=1).call(task)


def test_trylock_in_hardirq_marks_no_irq_usage():
    lock = spinlock_t("pcp->lock")

    def task():
        spin_lock(lock)
        spin_unlock(lock)
        inject_interrupt("hardirq", lambda: spin_trylock(lock) and spin_unlock(lock))
        return True

    assert Kernel(nr_cpus=1).call(task)


def test_nmi_blocking_acquire_of_a_used_class_is_reported():
    lock = spinlock_t("zone->lock")

    def task():
        flags = spin_lock_irqsave(lock)
        spin_unlock_irqrestore(lock, flags)
        inject_interrupt("nmi", lambda: spin_unlock_irqrestore(lock, spin_lock_irqsave(lock)))

    with pytest.raises(LockdepError, match=r"\{INITIAL USE\} -> \{IN-NMI\}"):
        Kernel(nr_cpus=1).call(task)


def test_circular_dependency_predicted_from_one_cpu():
    a, b = spinlock_t("A"), spinlock_t("B")

    def task():
        spin_lock(a)
        spin_lock(b)
        spin_unlock(b)
        spin_unlock(a)
        spin_lock(b)
        spin_lock(a)

    with pytest.raises(LockdepError, match="circular locking dependency") as err:
        Kernel(nr_cpus=1).call(task)
    assert "A --> B" in str(err.value) or "B --> A" in str(err.value)


def test_trylock_adds_no_dependency():
    a, b = spinlock_t("A"), spinlock_t("B")

    def task():
        spin_lock(a)
        assert spin_trylock(b)
        spin_unlock(b)
        spin_unlock(a)
        spin_lock(b)
        spin_lock(a)
        spin_unlock(a)
        spin_unlock(b)
        return True

    k = Kernel(nr_cpus=1)
    assert k.call(task)
    assert "A" not in k.lockdep.deps or "B" not in k.lockdep.deps["A"]


def test_recursive_locking_of_one_class():
    z0, z1 = spinlock_t("zone0->lock", cls="&zone->lock"), spinlock_t("zone1->lock", cls="&zone->lock")

    def task():
        spin_lock(z0)
        spin_lock(z1)

    with pytest.raises(LockdepError, match="recursive locking"):
        Kernel(nr_cpus=1).call(task)


def test_lock_held_when_returning_to_user_space():
    with pytest.raises(LockdepError, match="returning to user space"):
        Kernel(nr_cpus=1).call(lambda: spin_lock(spinlock_t("leaked")))


def test_warn_mode_records_and_goes_on():
    lock = spinlock_t("leaked")
    k = Kernel(nr_cpus=1, detectors={"lockdep": "warn"})
    k.call(lambda: spin_lock(lock))
    assert [r.title for r in k.reports] == ["WARNING: lock held when returning to user space!"]

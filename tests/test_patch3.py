"""Patch 3: local_trylock_t and local_trylock_irqsave() (spec 4, R3.1-R3.6, I5).

Before the patch there is no local_trylock_t, so every test marked with a rule fails (strict xfail)
at levels 0-2: the attribute lookups below raise there.
"""
import importlib

import pytest

from tryalloc import Kernel, Scripted, When, explore
from tryalloc.errors import LockUsageError, PerCpuCorruptionError
from tryalloc.kernel.locking import spin_lock, spin_unlock, spinlock_t
from tryalloc.kernel.preempt import local_irq_save
from tryalloc.kernel.sched import this_cpu

LL = importlib.import_module("tryalloc.kernel.locking.local_lock")  # the package exports a local_lock()
NAME = "memcg_stock.stock_lock"
QUIET = {"lockdep": "off"}


def section(lock, seen=None):
    """The holder's code: enter with local_lock_irqsave, note the flag inside, leave."""
    def task():
        flags = LL.local_lock_irqsave(lock)
        if seen is not None:
            seen.append(("inside", lock.active[0]))
        LL.local_unlock_irqrestore(lock, flags)
    return task


def trying(lock, got):
    """An interrupt handler that trylocks and records (success, irqs before, irqs after, active)."""
    def handler():
        cpu = this_cpu()
        before = cpu.irqs_disabled
        flags = LL.local_trylock_irqsave(lock)
        got.append((flags is not None, before, cpu.irqs_disabled, lock.active[cpu.id]))
        if flags is not None:
            LL.local_unlock_irqrestore(lock, flags)
    return handler


def new_lock():
    return LL.local_trylock_t(NAME, 2)


@pytest.mark.rule("R3.1")
def test_trylock_succeeds_iff_the_flag_is_clear_and_failure_keeps_the_irq_state():
    lock = new_lock()
    k = Kernel(nr_cpus=1, detectors=QUIET)
    got = []

    def task():
        before = k.cpus[0].irqs_disabled
        flags = LL.local_trylock_irqsave(lock)  # flag clear: success, IRQs off, flag set
        got.append((flags is not None, before, k.cpus[0].irqs_disabled, lock.active[0]))
        LL.local_unlock_irqrestore(lock, flags)
        got.append(("after", k.cpus[0].irqs_disabled, lock.active[0]))

    k.spawn(0, task)
    k.on_interrupt(0, "nmi", trying(lock, got))
    k.run(Scripted(When(cpu=0, op="acquired", obj=NAME, inject="nmi")))
    assert got[0] == (True, False, True, 1)  # the task: the flag was clear
    # the NMI came while the task was inside: the flag was set, so it failed and IRQs stayed as found
    assert got[1] == (False, True, True, 1)
    assert got[2] == ("after", False, 0)


@pytest.mark.rule("R3.1")
@pytest.mark.rule("R3.3")
def test_a_trylock_fails_when_this_cpu_reenters_but_not_on_another_cpu():
    lock = new_lock()
    k = Kernel(nr_cpus=2, detectors=QUIET)
    got = []

    def task0():  # enters, a tracepoint inside the section trylocks again, and stays inside
        LL.local_lock_irqsave(lock)
        got.append(("reentry", LL.local_trylock_irqsave(lock)))

    def task1():
        flags = LL.local_trylock_irqsave(lock)
        got.append(("cpu1", flags is not None, list(lock.active)))
        LL.local_unlock_irqrestore(lock, flags)

    k.spawn(0, task0)
    k.spawn(1, task1)
    k.run(Scripted(order=(0, 1)))
    assert got == [("reentry", None), ("cpu1", True, [1, 1])]  # CPU0 inside does not stop CPU1


@pytest.mark.rule("R3.2")
def test_local_lock_irqsave_sets_the_flag_without_checking_it_and_unlock_clears_it():
    lock = new_lock()
    k = Kernel(nr_cpus=1)
    seen = []
    k.spawn(0, section(lock, seen))
    k.run()
    assert seen == [("inside", 1)] and lock.active == [0, 0]


@pytest.mark.rule("R3.2")
def test_an_nmi_taking_the_trylock_type_with_local_lock_irqsave_still_walks_in():
    lock = new_lock()
    """local_lock_irqsave never fails, on the new type too: the NMI enters and the model reports it."""
    k = Kernel(nr_cpus=1, detectors=QUIET)
    k.spawn(0, section(lock))
    k.on_interrupt(0, "nmi", section(lock))
    with pytest.raises(PerCpuCorruptionError, match="both inside memcg_stock.stock_lock"):
        k.run(Scripted(When(cpu=0, op="acquired", obj=NAME, inject="nmi")))


@pytest.mark.rule("R3.3")
@pytest.mark.rule("I5")
def test_at_every_nmi_arrival_the_trylock_fails_exactly_while_the_task_is_inside():
    """Searched over every injection point: the NMI's trylock result is the negation of 'someone of
    this CPU is inside', and the flag agrees with the holder whenever the NMI looks (I5)."""
    verdicts = set()

    def setup(k):
        lock = LL.local_trylock_t(NAME, 1)

        def nmi():
            inside = lock.holder(0) is not None
            assert lock.active[0] == int(inside)  # I5 at the moment the NMI arrives
            flags = LL.local_trylock_irqsave(lock)
            assert (flags is None) == inside
            verdicts.add(inside)
            if flags is not None:
                assert lock.active[0] == 1 and lock.holder(0) is k.cpus[0].stack[-1]
                LL.local_unlock_irqrestore(lock, flags)
            assert lock.active[0] == int(inside)

        k.spawn(0, section(lock))
        k.on_interrupt(0, "nmi", nmi)
        k._lock = lock

    result = explore(setup, boot=dict(nr_cpus=1, detectors=QUIET), preemption_bound=0,
                     check=lambda k, res: _flag_clear(k._lock))
    assert result.ok and result.complete
    assert verdicts == {True, False}  # some NMIs came inside the section, some outside
    assert result.executions >= 4


def _flag_clear(lock):
    assert lock.active == [0] and lock.holder(0) is None


@pytest.mark.rule("R3.4")
def test_a_trylock_on_a_plain_local_lock_t_is_refused_saying_it_does_not_compile():
    k = Kernel(nr_cpus=1)
    plain = LL.local_lock_t(NAME, 1)
    with pytest.raises(LockUsageError, match="not a local_trylock_t.*does not compile"):
        k.call(LL.local_trylock_irqsave, plain)
    assert plain.holder(0) is None and not k.cpus[0].irqs_disabled


@pytest.mark.rule("R3.4")
@pytest.mark.rule("R3.5")
def test_on_rt_a_plain_local_lock_t_trylocks_like_the_rt_trylock():
    k = Kernel(nr_cpus=1, preempt_rt=True)
    plain = LL.local_lock_t(NAME, 1)

    def task():
        flags = LL.local_trylock_irqsave(plain)
        inside = (flags is not None, flags.disabled, k.cpus[0].migrate_disabled > 0, plain.holder(0) is not None)
        LL.local_unlock_irqrestore(plain, flags)
        return inside, k.cpus[0].migrate_disabled

    assert k.call(task) == ((True, False, True, True), 0)


@pytest.mark.rule("R3.5")
@pytest.mark.parametrize("context", ["nmi", "hardirq"])
def test_on_rt_the_trylock_fails_in_nmi_and_hardirq_even_when_free(context):
    k = Kernel(nr_cpus=1, preempt_rt=True)
    lock = LL.local_trylock_t(NAME, 1)

    def handler():
        migrate = k.cpus[0].migrate_disabled
        return LL.local_trylock_irqsave(lock), k.cpus[0].migrate_disabled - migrate

    assert k.call(handler, context=context) == (None, 0)
    assert lock.holder(0) is None and lock._rt_lock[0].owner is None


@pytest.mark.rule("R3.5")
def test_on_rt_the_trylock_fails_while_the_task_holds_it_and_reenables_migration():
    k = Kernel(nr_cpus=1, preempt_rt=True, detectors=QUIET)
    lock = LL.local_trylock_t(NAME, 1)
    got = []

    def softirq():
        migrate = k.cpus[0].migrate_disabled
        got.append((LL.local_trylock_irqsave(lock), k.cpus[0].migrate_disabled - migrate))

    k.spawn(0, section(lock))
    k.on_interrupt(0, "softirq", softirq)
    k.run(Scripted(When(cpu=0, op="acquired", obj=f"{NAME}[cpu0]", inject="softirq")))  # RT: the spinlock
    assert got == [(None, 0)]


@pytest.mark.rule("R3.5")
def test_rt_sets_flags_to_zero_even_with_irqs_disabled_by_the_caller():
    k = Kernel(nr_cpus=1, preempt_rt=True)
    lock = LL.local_trylock_t(NAME, 1)

    def task():
        saved = local_irq_save()
        flags = LL.local_trylock_irqsave(lock)
        LL.local_unlock_irqrestore(lock, flags)
        LL.local_irq_restore(saved)
        return flags.disabled, saved.disabled

    assert k.call(task) == (False, False)  # "0" although IRQs were off when it was called


@pytest.mark.levels(since="3")
def test_lockdep_records_a_try_acquire_which_adds_no_dependency():
    lock = new_lock()
    k = Kernel(nr_cpus=1)
    outer = spinlock_t("outer")

    def task():
        spin_lock(outer)
        flags = LL.local_trylock_irqsave(lock)
        LL.local_unlock_irqrestore(lock, flags)
        spin_unlock(outer)

    k.call(task)
    assert NAME not in k.lockdep.deps.get("outer", {})
    assert "INITIAL USE" in k.lockdep.usage[NAME]  # the acquisition was recorded
    k.call(lambda: (spin_lock(outer), LL.local_unlock_irqrestore(lock, LL.local_lock_irqsave(lock)),
                    spin_unlock(outer)))
    assert NAME in k.lockdep.deps["outer"]  # the blocking form does add one


# --- releasing on the wrong CPU, or a lock not held (R3.6, bad input) -----------------------------------
@pytest.mark.rule("R3.6")
def test_unlocking_on_another_cpu_is_refused_and_changes_nothing():
    lock = new_lock()
    k = Kernel(nr_cpus=2, detectors=QUIET)
    errors = []

    def task0():  # takes CPU0's instance and returns holding it
        LL.local_trylock_irqsave(lock)

    def task1():
        flags = local_irq_save()
        try:
            LL.local_unlock_irqrestore(lock, flags)
        except LockUsageError as exc:
            errors.append(str(exc))
        errors.append((list(lock.active), lock.holder(0) is not None, lock.holder(1)))

    k.spawn(0, task0)
    k.spawn(1, task1)
    k.run(Scripted(order=(0, 1)))
    assert "held on CPU0" in errors[0] and "released on the CPU that took it" in errors[0]
    assert errors[1] == ([1, 0], True, None)


@pytest.mark.levels(since="3")
def test_unlocking_a_local_trylock_t_that_is_not_held_is_refused():
    lock = new_lock()
    k = Kernel(nr_cpus=1)

    def task():
        flags = LL.local_trylock_irqsave(lock)
        LL.local_unlock_irqrestore(lock, flags)
        LL.local_unlock_irqrestore(lock, flags)

    with pytest.raises(LockUsageError, match=r"local_unlock_irqrestore\(memcg_stock.stock_lock\).*not held"):
        k.call(task)
    assert lock.active == [0, 0] and lock.holder(0) is None


@pytest.mark.levels(since="3", until="6.15")
def test_in_v6_a_holder_that_used_local_lock_is_invisible_to_the_trylock():
    """Only the irqsave pair maintains the flag (spec 4.4): the NMI's trylock succeeds and walks in."""
    k = Kernel(nr_cpus=1, detectors=QUIET)
    lock = LL.local_trylock_t(NAME, 1)

    def task():
        LL.local_lock(lock)
        LL.local_unlock(lock)

    k.spawn(0, task)
    k.on_interrupt(0, "nmi", trying(lock, []))
    with pytest.raises(PerCpuCorruptionError, match="only the irqsave pair sets active"):
        k.run(Scripted(When(cpu=0, op="acquired", obj=NAME, inject="nmi")))


@pytest.mark.rule("S9.4.1")
def test_from_6_15_every_variant_maintains_the_flag():
    k = Kernel(nr_cpus=1, detectors=QUIET)
    lock = LL.local_trylock_t(NAME, 1)
    got = []

    def task():
        LL.local_lock(lock)
        got.append(lock.active[0])
        LL.local_unlock(lock)
        got.append(lock.active[0])

    k.spawn(0, task)
    k.on_interrupt(0, "nmi", trying(lock, got))
    k.run(Scripted(When(cpu=0, op="acquired", obj=NAME, inject="nmi")))
    assert got == [1, (False, True, True, 1), 0]  # the NMI's trylock fails: the holder is visible

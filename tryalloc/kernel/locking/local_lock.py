"""``local_lock_t``: a lock that protects per-CPU data against the same CPU only.

After ``include/linux/local_lock_internal.h``:

* !PREEMPT_RT: ``local_lock_irqsave`` disables interrupts (``local_lock`` disables preemption); there
  is no lock word.  An NMI is not stopped by either, so it can walk into the section.  The model keeps
  which context of each CPU is inside, and the ``percpu`` detector reports a second context entering
  (:class:`~tryalloc.errors.PerCpuCorruptionError`): that is the corruption the series must avoid in
  the memcg stock.
* PREEMPT_RT: a per-CPU ``spinlock_t`` (a sleeping lock) taken with migration disabled; interrupts
  stay enabled.  Taking it in NMI or hard-IRQ is an invalid context.

In C the lock is a member of a per-CPU struct and ``this_cpu_ptr`` picks the instance; here one
``local_lock_t`` object holds the per-CPU state and the functions pick the running CPU's.

Patch 3 of the series (v6 3/6, 20250124035655.78899-4-alexei.starovoitov@gmail.com; R3.1-R3.6, I5)
adds :class:`local_trylock_t` and :func:`local_trylock_irqsave`:

* !PREEMPT_RT: the type is a ``local_lock_t`` with one more per-CPU word, ``active``.
  ``local_lock_irqsave`` on it sets the flag (lockdep asserts it was 0) and ``local_unlock_irqrestore``
  clears it; ``local_trylock_irqsave`` disables interrupts, and fails (restoring them) exactly when this
  CPU's flag is set: the caller interrupted or re-entered the holder.  The C code picks the behaviour by
  the argument's static type with ``_Generic``; Python has no static types, so the model dispatches on
  the object's class at run time, and a trylock on a plain ``local_lock_t`` (a compile error in C,
  R3.4) raises :class:`~tryalloc.errors.LockUsageError` saying so.
* PREEMPT_RT: both types are the same per-CPU ``spinlock_t``; the trylock fails at once in NMI and
  hard-IRQ, else it disables migration and trylocks this CPU's lock with ``spin_trylock`` (R3.5).

In v6 only the irqsave pair maintains ``active`` (``local_lock`` does not, so a holder that used it is
invisible to the trylock).  From 6.15 (51339d99c013, S9.4.1) every variant the model has
(``local_lock``, ``local_lock_irqsave`` and their unlocks) maintains it; the kernel renamed the word
``acquired``, the model keeps ``active``.

6.15 (51339d99c013, S9.4.2) also has :func:`local_trylock`, the trylock that disables preemption
only (success exactly when the irqsave form's would succeed; released with :func:`local_unlock`), and
:func:`local_trylock_init`.  On !RT both refuse a plain ``local_lock_t`` as the irqsave trylock does;
on RT, where the two types are one, both accept it.
"""
from __future__ import annotations

from ...errors import LockUsageError
from ..context import HARDIRQ_MASK, NMI_MASK  # @since 3
from ..por import ACQUIRE, RELEASE, TRYLOCK
from ..preempt import IrqFlags, check_flags, local_irq_restore, local_irq_save
from ..report import report_both_inside
from ..sched import declare_ops, event, point, running
from .spinlock import (
    _lock,
    _trylock,  # @since 3
    _unlock,
    spinlock_t,
)

declare_ops("local_lock", "local_unlock", "local_lock_irqsave", "local_unlock_irqrestore")
declare_ops("local_trylock_irqsave")  # @since 3
declare_ops("local_trylock")  # @since 6.15


class local_lock_t:
    """A per-CPU lock.  ``holder(cpu)`` is the context of that CPU inside the section, if any."""

    def __init__(self, name: str, nr_cpus: int):
        self.name = name
        self.cls = name
        self._holder: list = [None] * nr_cpus
        self._rt_lock = [spinlock_t(f"{name}[cpu{cpu}]", cls=name) for cpu in range(nr_cpus)]
        self.owner = None  # a local lock has no global owner; present so reports can read it

    def holder(self, cpu: int):
        return self._holder[cpu]

    def __repr__(self) -> str:
        inside = {i: c.name for i, c in enumerate(self._holder) if c is not None}
        return f"<local_lock_t {self.name}: {inside or 'free'}>"


# @since 3
class local_trylock_t(local_lock_t):
    """``local_trylock_t``: a ``local_lock_t`` whose !RT form also keeps, per CPU, ``active``: 1 while
    a context of that CPU is inside the section (I5).  On RT it is the same per-CPU spinlock_t."""

    def __init__(self, name: str, nr_cpus: int):
        super().__init__(name, nr_cpus)
        self.active = [0] * nr_cpus

    def __repr__(self) -> str:
        inside = {i: c.name for i, c in enumerate(self._holder) if c is not None}
        return f"<local_trylock_t {self.name}: {inside or 'free'}>"


def _set_active(lock: local_lock_t, cpu: int, value: int) -> None:
    """The ``_Generic`` branch of the irqsave pair: only a ``local_trylock_t`` has the flag.  The
    kernel's ``lockdep_assert`` on its old value is the model's holder check, made just before."""
    if isinstance(lock, local_trylock_t):
        lock.active[cpu] = value


# @end
def _enter(lock: local_lock_t, op: str) -> None:
    run = running()
    cpu = run.cpu
    if run.kernel.config.preempt_rt:
        _lock(lock._rt_lock[cpu.id], op)
        lock._holder[cpu.id] = cpu.stack[-1]
        return
    point(op, lock, (ACQUIRE, lock))
    ctx = cpu.stack[-1]
    inside = lock._holder[cpu.id]
    if inside is not None:
        report_both_inside(run, ctx, inside, lock, op, "On !PREEMPT_RT a local_lock_t only disables interrupts "
                           "or preemption, which does not stop an NMI or a re-entrant caller: both now modify "
                           "the same per-CPU data.", "PER-CPU DATA CORRUPTION")
    if run.lockdep:
        run.kernel.lockdep.acquire(lock, ctx, trylock=False)
    #~ if op == "local_lock_irqsave":  # @since 3 @until 6.15
    #~     _set_active(lock, cpu.id, 1)  # @since 3 @until 6.15
    _set_active(lock, cpu.id, 1)  # @since 6.15
    lock._holder[cpu.id] = ctx
    ctx.held.append(lock)
    event("acquired", lock)


def _leave(lock: local_lock_t, op: str) -> None:
    run = running()
    cpu = run.cpu
    ctx = cpu.stack[-1]
    if not isinstance(lock, local_lock_t):
        raise LockUsageError(f"{op}: {lock!r} is not a local_lock_t")
    if lock._holder[cpu.id] is not ctx:
        held_on = [f"CPU{i}" for i, c in enumerate(lock._holder) if c is not None]
        why = f"held on {', '.join(held_on)}" if held_on else "not held"
        raise LockUsageError(f"{op}({lock.name}) by {ctx.name}: this CPU's instance is not held by this "
                             f"context (the lock is {why}); a local lock is released on the CPU that took it")
    if run.kernel.config.preempt_rt:
        lock._holder[cpu.id] = None
        _unlock(lock._rt_lock[cpu.id], op)
        return
    point(op, lock, (RELEASE, lock))
    #~ if op == "local_unlock_irqrestore":  # @since 3 @until 6.15
    #~     _set_active(lock, cpu.id, 0)  # @since 3 @until 6.15
    _set_active(lock, cpu.id, 0)  # @since 6.15
    ctx.held.remove(lock)
    lock._holder[cpu.id] = None


def local_lock_irqsave(lock: local_lock_t) -> IrqFlags:
    run = running()
    if run.kernel.config.preempt_rt:
        cpu = run.cpu
        flags = cpu.saved_flags[cpu.irqs_disabled]
        cpu.migrate_disabled += 1
        _enter(lock, "local_lock_irqsave")
        return flags
    flags = local_irq_save()
    _enter(lock, "local_lock_irqsave")
    return flags


# @since 3
def _rt_trylock(lock: local_lock_t, op: str) -> bool:
    """RT's trylock of either form: fail at once in NMI or hard-IRQ, else disable migration and
    trylock this CPU's spinlock_t (migration enabled again on failure)."""
    cpu = running().cpu
    if cpu.preempt_count & (NMI_MASK | HARDIRQ_MASK):
        event("trylock-failed", lock)
        return False
    cpu.migrate_disabled += 1
    if not _trylock(lock._rt_lock[cpu.id], op):
        cpu.migrate_disabled -= 1
        return False
    lock._holder[cpu.id] = cpu.stack[-1]
    return True


def _check_trylock_type(lock, op: str) -> None:
    if not isinstance(lock, local_trylock_t):  # _Generic picks no branch for a local_lock_t in C
        raise LockUsageError(f"{op}({getattr(lock, 'name', lock)!r}): not a local_trylock_t. "
                             "In C this does not compile: a plain local_lock_t has no active flag to test, "
                             "so on !PREEMPT_RT only a local_trylock_t can be trylocked")


def _trylock_enter(lock: local_trylock_t, op: str) -> None:
    """!RT, the flag was clear: this context is inside; lockdep records a *try* acquisition."""
    run = running()
    cpu = run.cpu
    ctx = cpu.stack[-1]
    inside = lock._holder[cpu.id]
    if inside is not None:  # entered with local_lock(), which in v6 leaves the flag alone (not from 6.15)
        report_both_inside(run, ctx, inside, lock, op, "In v6 only the irqsave pair sets "
                           "active on a local_trylock_t: a holder that used local_lock() is invisible to the "
                           "trylock.", "PER-CPU DATA CORRUPTION")
    lock.active[cpu.id] = 1
    _try_acquired(run, lock, ctx)


def _try_acquired(run, lock: local_lock_t, ctx) -> None:
    """A trylock succeeded: lockdep records a *try* acquisition and ``ctx`` is inside (the flag is set)."""
    if run.lockdep:
        run.kernel.lockdep.acquire(lock, ctx, trylock=True)
    lock._holder[run.cpu.id] = ctx
    ctx.held.append(lock)
    event("acquired", lock)


def local_trylock_irqsave(lock: local_trylock_t) -> IrqFlags | None:
    """Try to enter this CPU's section: the saved flags on success, ``None`` on failure (R3.1-R3.5).

    C returns a bool and writes ``flags`` through the macro argument.  !RT: interrupts are saved and
    disabled; if this CPU's ``active`` is set they are restored and the trylock fails, else the flag is
    set and lockdep records a *try* acquisition (``local_trylock_acquire``).  RT: fails at once in NMI
    or hard-IRQ; else migration is disabled and this CPU's spinlock_t trylocked (migration re-enabled
    on failure); the flags are "0", interrupts enabled, since RT leaves them alone.
    """
    run = running()
    cpu = run.cpu
    if run.kernel.config.preempt_rt:
        return cpu.saved_flags[False] if _rt_trylock(lock, "local_trylock_irqsave") else None
    _check_trylock_type(lock, "local_trylock_irqsave")
    flags = local_irq_save()
    point("local_trylock_irqsave", lock, (TRYLOCK, lock))
    if lock.active[cpu.id]:
        local_irq_restore(flags)
        event("trylock-failed", lock)
        return None
    _trylock_enter(lock, "local_trylock_irqsave")
    return flags


# @end
# @since 6.15
def local_trylock(lock: local_trylock_t) -> bool:
    """Try to enter this CPU's section with preemption disabled only (S9.4.2): True on success.

    !RT: the preemption count is raised; if this CPU's ``active`` is set it is lowered again and the
    trylock fails, else the flag is set, as :func:`local_trylock_irqsave` does with interrupts.
    Interrupts stay as they were, so an interrupt may arrive inside and find the flag set.  RT:
    the same per-CPU ``spin_trylock`` with migration disabled as the irqsave form (fails at once in
    NMI or hard-IRQ).  Release with :func:`local_unlock`.
    """
    run = running()
    cpu = run.cpu
    if run.kernel.config.preempt_rt:
        return _rt_trylock(lock, "local_trylock")
    _check_trylock_type(lock, "local_trylock")
    cpu.preempt_count += 1
    point("local_trylock", lock, (TRYLOCK, lock))
    if lock.active[cpu.id]:
        cpu.preempt_count -= 1
        event("trylock-failed", lock)
        return False
    _trylock_enter(lock, "local_trylock")
    return True


def local_trylock_init(lock: local_trylock_t) -> None:
    """Initialise a ``local_trylock_t`` at run time (``local_trylock_init``, S9.4.2): every CPU's flag
    clear and nobody inside.

    The object is already initialised when constructed (``INIT_LOCAL_TRYLOCK``); this is the run-time
    form for a lock in memory set up later.  !RT refuses a plain ``local_lock_t`` (it does not compile
    in C).  A lock some CPU is inside is refused with nothing changed: the kernel's init runs
    lockdep's ``debug_check_no_locks_freed``, which reports a held lock being reinitialised.
    """
    if not running().kernel.config.preempt_rt:
        _check_trylock_type(lock, "local_trylock_init")
    held_on = [f"CPU{i}" for i, c in enumerate(lock._holder) if c is not None]
    if held_on:
        raise LockUsageError(f"local_trylock_init({lock.name}): the lock is held on {', '.join(held_on)}; "
                             "reinitialising a held lock loses its holder (lockdep: held lock freed)")
    if isinstance(lock, local_trylock_t):
        lock.active = [0] * len(lock.active)


# @end
def local_unlock_irqrestore(lock: local_lock_t, flags: IrqFlags) -> None:
    check_flags(flags)
    _leave(lock, "local_unlock_irqrestore")
    run = running()
    if run.kernel.config.preempt_rt:
        run.cpu.migrate_disabled -= 1
    else:
        local_irq_restore(flags)


def local_lock(lock: local_lock_t) -> None:
    run = running()
    if run.kernel.config.preempt_rt:
        run.cpu.migrate_disabled += 1
    else:
        run.cpu.preempt_count += 1
    _enter(lock, "local_lock")


def local_unlock(lock: local_lock_t) -> None:
    _leave(lock, "local_unlock")
    run = running()
    if run.kernel.config.preempt_rt:
        run.cpu.migrate_disabled -= 1
    else:
        run.cpu.preempt_count -= 1

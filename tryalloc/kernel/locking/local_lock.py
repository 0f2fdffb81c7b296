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
"""
from __future__ import annotations

from ...errors import LockUsageError
from ..por import ACQUIRE, RELEASE
from ..preempt import IrqFlags, check_flags, local_irq_restore, local_irq_save
from ..report import report_both_inside
from ..sched import event, point, running
from .spinlock import _lock, _unlock, spinlock_t


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
        raise LockUsageError(f"{op}({lock.name}) by {ctx.name}: this CPU's instance is {why} by this context")
    if run.kernel.config.preempt_rt:
        lock._holder[cpu.id] = None
        _unlock(lock._rt_lock[cpu.id], op)
        return
    point(op, lock, (RELEASE, lock))
    ctx.held.remove(lock)
    lock._holder[cpu.id] = None


def local_lock_irqsave(lock: local_lock_t) -> IrqFlags:
    run = running()
    if run.kernel.config.preempt_rt:
        cpu = run.cpu
        flags = IrqFlags(cpu.id, cpu.irqs_disabled)
        cpu.migrate_disabled += 1
        _enter(lock, "local_lock_irqsave")
        return flags
    flags = local_irq_save()
    _enter(lock, "local_lock_irqsave")
    return flags


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

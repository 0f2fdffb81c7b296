"""``localtry_lock_t``: the per-CPU try lock of v7-v9, as 6.15-rc1 shipped it (release ``"6.15-rc1"``).

Sebastian Andrzej Siewior's "locking/local_lock: Introduce localtry_lock_t" replaced patch 3 in v7
(https://lore.kernel.org/r/20250212174705.44492-1-alexei.starovoitov@gmail.com; applied as
0aaddfb06882), and Vlastimil Babka added ``localtry_trylock`` for slab sheaves in the v8 review
(https://lore.kernel.org/r/efc30cf9-8351-4889-8245-cc4a6893ebf4@suse.cz; v9).  6.15-rc2 took it back
out for the ``local_trylock_t`` type of :mod:`.local_lock` (51339d99c013, S9.4.1): the ``localtry_``
names read as "try lock" even where they spin.

!PREEMPT_RT (S9.1.1): a separate type holding a ``local_lock_t`` ``llock`` and a per-CPU
``acquired`` word; every ``localtry_lock*`` takes ``llock`` then sets ``acquired``, every
``localtry_unlock*`` clears it and then releases.  ``localtry_trylock_irqsave`` (S9.1.2) disables
interrupts and succeeds by setting ``acquired`` when it was 0, else restores them and fails;
``localtry_trylock`` (S9.2.1) does the same with preemption instead of interrupts.  PREEMPT_RT: the
type is the per-CPU ``spinlock_t`` of a ``local_lock_t`` and has no ``acquired``; both trylocks fail
at once in NMI or hard-IRQ, else disable migration and ``spin_trylock`` this CPU's lock (the irqsave
form returns flags "0"), and ``localtry_lock_irq`` is the plain ``local_lock``, interrupts left on
(S9.1.3).  C returns a bool from the trylocks and writes ``flags`` through the macro; the model returns
the flags (or ``True``) on success and ``None`` on failure.  The module exists from level 6.15, whose
release 6.15-rc1 uses it for memcg's stock (:mod:`tryalloc.mm.memcontrol`).
"""
from __future__ import annotations

# @since 6.15
from ..context import HARDIRQ_MASK, NMI_MASK
from ..por import TRYLOCK
from ..preempt import IrqFlags, check_flags, local_irq_disable, local_irq_enable, local_irq_restore, local_irq_save
from ..sched import declare_ops, event, point, running
from .local_lock import (
    _enter,
    _leave,
    _try_acquired,
    local_lock,
    local_lock_irqsave,
    local_lock_t,
    local_unlock,
    local_unlock_irqrestore,
)
from .spinlock import _trylock

declare_ops("localtry_lock_irq", "localtry_unlock_irq", "localtry_trylock", "localtry_trylock_irqsave")


class localtry_lock_t:
    """``localtry_lock_t``: ``llock`` (a :class:`~.local_lock.local_lock_t`) and, per CPU, ``acquired``
    (!RT only: 1 while a context of that CPU holds the lock)."""

    def __init__(self, name: str, nr_cpus: int):
        self.llock = local_lock_t(name, nr_cpus)
        self.name = name
        self.acquired = [0] * nr_cpus

    def holder(self, cpu: int):
        return self.llock.holder(cpu)

    def __repr__(self) -> str:
        return f"<localtry_lock_t {self.name}: acquired {self.acquired}>"


def _acquired(lt: localtry_lock_t, value: int) -> None:
    run = running()
    if not run.kernel.config.preempt_rt:  # on RT the type has no acquired word
        lt.acquired[run.cpu.id] = value


def localtry_lock(lt: localtry_lock_t) -> None:
    local_lock(lt.llock)
    _acquired(lt, 1)


def localtry_unlock(lt: localtry_lock_t) -> None:
    _acquired(lt, 0)
    local_unlock(lt.llock)


def localtry_lock_irq(lt: localtry_lock_t) -> None:
    """!RT: interrupts off, then the lock; RT: the plain ``local_lock`` (migration off, interrupts on)."""
    run = running()
    if run.kernel.config.preempt_rt:
        run.cpu.migrate_disabled += 1
    else:
        local_irq_disable()
    _enter(lt.llock, "localtry_lock_irq")
    _acquired(lt, 1)


def localtry_unlock_irq(lt: localtry_lock_t) -> None:
    _acquired(lt, 0)
    _leave(lt.llock, "localtry_unlock_irq")
    run = running()
    if run.kernel.config.preempt_rt:
        run.cpu.migrate_disabled -= 1
    else:
        local_irq_enable()


def localtry_lock_irqsave(lt: localtry_lock_t) -> IrqFlags:
    flags = local_lock_irqsave(lt.llock)
    _acquired(lt, 1)
    return flags


def localtry_unlock_irqrestore(lt: localtry_lock_t, flags: IrqFlags) -> None:
    check_flags(flags)
    _acquired(lt, 0)
    local_unlock_irqrestore(lt.llock, flags)


def _try(lt: localtry_lock_t, op: str) -> bool:
    """The common part of both trylocks once interrupts or preemption are off (!RT) or migration is
    off (RT): take this CPU's lock if it is free, recording a *try* acquisition for lockdep."""
    run = running()
    cpu = run.cpu
    llock = lt.llock
    if run.kernel.config.preempt_rt:
        if not _trylock(llock._rt_lock[cpu.id], op):
            return False
        llock._holder[cpu.id] = cpu.stack[-1]
        return True
    point(op, llock, (TRYLOCK, llock))
    if lt.acquired[cpu.id]:
        event("trylock-failed", llock)
        return False
    ctx = cpu.stack[-1]
    lt.acquired[cpu.id] = 1
    _try_acquired(run, llock, ctx)
    return True


def _rt_refuses(lt: localtry_lock_t) -> bool:
    run = running()
    if run.kernel.config.preempt_rt and run.cpu.preempt_count & (NMI_MASK | HARDIRQ_MASK):
        event("trylock-failed", lt.llock)
        return True
    return False


def localtry_trylock_irqsave(lt: localtry_lock_t) -> IrqFlags | None:
    """The saved flags on success, ``None`` on failure (S9.1.2)."""
    if _rt_refuses(lt):
        return None
    run = running()
    cpu = run.cpu
    if run.kernel.config.preempt_rt:
        cpu.migrate_disabled += 1
        if _try(lt, "localtry_trylock_irqsave"):
            return cpu.saved_flags[False]
        cpu.migrate_disabled -= 1
        return None
    flags = local_irq_save()
    if _try(lt, "localtry_trylock_irqsave"):
        return flags
    local_irq_restore(flags)
    return None


def localtry_trylock(lt: localtry_lock_t) -> bool | None:
    """``True`` on success, ``None`` on failure; preemption (RT: migration) stays off while held, and
    interrupts are left alone (S9.2.1).  Released with :func:`localtry_unlock`."""
    if _rt_refuses(lt):
        return None
    run = running()
    cpu = run.cpu
    rt = run.kernel.config.preempt_rt
    if rt:
        cpu.migrate_disabled += 1
    else:
        cpu.preempt_count += 1
    if _try(lt, "localtry_trylock"):
        return True
    if rt:
        cpu.migrate_disabled -= 1
    else:
        cpu.preempt_count -= 1
    return None
# @end

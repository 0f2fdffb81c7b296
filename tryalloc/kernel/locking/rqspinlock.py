"""``rqspinlock_t``, the resilient queued spinlock, reduced to what the BPF arena needs.

Kumar Kartikeya Dwivedi's resilient spinlock (``kernel/bpf/rqspinlock.c``, merged for 6.15,
https://elixir.bootlin.com/linux/v6.15/source/kernel/bpf/rqspinlock.c) is a raw spinlock whose acquire
can fail: ``raw_res_spin_lock_irqsave`` returns 0 with the lock held, or an error with nothing held,
when it detects a deadlock (``-EDEADLK``) or when its wait times out (``-ETIMEDOUT``).  The caller must
check and back off.  That is what lets code that may run in NMI take it: the NMI that interrupted the
holder on its own CPU gets ``-EDEADLK`` at once instead of spinning forever.

Where the model differs:

* Detection is the AA case only: the lock is held on this CPU (by this context or one it interrupted).
  The kernel also looks for ABBA cycles through the locks each CPU holds; the model's arena holds one
  such lock at a time, so nothing here needs that check.
* A waiter on a lock another CPU holds waits (is not runnable) until that CPU lets go, as a spinning
  waiter does, then tries again; the log shows each wait as ``res_spin_wait``, not the ``spin`` of a
  plain acquire, because this wait has a bound.  The kernel's bound is time (``RES_DEF_TIMEOUT``, a
  quarter of a second of spinning); the model's is a count: after :data:`RES_SPIN_TRIES` tries that
  each found the lock taken, the acquire gives up with ``-ETIMEDOUT``.  A holder that never let go
  would leave the waiter waiting: the scheduler reports that as a deadlock across CPUs instead of
  timing out, which makes such a case visible rather than hiding it.
* No queue (the kernel's is the qspinlock MCS queue) and no lockdep class checks of its own.
* C writes the flags through a macro argument; here the call returns ``(ret, flags)``, ``flags``
  being ``None`` when ``ret`` is an error (interrupts are then as they were).
"""
from __future__ import annotations

from ...errors import LockUsageError
from ..por import RELEASE, TRYLOCK
from ..preempt import IrqFlags, check_flags, local_irq_restore, local_irq_save
from ..sched import declare_ops, point, running, wait_for

declare_ops("raw_res_spin_lock", "raw_res_spin_unlock", "res_spin_wait", "res_spin_deadlock",
            "res_spin_timeout", "acquired")

#: ``-EDEADLK``: the lock is held on this CPU, by the caller or by a context the caller interrupted.
EDEADLK = 35
#: ``-ETIMEDOUT``: the holder on another CPU did not let go in time.
ETIMEDOUT = 110
#: How many times a waiter tries before it gives up: the model's stand-in for ``RES_DEF_TIMEOUT``.
RES_SPIN_TRIES = 4


class rqspinlock_t:
    """A resilient spinlock: ``owner`` is the context holding it, ``None`` when free."""

    sleeps_on_rt = False  # a raw lock: it spins on PREEMPT_RT too

    def __init__(self, name: str):
        self.name = name
        self.cls = name
        self.owner = None
        self.shadowed: list = []  # what the scheduler clears when it unwinds a run, as for raw spinlocks

    def __repr__(self) -> str:
        return f"<rqspinlock_t {self.name}: {self.owner.name if self.owner is not None else 'free'}>"


def _give_up(run, lock, flags: IrqFlags, op: str, err: int) -> tuple[int, None]:
    run.log(op, lock)
    local_irq_restore(flags)
    return err, None


def raw_res_spin_lock_irqsave(lock: rqspinlock_t) -> tuple[int, IrqFlags | None]:
    """Disable interrupts and take ``lock``: ``(0, flags)``, or ``(-EDEADLK, None)`` when it is held on
    this CPU, or ``(-ETIMEDOUT, None)`` after :data:`RES_SPIN_TRIES` tries while another CPU holds it."""
    if not isinstance(lock, rqspinlock_t):
        raise LockUsageError(f"raw_res_spin_lock_irqsave: {lock!r} is not an rqspinlock_t")
    flags = local_irq_save()
    run = running()
    cpu = run.cpu
    for _ in range(RES_SPIN_TRIES):
        point("raw_res_spin_lock", lock, (TRYLOCK, lock))
        owner = lock.owner
        if owner is None:
            ctx = cpu.stack[-1]
            lock.owner = ctx
            ctx.held.append(lock)
            cpu.preempt_count += 1  # held with preemption disabled, as a raw spinlock
            run.log("acquired", lock)
            return 0, flags
        if owner.cpu is cpu:
            return _give_up(run, lock, flags, "res_spin_deadlock", -EDEADLK)
        run.log("res_spin_wait", lock)
        wait_for(lock)
    return _give_up(run, lock, flags, "res_spin_timeout", -ETIMEDOUT)


def raw_res_spin_unlock_irqrestore(lock: rqspinlock_t, flags: IrqFlags) -> None:
    """Release ``lock`` and restore the interrupt state ``flags`` saved when it was taken."""
    check_flags(flags)
    run = running()
    ctx = run.cpu.stack[-1]
    if not isinstance(lock, rqspinlock_t) or lock.owner is not ctx:
        raise LockUsageError(f"raw_res_spin_unlock_irqrestore({getattr(lock, 'name', lock)!r}) by {ctx.name}: "
                             f"it does not hold it")
    point("raw_res_spin_unlock", lock, (RELEASE, lock))
    ctx.held.remove(lock)
    lock.owner = None
    run.cpu.preempt_count -= 1
    local_irq_restore(flags)

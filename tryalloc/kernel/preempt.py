"""Context predicates and the per-CPU preemption, interrupt and bottom-half switches.

Mirrors ``include/linux/preempt.h``, ``include/linux/irqflags.h`` and ``include/linux/bottom_half.h``.
Each reads or changes the state of the CPU running the caller.  ``local_irq_save()`` returns an
:class:`IrqFlags` value instead of writing to a ``flags`` variable passed by name, as Python cannot.
"""
from __future__ import annotations

from ..errors import ContextError, InvalidContextError
from . import sched
from .context import (
    HARDIRQ_MASK,
    NMI_MASK,
    PREEMPT_MASK,
    SOFTIRQ_DISABLE_OFFSET,
    SOFTIRQ_MASK,
    SOFTIRQ_OFFSET,
    IrqFlags,
)
from .report import compose


def preempt_count() -> int:
    return sched._run.cpu.preempt_count


def in_nmi() -> bool:
    return bool(sched._run.cpu.preempt_count & NMI_MASK)


def in_hardirq() -> bool:
    """True in a hard interrupt *or* an NMI, as in the kernel (an NMI also adds HARDIRQ_OFFSET)."""
    return bool(sched._run.cpu.preempt_count & HARDIRQ_MASK)


def in_serving_softirq() -> bool:
    return bool(sched._run.cpu.preempt_count & SOFTIRQ_OFFSET)


def in_task() -> bool:
    return not sched._run.cpu.preempt_count & (NMI_MASK | HARDIRQ_MASK | SOFTIRQ_OFFSET)


def in_interrupt() -> bool:
    return bool(sched._run.cpu.preempt_count & (NMI_MASK | HARDIRQ_MASK | SOFTIRQ_MASK))


def irqs_disabled() -> bool:
    return sched._run.cpu.irqs_disabled


def preemptible() -> bool:
    cpu = sched._run.cpu
    return cpu.preempt_count == 0 and not cpu.irqs_disabled


def smp_processor_id() -> int:
    return sched._run.cpu.id


def preempt_disable() -> None:
    sched._run.cpu.preempt_count += 1


def preempt_enable() -> None:
    cpu = sched._run.cpu
    if not cpu.preempt_count & PREEMPT_MASK:
        raise ContextError(f"preempt_enable() on CPU{cpu.id} without a matching preempt_disable()")
    cpu.preempt_count -= 1


def migrate_disable() -> None:
    sched._run.cpu.migrate_disabled += 1


def migrate_enable() -> None:
    cpu = sched._run.cpu
    if not cpu.migrate_disabled:
        raise ContextError(f"migrate_enable() on CPU{cpu.id} without a matching migrate_disable()")
    cpu.migrate_disabled -= 1


def local_bh_disable() -> None:
    sched._run.cpu.preempt_count += SOFTIRQ_DISABLE_OFFSET


def local_bh_enable() -> None:
    cpu = sched._run.cpu
    if (cpu.preempt_count & SOFTIRQ_MASK) < SOFTIRQ_DISABLE_OFFSET:
        raise ContextError(f"local_bh_enable() on CPU{cpu.id} without a matching local_bh_disable()")
    cpu.preempt_count -= SOFTIRQ_DISABLE_OFFSET


def local_irq_save() -> IrqFlags:
    cpu = sched._run.cpu
    flags = cpu.saved_flags[cpu.irqs_disabled]
    cpu.irqs_disabled = True
    return flags


def check_flags(flags: IrqFlags) -> None:
    """Refuse flags that are not an :class:`IrqFlags` saved on this CPU (before anything changes)."""
    cpu = sched._run.cpu
    if not isinstance(flags, IrqFlags):
        raise ContextError(f"expected the IrqFlags returned by an *_irqsave() call, got {flags!r}")
    if flags.cpu != cpu.id:
        raise ContextError(f"restoring on CPU{cpu.id} interrupt flags saved on CPU{flags.cpu}")


def local_irq_restore(flags: IrqFlags) -> None:
    check_flags(flags)
    sched._run.cpu.irqs_disabled = flags.disabled


def local_irq_disable() -> None:
    sched._run.cpu.irqs_disabled = True


def local_irq_enable() -> None:
    sched._run.cpu.irqs_disabled = False


def might_sleep(what) -> None:
    """``might_sleep()`` (``include/linux/kernel.h``): code that may sleep was reached; in atomic
    context (preemption or interrupts disabled, or any interrupt context) that is an invalid-context
    report.  ``what`` names the sleeper; it may be a callable, called only if a report is made, so
    hot paths need not format a message they will not use."""
    run = sched._run
    cpu = run.cpu
    if cpu.preempt_count or cpu.irqs_disabled:
        what = what() if callable(what) else what
        body = (f"{cpu.top.name} ({cpu.path()}) may sleep in {what}, but in_atomic(): "
                f"{int(bool(cpu.preempt_count))}, irqs_disabled(): {int(cpu.irqs_disabled)}, "
                f"preempt_count={cpu.preempt_count:#x}")
        run.kernel.detect("invalid_context", InvalidContextError(
            compose(f"{what} in atomic context", body, "", run.cpus, run.events)))

"""CPUs as stacks of execution contexts, and the kernel's context predicates.

A CPU runs one task; interrupts arrive on top of whatever runs and return to it, so each CPU is a
stack: ``task`` at the bottom, then possibly ``softirq``, ``hardirq`` and ``nmi`` frames.  The state
the kernel keeps per CPU is kept here the same way:

* ``preempt_count`` with the kernel's bit layout (``include/linux/preempt.h``): preemption depth in
  bits 0-7, softirq in 8-15 (``SOFTIRQ_OFFSET`` while serving, ``SOFTIRQ_DISABLE_OFFSET`` per
  ``local_bh_disable``), hardirq nesting in 16-19 and NMI nesting in 20-23;
* the interrupt flag (``irqs_disabled()``), saved and restored around every interrupt;
* ``migrate_disable`` depth of the running task (PREEMPT_RT pins tasks instead of disabling preemption).

The predicates (``in_nmi``, ``in_hardirq``, ``in_task`` ...) read the *running* CPU, as in the kernel.
"""
from __future__ import annotations

from typing import NamedTuple

from ..errors import ContextError

PREEMPT_OFFSET = 1 << 0
SOFTIRQ_OFFSET = 1 << 8
SOFTIRQ_DISABLE_OFFSET = 2 * SOFTIRQ_OFFSET
HARDIRQ_OFFSET = 1 << 16
NMI_OFFSET = 1 << 20
PREEMPT_MASK = 0xFF
SOFTIRQ_MASK = 0xFF << 8
HARDIRQ_MASK = 0xF << 16
NMI_MASK = 0xF << 20

TASK, SOFTIRQ, HARDIRQ, NMI = "task", "softirq", "hardirq", "nmi"
#: The interrupt kinds that can be injected, lowest priority first.
INTERRUPT_KINDS = (SOFTIRQ, HARDIRQ, NMI)
#: What entering each context adds to preempt_count (an NMI also counts as hardirq, as in the kernel).
_ENTRY_OFFSET = {SOFTIRQ: SOFTIRQ_OFFSET, HARDIRQ: HARDIRQ_OFFSET, NMI: NMI_OFFSET + HARDIRQ_OFFSET}


class Task:
    """A task (``struct task_struct``): what ``current`` points to in task context.

    Subsystems keep their per-task state here (``active_memcg`` for memcg ...).
    """

    __slots__ = ("name", "cpu", "active_memcg", "flags")

    def __init__(self, name: str, cpu: int):
        self.name = name
        self.cpu = cpu
        self.active_memcg = None
        self.flags = 0

    def __repr__(self) -> str:
        return f"<task {self.name} on CPU{self.cpu}>"


class Context:
    """One frame of a CPU's stack: the task, or an interrupt running on top of it.

    ``held`` lists the locks this context acquired and still holds, innermost last; lockdep-lite
    keeps its dependency chains per context, as the kernel's lockdep keeps them per irq context.
    """

    __slots__ = ("kind", "cpu", "depth", "saved_irqs_disabled", "saved_preempt_count", "held", "waiting",
                 "announced")

    def __init__(self, kind: str, cpu: CPU, depth: int, saved_irqs_disabled: bool = False,
                 saved_preempt_count: int = 0):
        self.kind = kind
        self.cpu = cpu
        self.depth = depth
        self.saved_irqs_disabled = saved_irqs_disabled
        self.saved_preempt_count = saved_preempt_count
        self.held: list = []
        self.waiting = None  # the lock this context spins or sleeps on; an interrupt on top still runs
        self.announced = None  # what its next step touches, for partial-order reduction (kernel/por.py)

    @property
    def name(self) -> str:
        return f"CPU{self.cpu.id}/{self.kind}" if self.depth else f"CPU{self.cpu.id}/{self.cpu.task.name}"

    def __repr__(self) -> str:
        return f"<{self.name}>"


class IrqFlags(NamedTuple):
    """The saved interrupt state that ``*_irqsave`` returns and ``*_irqrestore`` takes back.

    ``cpu`` records where it was saved: restoring it on another CPU is a usage error.  (A named tuple:
    every irqsave makes one, and a frozen dataclass costs several times more to build.)  A saved
    state is a value, so each CPU builds its two once (``CPU.saved_flags``) and hands them out.
    """

    cpu: int
    disabled: bool


class CPU:
    """One simulated CPU: an id, its node, its task and its stack of contexts."""

    def __init__(self, cpu_id: int, node: int = 0, task_name: str | None = None):
        self.id = cpu_id
        self.node = node
        self.task = Task(task_name or f"task{cpu_id}", cpu_id)
        self.stack: list[Context] = [Context(TASK, self, 0)]
        self.preempt_count = 0
        self.irqs_disabled = False
        self.saved_flags = (IrqFlags(cpu_id, False), IrqFlags(cpu_id, True))  # by irqs_disabled
        self.migrate_disabled = 0
        self.path_str = TASK  # path(), kept current for the event log's sake

    @property
    def waiting(self):
        """The lock the running context waits for (``None`` if it runs): a CPU whose task spins can
        still take an interrupt, and the interrupt runs."""
        return self.stack[-1].waiting

    @property
    def top(self) -> Context:
        """The context running now on this CPU."""
        return self.stack[-1]

    def path(self) -> str:
        """The stack as text, bottom first: ``task>hardirq>nmi``."""
        return self.path_str

    # -- interrupts -------------------------------------------------------------------------
    def can_take(self, kind: str) -> str | None:
        """Why an interrupt of ``kind`` cannot arrive now, or ``None`` if it can.

        Hard interrupts need interrupts enabled; a softirq runs only outside hardirq/NMI with bottom
        halves and interrupts enabled and not while another softirq is served; an NMI arrives
        anywhere except inside another NMI.
        """
        pc = self.preempt_count
        if kind == NMI:
            return "already in NMI" if pc & NMI_MASK else None
        if kind == HARDIRQ:
            if self.irqs_disabled:
                return "interrupts are disabled"
            return None
        if kind == SOFTIRQ:
            if pc & (NMI_MASK | HARDIRQ_MASK):
                return "in hardirq or NMI"
            if self.irqs_disabled:
                return "interrupts are disabled"
            if pc & SOFTIRQ_MASK:
                return "bottom halves are disabled or a softirq is being served"
            return None
        raise ContextError(f"unknown interrupt kind {kind!r}; known: {', '.join(INTERRUPT_KINDS)}")

    def enter(self, kind: str) -> Context:
        """Push an interrupt frame (the caller checked :meth:`can_take`)."""
        ctx = Context(kind, self, len(self.stack), self.irqs_disabled, self.preempt_count)
        self.stack.append(ctx)
        self.path_str = f"{self.path_str}>{kind}"
        self.preempt_count += _ENTRY_OFFSET[kind]
        # hard interrupts and NMIs run with interrupts off; a softirq runs with them on
        self.irqs_disabled = kind != SOFTIRQ
        return ctx

    def leave(self, ctx: Context) -> None:
        """Pop the interrupt frame ``ctx`` and restore what it interrupted."""
        assert self.stack[-1] is ctx and ctx.depth > 0
        self.stack.pop()
        self.path_str = self.path_str.rpartition(">")[0]
        self.irqs_disabled = ctx.saved_irqs_disabled
        self.preempt_count = ctx.saved_preempt_count

    def __repr__(self) -> str:
        return f"<CPU{self.id} {self.path()} pc={self.preempt_count:#x} irqs={'off' if self.irqs_disabled else 'on'}>"

"""Reading a run's event log for the book's pictures and tables.

An event is the tuple ``(index, cpu, "task>nmi", op, obj)`` of ``Kernel.events`` (and
``KernelReport.events``).  A context logs the operation it is *about* to do at a scheduling point
(``spin_unlock_irqrestore zone->lock``: the lock is still held); the operation takes effect when that
context runs again.  The words for one event are the log's own,
:meth:`Event.describe <tryalloc.kernel.events.Event.describe>`, in reports and pictures alike.
"""
from __future__ import annotations

from ..errors import InvalidArgumentError

#: The outcome label of each kernel report a run can end in (others keep their class name).
REPORT_OUTCOMES = {"DeadlockError": "deadlock", "PerCpuCorruptionError": "per-CPU corruption"}


def outcome_of_report(report) -> str:
    """``"deadlock"``, ``"per-CPU corruption"`` (see :data:`REPORT_OUTCOMES`) or the report's class name."""
    name = type(report).__name__
    return REPORT_OUTCOMES.get(name, name)


def lock_trail(events, ctx: str) -> str:
    """What the contexts of kind ``ctx`` ("nmi", "task" ...) did with locks, from an event log:
    ``"spin_trylock(pcp->lock[cpu0]) failed → spin_trylock_irqsave(zone->lock) failed → llist"``
    ("llist": a page deferred to ``zone->trylock_free_pages``); ``"no lock"`` when they took none."""
    steps = []
    for ev in events:
        if not (isinstance(ev, tuple) and len(ev) == 5):
            raise InvalidArgumentError(f"lock_trail: not an event tuple (index, cpu, path, op, obj): {ev!r}")
        _, _, path, op, obj = ev
        if not path.endswith(ctx):
            continue
        if op == "trylock-failed":
            steps[-1] += " failed"
        elif op == "deferred-free":
            steps.append("llist")
        elif "lock" in op and not op.startswith(("spin_unlock", "raw_spin_unlock", "llist", "trace:")):
            steps.append(f"{op}({obj})")
    return " → ".join(steps) or "no lock"

"""Kernel-style report text: the pieces every detector's message shares.

The layout follows lockdep's splats (``kernel/locking/lockdep.c``: ``print_usage_bug``,
``print_deadlock_bug``, ``print_circular_bug``): a rule line, the title, a line naming the
offender, the "Possible unsafe locking scenario" diagram, then the state of every CPU and the last
events that led there (each worded with what its context was about to do and the locks it held).
"""
from __future__ import annotations

from .events import EventLog

RULE = "=" * 60


def lock_name(lock) -> str:
    return getattr(lock, "name", str(lock))


def held_locks(cpu) -> list[str]:
    """``CPU0/task holds zone->lock`` lines for every lock held on ``cpu``'s stack, bottom first."""
    return [f"    {ctx.name} holds {lock_name(lock)}" for ctx in cpu.stack for lock in ctx.held]


def machine_state(cpus) -> str:
    lines = []
    for cpu in cpus:
        wants = f", waiting for {lock_name(cpu.waiting)}" if getattr(cpu, "waiting", None) else ""
        irqs = "off" if cpu.irqs_disabled else "on"
        lines.append(f"  CPU{cpu.id}: {cpu.path()} (preempt_count={cpu.preempt_count:#x}, irqs {irqs}{wants})")
        lines.extend(held_locks(cpu) or ["    no locks held"])
    return "\n".join(lines)


def last_events(events, n: int = 12) -> str:
    """The last ``n`` events, one line each, worded as :meth:`~tryalloc.kernel.events.Event.describe`
    words them: an announced operation is "about to" happen, with the locks its context holds."""
    if not events:
        return "  (no events recorded)"
    return "\n".join("  " + line for line in EventLog.of(events).lines(n))


def compose(headline: str, body: str, scenario: str, cpus, events) -> str:
    """The whole report below the title."""
    parts = [RULE, headline, "-" * 60, body.rstrip(), ""]
    if scenario:
        parts += ["other info that might help us debug this:", " Possible unsafe locking scenario:", "",
                  scenario.rstrip(), ""]
    parts += ["machine state:", machine_state(cpus), "", "last events:", last_events(events)]
    return "\n".join(parts)


def interrupt_scenario(cpu_id: int, outer: str, kind: str, inner: str, verdict: str = "DEADLOCK") -> str:
    """The two-level diagram of an interrupt re-entering a lock on one CPU, and what follows."""
    return (f"       CPU{cpu_id}\n       ----\n  {outer};\n  <Interrupt: {kind}>\n    {inner};\n\n"
            f" *** {verdict} ***")


def report_both_inside(run, ctx, inside, lock, op: str, why: str, verdict: str) -> None:
    """The ``percpu`` detector's report: ``ctx`` entered ``lock``'s section while ``inside`` (another
    context of the same CPU) is still in it; ``why`` says what failed to keep it out."""
    from ..errors import PerCpuCorruptionError

    cpu = run.cpu
    body = f"{ctx.name} ({cpu.path()}) entered {lock.name} on CPU{cpu.id} while {inside.name} is inside it.\n{why}"
    scen = interrupt_scenario(cpu.id, f"{op}({lock.name})", ctx.kind, f"{op}({lock.name})", verdict)
    run.kernel.detect("percpu", PerCpuCorruptionError(
        compose(f"{ctx.name} and {inside.name} both inside {lock.name}", body, scen, run.cpus, run.events)))

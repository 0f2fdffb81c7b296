"""Lockdep-lite: the kernel lock validator's main predictions, per lock class.

What it checks, after ``kernel/locking/lockdep.c`` and ``Documentation/locking/lockdep-design.rst``:

* **recursive locking**: a context takes a class already held on its CPU's stack;
* **inconsistent irq usage**: a class taken in hard-IRQ (``IN-HARDIRQ-W``) and also held with
  interrupts enabled (``HARDIRQ-ON-W``), and the softirq pair likewise;
* **NMI use**: a blocking acquire in NMI of a class already used outside NMI
  (``{INITIAL USE} -> {IN-NMI}``, lockdep's ``verify_lock_unused``); NMI acquisitions are otherwise
  not tracked, as the kernel's lockdep ignores NMI context;
* **circular dependencies**: an edge A -> B is recorded when B is acquired while A is held in the
  same context; a new edge that closes a cycle is reported.

Trylocks add no dependency and do not mark "used in irq" (they cannot wait), but a trylock taken with
interrupts on still marks ``HARDIRQ-ON-W``, as in the kernel's ``mark_usage()``.
The reports go through ``Kernel.detect("lockdep", ...)``: raised, recorded, or ignored.
"""
from __future__ import annotations

from ...errors import LockdepError
from .. import sched as _sched
from ..context import HARDIRQ, NMI, SOFTIRQ, SOFTIRQ_MASK
from ..report import compose

_CONFLICT = {"IN-HARDIRQ-W": "HARDIRQ-ON-W", "HARDIRQ-ON-W": "IN-HARDIRQ-W",
             "IN-SOFTIRQ-W": "SOFTIRQ-ON-W", "SOFTIRQ-ON-W": "IN-SOFTIRQ-W"}


#: The usage marks of an acquisition, by (context kind, trylock, irqs off, softirqs off).
_MARKS: dict[tuple, tuple[str, ...]] = {}


class Lockdep:
    """The validator's state for one machine: usage marks and the dependency graph."""

    def __init__(self, kernel):
        self.kernel = kernel
        self.usage: dict[str, dict[str, str]] = {}  # class -> mark -> where it was first seen
        self.deps: dict[str, dict[str, str]] = {}  # class -> class taken after it -> where
        #: (class, kind, trylock, irqs off, softirqs off) whose marks are all in ``usage`` already:
        #: such an acquisition has nothing to mark, so the mark loop is skipped (most of them, in a run).
        self.recorded: set[tuple] = set()

    # -- hooks called by the lock implementations --------------------------------------------
    def acquire(self, lock, ctx, *, trylock: bool) -> None:
        cls = lock.cls
        if ctx.kind == NMI:
            if not trylock and self.usage.get(cls):
                self._report_nmi(lock, ctx, self._where(ctx))
            return
        if not trylock:
            for other in ctx.cpu.stack:
                for held in other.held:
                    if held.cls == cls:
                        self._report_recursive(lock, ctx, other, held)
                        return
        cpu = ctx.cpu
        seen = (cls, ctx.kind, trylock, cpu.irqs_disabled, bool(cpu.preempt_count & SOFTIRQ_MASK))
        if seen not in self.recorded:
            marks = self.usage.get(cls)
            if marks is None:
                marks = self.usage[cls] = {}
            for mark in self._marks(ctx, trylock):
                if mark in marks:
                    continue
                marks[mark] = self._where(ctx)
                bad = _CONFLICT.get(mark)
                if bad in marks:
                    self._report_usage(lock, ctx, mark, bad, marks[bad])
                    return
            self.recorded.add(seen)
        if not trylock and ctx.held:
            where = self._where(ctx)
            for held in ctx.held:
                self._add_dep(held, lock, ctx, where)

    def release(self, lock, ctx) -> None:
        """Nothing to check: the lock implementations already refuse a release by a non-owner."""

    # -- internals -------------------------------------------------------------------------
    def _run(self):
        return _sched._run

    def _where(self, ctx) -> str:
        run = _sched._run
        return f"{ctx.name} at event #{len(run.events) - 1}" if run else ctx.name

    def _marks(self, ctx, trylock: bool) -> tuple[str, ...]:
        cpu = ctx.cpu
        key = (ctx.kind, trylock, cpu.irqs_disabled, bool(cpu.preempt_count & SOFTIRQ_MASK))
        marks = _MARKS.get(key)
        if marks is None:
            found = ["INITIAL USE"]  # any use outside NMI: what verify_lock_unused() looks for
            if not trylock and ctx.kind == HARDIRQ:
                found.append("IN-HARDIRQ-W")
            if not trylock and ctx.kind == SOFTIRQ:
                found.append("IN-SOFTIRQ-W")
            if not cpu.irqs_disabled:
                found.append("HARDIRQ-ON-W")
                if not cpu.preempt_count & SOFTIRQ_MASK and ctx.kind != HARDIRQ:
                    found.append("SOFTIRQ-ON-W")
            marks = _MARKS[key] = tuple(found)
        return marks

    def _add_dep(self, prev, nxt, ctx, where: str) -> None:
        if prev.cls == nxt.cls:
            return
        edges = self.deps.setdefault(prev.cls, {})
        if nxt.cls in edges:
            return
        path = self._path(nxt.cls, prev.cls)
        edges[nxt.cls] = where
        if path:
            self._report_circular(prev, nxt, ctx, path)

    def _path(self, src: str, dst: str) -> list[str] | None:
        """A dependency chain src -> ... -> dst, if one exists (depth-first)."""
        stack, seen = [(src, [src])], {src}
        while stack:
            node, chain = stack.pop()
            if node == dst:
                return chain
            for nxt in self.deps.get(node, ()):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, chain + [nxt]))
        return None

    def _emit(self, title: str, headline: str, body: str, scenario: str) -> None:
        run = self._run()
        cpus = self.kernel.cpus
        events = run.events if run else []
        self.kernel.detect("lockdep", LockdepError(compose(headline, body, scenario, cpus, events), title=title))

    def _report_recursive(self, lock, ctx, holder_ctx, held) -> None:
        body = (f"{ctx.name} is trying to acquire lock:\n    {lock.name}\n"
                f"but {holder_ctx.name} on the same CPU already holds lock:\n    {held.name}\n"
                f"(both of class {lock.cls})")
        cpu = ctx.cpu.id
        scen = f"       CPU{cpu}\n       ----\n  lock({held.cls});\n  lock({lock.cls});\n\n *** DEADLOCK ***\n\n" \
               " May be due to missing lock nesting notation"
        self._emit("WARNING: possible recursive locking detected", f"{ctx.name} takes {lock.cls} twice", body, scen)

    def _report_usage(self, lock, ctx, mark: str, bad: str, bad_where: str) -> None:
        body = (f"inconsistent {{{bad}}} -> {{{mark}}} usage.\n"
                f"{ctx.name} takes {lock.name} with {mark}, but it was taken with {bad} at {bad_where}.\n"
                f"An interrupt arriving while the lock is held with interrupts enabled would take it again.")
        kind = "hardirq" if "HARDIRQ" in mark else "softirq"
        scen = (f"       CPU{ctx.cpu.id}\n       ----\n  lock({lock.cls});\n  <Interrupt: {kind}>\n"
                f"    lock({lock.cls});\n\n *** DEADLOCK ***")
        self._emit("WARNING: inconsistent lock state", f"inconsistent {{{bad}}} -> {{{mark}}} usage", body, scen)

    def _report_nmi(self, lock, ctx, where: str) -> None:
        seen = ", ".join(f"{m} at {w}" for m, w in self.usage[lock.cls].items())
        body = (f"inconsistent {{INITIAL USE}} -> {{IN-NMI}} usage.\n{ctx.name} takes {lock.name} with a "
                f"blocking acquire in NMI, but the class is used outside NMI ({seen}).\n"
                "Nothing masks an NMI, so it can arrive while that holder is inside the section.")
        scen = (f"       CPU{ctx.cpu.id}\n       ----\n  lock({lock.cls});\n  <Interrupt: nmi>\n"
                f"    lock({lock.cls});\n\n *** DEADLOCK ***")
        self._emit("WARNING: inconsistent lock state", "inconsistent {INITIAL USE} -> {IN-NMI} usage", body, scen)

    def _report_circular(self, prev, nxt, ctx, path: list[str]) -> None:
        chain = " --> ".join(path)
        body = (f"{ctx.name} is trying to acquire lock:\n    {nxt.name}\nbut it already holds lock:\n"
                f"    {prev.name}\nwhich lock already depends on the new lock.\n\nChain exists of:\n  {chain}")
        scen = (f"       CPU0                    CPU1\n       ----                    ----\n"
                f"  lock({prev.cls});\n                               lock({nxt.cls});\n"
                f"                               lock({prev.cls});\n  lock({nxt.cls});\n\n *** DEADLOCK ***")
        self._emit("WARNING: possible circular locking dependency detected",
                   f"{prev.cls} -> {nxt.cls} closes a cycle", body, scen)

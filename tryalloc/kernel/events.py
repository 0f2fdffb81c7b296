"""The event log of a run, and how to read one event: what was about to happen, with which locks held.

A run records every event as a plain tuple ``(index, cpu, path, op, obj)`` (cheap: the log is on the
hot path of searches).  Two kinds of event share the log:

* an *announcement* (a scheduling point, :func:`~tryalloc.kernel.sched.point`): ``op`` is about to
  happen and has **not** happened yet.  ``spin_unlock_irqrestore zone->lock`` means the context still
  holds ``zone->lock``; an interrupt injected at this point runs before the release;
* a *fact* (:func:`~tryalloc.kernel.sched.event`, and the scheduler's own ``start``, ``exit``,
  ``nmi-entry`` ...): it has happened, as ``acquired zone->lock`` or ``trylock-failed zone->lock``.

:class:`EventLog` is the list a run fills (``Kernel.events``, ``RunResult.events``,
``KernelReport.events``).  It remembers which entries are announcements and, only when asked, works
out the locks each event's context held at that moment by walking the log: an ``acquired`` fact adds
the lock, an announced release (an op named ``*unlock*``, the kernel's naming) removes it *after* its
own event, and an interrupt's ``<kind>-entry`` starts a context that holds nothing.  Nothing
descriptive is computed while the run goes on.

A tracepoint's event keeps its :class:`Fields` (``pfn``, ``order``...) beside its tuple, in
``EventLog.fields``, so the tuple stays ``(index, cpu, path, "trace:mm_page_alloc", None)``.

:meth:`EventLog.at` gives one :class:`Event` with those answers (``pending``, ``held``, ``fields``) and
:meth:`Event.describe`, the words reports and pictures label an event with:
``about to spin_unlock_irqrestore zone->lock, still holding it``.
"""
from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

#: What the log shows for a context that holds no lock.
NO_LOCKS = "no locks"

#: Every operation name the model can log; a :class:`~tryalloc.kernel.sched.When` naming another is refused.
EVENT_OPS: set[str] = set()


def declare_ops(*ops: str) -> None:
    """Declare the operation names a module logs (with ``point``, ``event`` or ``Run.log``), beside the
    code that logs them, so a script's trigger with a typo is refused instead of never firing."""
    EVENT_OPS.update(ops)


class Fields(tuple):
    """A tracepoint's fields as ``(name, value)`` pairs, ``pfn`` first (``TP_STRUCT__entry``: the kernel's
    trace record keeps the pfn, not the page), kept by the log and worded only when printed:
    ``pfn=0x40 order=0 migratetype=1`` (``page=NULL`` when the pfn is ``None``, a failed allocation).
    Hashable and compared as the tuple it is."""

    __slots__ = ()

    def get(self, name: str, default=None):
        """The value of field ``name``."""
        for key, value in self:
            if key == name:
                return value
        return default

    def __repr__(self) -> str:
        return " ".join(("page=NULL" if v is None else f"pfn={v:#x}") if k == "pfn" else f"{k}={v}" for k, v in self)

    __str__ = __repr__



def _releases(op: str) -> bool:
    return "unlock" in op


@dataclass(frozen=True)
class Event:
    """One entry of an :class:`EventLog`, with what the log knows around it.

    ``index``, ``cpu``, ``path`` (``task>nmi``), ``op`` and ``obj`` are the tuple's fields; ``pending``
    is true for an announcement (the operation has not happened yet); ``held`` names the locks the
    event's context held at that point, oldest first (an announced release still counts its lock);
    ``fields`` are a tracepoint's (``pfn``, ``order`` ...), ``None`` for other events.
    """

    index: int
    cpu: int
    path: str
    op: str
    obj: object
    pending: bool
    held: tuple[str, ...]
    fields: Fields | None = None

    @property
    def context(self) -> str:
        """The kind of the context the event happened in: ``task``, ``softirq``, ``hardirq``, ``nmi``."""
        return self.path.rpartition(">")[2]

    def action(self) -> str:
        """The operation, worded as pending or done: ``about to spin_lock zone->lock`` or ``acquired zone->lock``."""
        what = self.op if self.obj is None else f"{self.op} {self.obj}"
        if self.fields is not None:
            what = f"{what} {self.fields}"
        return f"about to {what}" if self.pending else what

    def holding(self) -> str:
        """``holds zone->lock, pcp->lock[cpu0]`` or ``holds no locks``."""
        return "holds " + (", ".join(self.held) if self.held else NO_LOCKS)

    def describe(self, short: bool = False) -> str:
        """The event in words, for a log line or a picture's label: the action and the state.

        ``about to spin_unlock_irqrestore zone->lock, still holding it`` (an announced release),
        ``about to spin_lock_irqsave zone->lock; holds no locks``, ``acquired zone->lock; holds zone->lock``.
        ``short`` (a strip's cell) leaves out ``holds no locks``, so a cell names the locks only when
        there are some; every other word is the log's.
        """
        if self.pending and _releases(self.op) and self.obj in self.held:
            others = [name for name in self.held if name != self.obj]
            tail = f" (and {', '.join(others)})" if others else ""
            return f"{self.action()}, still holding it{tail}"
        if short and not self.held:
            return self.action()
        return f"{self.action()}; {self.holding()}"

    def line(self) -> str:
        """The event as a report prints it: ``#3    CPU0 task   <describe()>``."""
        return f"#{self.index:<4} CPU{self.cpu} {self.path:<16} {self.describe()}"


class EventLog(list):
    """The events of one run, in order: a list of ``(index, cpu, path, op, obj)`` tuples.

    It compares and prints as the plain list it is; a tracepoint's fields are kept beside it
    (``fields``, by index) so the tuples stay what every reader of a log expects.  What it adds is lazy: :meth:`at` (one
    :class:`Event`), :meth:`held` and :meth:`pending` for an index, :meth:`lines` for a report.
    ``start`` names the locks each CPU's task already held when the run began (normally none).
    """

    __slots__ = ("_points", "fields", "_start", "_held", "_seen")

    def __init__(self, events=(), *, points=(), start: dict[int, tuple[str, ...]] | None = None):
        super().__init__(events)
        self._points = list(points)  # indices of the announcements, ascending (appended by the run)
        self.fields: dict[int, Fields] = {}  # a tracepoint event's fields, by index (its tuple's obj is None)
        self._start = dict(start or {})
        self._held: list[tuple[str, ...]] = []
        self._seen = 0  # events walked so far by _walk

    @classmethod
    def of(cls, events) -> EventLog:
        """``events`` itself if it is a log; otherwise a log of a plain list of tuples, in which no
        event is known to be an announcement."""
        return events if isinstance(events, EventLog) else cls(events)

    def announce(self, event: tuple) -> None:
        """Append ``event`` as an announcement (the run calls this at a scheduling point)."""
        self._points.append(len(self))
        self.append(event)

    def pending(self, index: int) -> bool:
        """Whether event ``index`` announced an operation that had not happened yet."""
        points = self._points
        i = bisect_left(points, index)
        return i < len(points) and points[i] == index

    def held(self, index: int) -> tuple[str, ...]:
        """The locks event ``index``'s context held at that point, oldest first."""
        if index < 0 or index >= len(self):
            raise IndexError(f"no event {index} in a log of {len(self)}")
        self._walk()
        return self._held[index]

    def at(self, index: int) -> Event:
        """Event ``index`` with its state (``pending``, ``held``)."""
        i, cpu, path, op, obj = self[index]
        return Event(i, cpu, path, op, obj, self.pending(i), self.held(i), self.fields.get(i))

    def lines(self, last: int | None = None) -> list[str]:
        """The log as report lines (:meth:`Event.line`), the ``last`` events only if given."""
        first = 0 if last is None else max(0, len(self) - last)
        return [self.at(i).line() for i in range(first, len(self))]

    def _walk(self) -> None:
        """Work out ``held`` for the events appended since the last walk."""
        if self._seen == len(self):
            return
        held: dict[tuple[int, str], list[str]] = {}
        for cpu, names in self._start.items():
            held[(cpu, "task")] = list(names)
        out: list[tuple[str, ...]] = []
        points = set(self._points)
        for i, cpu, path, op, obj in self:
            mine = held.setdefault((cpu, path), [])
            if op.endswith("-entry") and path.endswith(">" + op[:-6]):
                mine.clear()  # a new interrupt context: it holds nothing yet
            elif op == "acquired":
                mine.append(obj)
            out.append(tuple(mine))
            if i in points and _releases(op) and obj in mine:
                del mine[len(mine) - 1 - mine[::-1].index(obj)]  # released once the context goes on
        self._held = out
        self._seen = len(self)

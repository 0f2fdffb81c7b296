"""Deterministic scheduling of simulated CPUs.

Each CPU's task runs in its own greenlet (a stackful coroutine), so model code stays plain functions
that read like the kernel's.  Before every operation another CPU could observe (a lock acquire, try
or release, an llist step, entering a per-CPU section) the code *announces* it with :func:`point`;
control then returns to the scheduler, which picks the next action:

* ``RUN`` a CPU (the one that just announced, or another: a context switch), or
* inject an interrupt on a CPU where one can arrive; the handler runs to completion nested on top of
  what that CPU was doing, announcing its own points on the way.

The event log (:class:`~tryalloc.kernel.events.EventLog`) records such an announcement as *pending*:
whatever the scheduler runs at that point (an interrupt, another CPU) runs before the operation, and
the log's words say so ("about to spin_unlock zone->lock, still holding it").

A context that spins on a busy lock is simply not runnable until the lock is free.  The sequence of
choices is the schedule; written as a replay string and replayed, it reproduces the run event for
event, because nothing else in the model is nondeterministic (no threads, no clocks, no hashing of
addresses).

The strategies here pick one schedule: :class:`Serial` (the first option every time),
:class:`Replay`, :class:`Random` (seeded) and :class:`Scripted` (for the book: run in order, inject
an interrupt when a named event happens).  Searching many schedules is :mod:`tryalloc.kernel.explore`.
"""
from __future__ import annotations

import difflib
import hashlib
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from greenlet import greenlet

from ..errors import ContextError, KernelReport, ReplayError, TriggerError
from .context import CPU, INTERRUPT_KINDS, TASK, Context
from .events import EVENT_OPS, EventLog, Fields, declare_ops

RUN, IRQ = 0, 1

declare_ops("start", "exit", *(f"{kind}-{edge}" for kind in INTERRUPT_KINDS for edge in ("entry", "exit")))

_OUTSIDE = "model code runs only inside Kernel.run() or Kernel.call()"


class _NoRun:
    """What :data:`_run` holds between runs: reading anything from it raises ContextError.  Model code
    on hot paths reads ``sched._run.kernel`` (an attribute read) instead of calling :func:`running`,
    and outside a run still gets the documented error."""

    __slots__ = ()

    def __getattr__(self, name: str):
        raise ContextError(_OUTSIDE)

    def __bool__(self) -> bool:
        return False


_NO_RUN = _NoRun()
#: The run in progress (only one runs at a time: no threads); :data:`_NO_RUN` between runs.
_run: Run | _NoRun = _NO_RUN
#: Idle CPU greenlets kept for the next run: starting a fresh greenlet costs ~15 us, reusing one ~1 us.
_pool: list[greenlet] = []


def _worker(body, msg):
    """A reusable CPU greenlet: run a task body, then park in the pool until the next run."""
    while True:
        body(msg)
        me = greenlet.getcurrent()
        _pool.append(me)
        body, msg = me.parent.switch()


# --- what model code calls -------------------------------------------------------------------
def running() -> Run:
    """The run in progress; model code may only execute inside one."""
    if _run is _NO_RUN:
        raise ContextError(_OUTSIDE)
    return _run


def this_cpu() -> CPU:
    """The CPU executing the caller (``smp_processor_id()`` is ``this_cpu().id``).  It reads the run
    itself rather than calling :func:`running`: it is the model's most frequent lookup."""
    return _run.cpu  # outside a run the sentinel raises ContextError


def current_context() -> Context:
    """The innermost context of the running CPU."""
    return this_cpu().stack[-1]


def point(op: str, obj: object = None, touches: tuple | None = None) -> None:
    """Announce the operation ``op`` on ``obj`` (a lock, a list...) and let the scheduler choose
    what runs next.  Returns when this CPU is chosen to go on and perform it.  The log records the
    event as an announcement: it has not happened yet (:mod:`tryalloc.kernel.events`).

    ``touches`` declares what the step after the point touches, as a ``(kind, obj)`` pair of
    :mod:`tryalloc.kernel.por`; ``None`` (the default) means "anything", which is always sound."""
    run = _run
    run.cpu.stack[-1].announced = touches  # outside a run the sentinel raises ContextError
    run.point(op, obj)


def event(op: str, obj: object = None) -> None:
    """Record an event that is not a scheduling point (a tracepoint firing, a counter change)."""
    running().log(op, obj)


def inject_interrupt(kind: str, handler: Callable[[], object], name: str = "") -> None:
    """Make a ``kind`` interrupt arrive *here*, on the running CPU, and run ``handler`` in it.

    For scripted scenarios ("an NMI arrives right now").  If such an interrupt cannot arrive in the
    current state (a hardirq with interrupts off, an NMI inside an NMI...) it raises
    :class:`~tryalloc.errors.ContextError` and nothing changes.
    """
    run = running()
    if kind not in INTERRUPT_KINDS:
        raise ContextError(f"unknown interrupt kind {kind!r}; known: {', '.join(INTERRUPT_KINDS)}")
    why = run.cpu.can_take(kind)
    if why:
        raise ContextError(f"a {kind} cannot arrive on CPU{run.cpu.id} now: {why}")
    run.deliver_handler(kind, handler, name or getattr(handler, "__name__", kind))


def wait_for(lock) -> None:
    """Spin (or sleep) until ``lock.owner`` is ``None``.  The CPU is not runnable meanwhile, but
    interrupts that may arrive still do; the scheduler reports a deadlock when no CPU can run."""
    run = running()
    ctx = run.cpu.stack[-1]
    ctx.waiting = lock
    while lock.owner is not None:
        run.block()
    ctx.waiting = None


# --- schedules -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Interrupt:
    """A source of interrupts: ``handler`` runs as a ``kind`` interrupt on ``cpu``, at most
    ``budget`` times per run, wherever the scheduler injects it."""

    cpu: int
    kind: str
    handler: Callable[[], object]
    budget: int = 1
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or getattr(self.handler, "__name__", "handler")


class Strategy:
    """Chooses among the options at each scheduling point.

    ``options`` is a list of ``(RUN, cpu_id)`` and ``(IRQ, source_index)`` pairs; a ``RUN`` of the
    CPU that ran last, when it can go on, is always first.  ``choose`` returns an index into it.
    """

    def choose(self, run: Run, options: list) -> int:
        raise NotImplementedError

    def start(self, run: Run) -> None:
        """Called once before the run's first step; may refuse the run with a usage error (nothing has
        changed yet)."""

    def finish(self, run: Run, report: KernelReport | None = None) -> None:
        """Called once when the run has ended: normally, or stopped by ``report`` (about to be raised)."""


class Serial(Strategy):
    """Always the first option: keep running the current CPU, never inject."""

    def choose(self, run, options):
        return 0


class Replay(Strategy):
    """Follow a replay string; past its end, take the first option (as the string was trimmed)."""

    def __init__(self, replay: str):
        self.fingerprint, self.choices = decode(replay)
        self.replay = replay

    def choose(self, run, options):
        i = run.nchoices
        if i >= len(self.choices):
            return 0
        c = self.choices[i]
        if c >= len(options):
            raise ReplayError(
                f"replay {self.replay!r} does not fit this scenario: step {i} picks option {c} "
                f"but only {len(options)} exist"
            )
        return c

    def finish(self, run, report=None):
        if run.nchoices < len(self.choices):
            ended = f"ended with {report.title!r}" if report is not None else "ended"
            raise ReplayError(
                f"replay {self.replay!r} does not fit this scenario: the run {ended} after "
                f"{run.nchoices} choices, the string has {len(self.choices)}"
            ) from report


class Random(Strategy):
    """A uniformly random option at every point, from a seeded generator (reproducible)."""

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.rng = random.Random(seed)

    def choose(self, run, options):
        return self.rng.randrange(len(options))


_CONTEXTS = (TASK, *INTERRUPT_KINDS)


@dataclass(frozen=True)
class When:
    """A trigger for :class:`Scripted`: when ``cpu`` logs an event with operation ``op`` (and, if
    given, on an object named ``obj``, in a context of kind ``context``), inject ``inject`` on it at the
    first scheduling point where such an interrupt can arrive; ``nth`` counts matching events.

    A trigger is checked as early as it can be: here, an ``op`` the model never logs (the names are
    declared with :func:`~tryalloc.kernel.events.declare_ops`), an unknown interrupt or context kind;
    when the run starts, no ``inject`` source on that CPU; when it ends, a trigger that never fired.
    Each raises :class:`~tryalloc.errors.TriggerError` naming the trigger."""

    cpu: int
    op: str
    inject: str
    obj: str | None = None
    context: str | None = None
    nth: int = 1

    def __post_init__(self):
        def bad(why: str) -> TriggerError:
            return TriggerError(f"{self}: {why}")

        if isinstance(self.cpu, bool) or not isinstance(self.cpu, int) or self.cpu < 0:
            raise bad(f"cpu must be a CPU number, got {self.cpu!r}")
        if self.op not in EVENT_OPS:
            near = difflib.get_close_matches(str(self.op), EVENT_OPS, n=3)
            hint = f"; did you mean {' or '.join(map(repr, near))}?" if near else ""
            raise bad(f"the model logs no operation {self.op!r}{hint}")
        if self.inject not in INTERRUPT_KINDS:
            raise bad(f"inject must be one of {', '.join(INTERRUPT_KINDS)}, got {self.inject!r}")
        if self.obj is not None and not isinstance(self.obj, str):
            raise bad(f"obj is matched against the names in the log, so it must be a str, got {self.obj!r}")
        if self.context is not None and self.context not in _CONTEXTS:
            raise bad(f"context must be one of {', '.join(_CONTEXTS)}, got {self.context!r}")
        if isinstance(self.nth, bool) or not isinstance(self.nth, int) or self.nth < 1:
            raise bad(f"nth must be an int >= 1, got {self.nth!r}")

    def __repr__(self) -> str:
        parts = [f"cpu={self.cpu!r}", f"op={self.op!r}", f"inject={self.inject!r}"]
        parts += [f"{name}={getattr(self, name)!r}" for name, unset in (("obj", None), ("context", None), ("nth", 1))
                  if getattr(self, name) != unset]
        return f"When({', '.join(parts)})"

    def matches(self, ev: tuple) -> bool:
        """Whether the event tuple ``ev`` is one this trigger counts."""
        return (ev[1] == self.cpu and ev[3] == self.op and (self.obj is None or ev[4] == self.obj)
                and (self.context is None or ev[2].rpartition(">")[2] == self.context))


class Scripted(Strategy):
    """For the book: run the CPUs in order (the lowest-numbered runnable first, or ``order``), and
    inject interrupts when the events named by ``triggers`` happen.

    A script that does not do what it says is an error, not a quiet run: every trigger must fire and
    its interrupt arrive, or the run raises :class:`~tryalloc.errors.TriggerError` (see :class:`When`).
    A run stopped by a kernel report raises that report instead (it may come before a trigger)."""

    def __init__(self, *triggers: When, order: tuple[int, ...] | None = None):
        for t in triggers:
            if not isinstance(t, When):
                raise TriggerError(f"Scripted takes When(...) triggers, got {t!r}")
        self.triggers = list(triggers)
        self.order = order

    def start(self, run):
        if self.triggers and not run.trace:
            raise TriggerError(f"{self.triggers[0]}: triggers match the event log, and this run keeps none "
                               "(trace=False)")
        for t in self.triggers:
            if t.cpu not in run.tasks:
                raise TriggerError(f"{t}: CPU{t.cpu} has no task in this run, so nothing runs there to trigger it")
            if not any(src.cpu == t.cpu and src.kind == t.inject and src.budget for src in run.sources):
                raise TriggerError(f"{t}: no {t.inject} source on CPU{t.cpu}; declare one with "
                                   f"Kernel.on_interrupt({t.cpu}, {t.inject!r}, handler)")
        self.seen = [0] * len(self.triggers)
        self.fired: dict[int, int] = {}  # trigger -> the event that fired it
        self.pending: list[int] = []  # triggers fired whose interrupt has not arrived yet
        self.checked = 0  # events already matched against the triggers

    def _match(self, run) -> None:
        events = run.events
        for ev in events[self.checked:] if self.checked else events:
            for i, t in enumerate(self.triggers):
                if t.matches(ev):
                    self.seen[i] += 1
                    if self.seen[i] == t.nth:
                        self.fired[i] = ev[0]
                        self.pending.append(i)
        self.checked = len(events)

    def choose(self, run, options):
        self._match(run)
        while self.pending:
            t = self.triggers[self.pending[0]]
            for idx, (what, arg) in enumerate(options):
                if what == IRQ and run.sources[arg].cpu == t.cpu and run.sources[arg].kind == t.inject:
                    self.pending.pop(0)
                    return idx
            break  # cannot arrive yet (irqs off): let the CPU go on until it can
        runnable = [arg for what, arg in options if what == RUN]
        for cpu in self.order or ():
            if cpu in runnable:
                return options.index((RUN, cpu))
        return options.index((RUN, min(runnable))) if runnable else 0

    def finish(self, run, report=None):
        if report is not None:
            return
        self._match(run)
        problems = []
        for i, t in enumerate(self.triggers):
            if self.seen[i] < t.nth:
                objs = sorted({str(ev[4]) for ev in run.events if ev[1] == t.cpu and ev[3] == t.op})
                seen = (f"; CPU{t.cpu} logged {t.op!r} on {', '.join(objs[:6])}" if objs
                        else f"; CPU{t.cpu} never logged {t.op!r}")
                problems.append(f"{t} never fired (matched {self.seen[i]} of {t.nth} events{seen})")
            elif i in self.pending:
                problems.append(f"{t} fired at event #{self.fired[i]}, but no {t.inject} could arrive on "
                                f"CPU{t.cpu} at any scheduling point after it")
        if problems:
            raise TriggerError("the script did not run as written: " + "; ".join(problems))


# --- replay strings --------------------------------------------------------------------------
_REPLAY = re.compile(r"^ta1/(\d+)c(\d+)i:((?:\d+(?:\*\d+)?)(?:\.\d+(?:\*\d+)?)*)?$")


def encode(fingerprint: tuple[int, int], choices: list[int]) -> str:
    """The replay string of a schedule: ``ta1/<cpus>c<sources>i:`` then the choices, run-length
    encoded (``0*12``), with trailing zeros dropped since a replay takes option 0 past the end."""
    n = len(choices)
    while n and choices[n - 1] == 0:
        n -= 1
    tokens, i = [], 0
    while i < n:
        j = i
        while j < n and choices[j] == choices[i]:
            j += 1
        tokens.append(f"{choices[i]}*{j - i}" if j - i > 2 else ".".join([str(choices[i])] * (j - i)))
        i = j
    return f"ta1/{fingerprint[0]}c{fingerprint[1]}i:" + ".".join(tokens)


def decode(replay: str) -> tuple[tuple[int, int], list[int]]:
    """Parse a replay string; :class:`~tryalloc.errors.ReplayError` names what is wrong."""
    m = _REPLAY.match(replay) if isinstance(replay, str) else None
    if not m:
        raise ReplayError(f"not a tryalloc replay string: {replay!r} (expected 'ta1/<n>c<m>i:<choices>')")
    choices: list[int] = []
    for tok in (m.group(3) or "").split(".") if m.group(3) else []:
        value, _, count = tok.partition("*")
        choices.extend([int(value)] * (int(count) if count else 1))
    return (int(m.group(1)), int(m.group(2))), choices


# --- one run ---------------------------------------------------------------------------------
class Run:
    """One execution of a scenario under one strategy.  Built and driven by ``Kernel.run``."""

    def __init__(self, kernel, tasks: dict[int, Callable[[], object]], sources: list[Interrupt],
                 strategy: Strategy, trace: bool = True, check_step: Callable | None = None):
        self.kernel = kernel
        self.rt = kernel.config.preempt_rt
        self.smp = kernel.config.smp
        self.lockdep = kernel.config.detector("lockdep") != "off"
        self.cpus: list[CPU] = kernel.cpus
        self.tasks = tasks
        self.sources = sources
        self.budget = [s.budget for s in sources]
        self.strategy = strategy
        start = {cpu.id: tuple(_name(lock) for lock in cpu.stack[0].held) for cpu in self.cpus if cpu.stack[0].held}
        self.events = EventLog(start=start)
        self._points = self.events._points
        self.choices: list[int] = []
        self.nchoices = 0
        self.decisions = 0  # every decide(), forced ones too: a reduction must see the forced steps
        self.preemptions = 0
        self.injections = 0
        self.results: dict[int, object] = {}
        self.cpu: CPU = self.cpus[min(tasks)] if tasks else self.cpus[0]
        self.last: CPU | None = None
        self.trace = trace
        self._glets: dict[int, greenlet] = {}
        if check_step is not None:  # an instance attribute: a run without a check pays nothing
            self.point = self._checked_point(check_step)

    def _checked_point(self, check_step: Callable) -> Callable[[str, object], None]:
        """:meth:`point` calling ``check_step(run)`` first, at every scheduling point (forced ones too),
        where the running CPU has announced its next step (``run.cpu.stack[-1].announced``)."""
        point = Run.point

        def checked(op: str, obj: object) -> None:
            check_step(self)
            point(self, op, obj)
        return checked

    # the replay string identifies the scenario's shape so a foreign string is refused early
    @property
    def fingerprint(self) -> tuple[int, int]:
        return (len(self.cpus), len(self.sources))

    @property
    def replay(self) -> str:
        return encode(self.fingerprint, self.choices)

    def log(self, op: str, obj: object) -> None:
        """Record a fact: ``op`` on ``obj`` has happened (an object is logged by its name)."""
        if self.trace:
            cpu = self.cpu
            if obj is not None and type(obj) is not str:
                obj = _name(obj)
            self.events.append((len(self.events), cpu.id, cpu.path_str, op, obj))

    def log_fields(self, op: str, fields: Fields) -> None:
        """Record a tracepoint's event ``op``; its ``fields`` are kept beside the tuple (whose object is
        ``None``), see :attr:`EventLog.fields <tryalloc.kernel.events.EventLog>`."""
        if self.trace:
            self.events.fields[len(self.events)] = fields
            self.log(op, None)

    def point(self, op: str, obj: object) -> None:
        """A scheduling point of the running CPU (see :func:`point`): record that ``op`` on ``obj`` is
        about to happen, then :meth:`schedule`.  A run alone with no interrupt to come has nothing to
        decide, so the point returns at once: one call (the lock operations call it directly)."""
        if self.trace:
            self._points.append(len(self.events))
            self.log(op, obj)
        if self._alone and not self._pending:
            return
        self.schedule()

    # -- deciding: callable from any greenlet -----------------------------------------------------
    def options(self) -> list[tuple[int, int]]:
        last = self.last
        glets = self._glets
        cpus = self.cpus
        opts = []
        if last is not None and last.id in glets and (last.waiting is None or last.waiting.owner is None):
            opts.append((RUN, last.id))
        for cid in glets:
            cpu = cpus[cid]
            if cpu is not last and (cpu.waiting is None or cpu.waiting.owner is None):
                opts.append((RUN, cid))
        if self._pending:
            budget = self.budget
            for i, src in enumerate(self.sources):
                if budget[i] and src.cpu in glets and cpus[src.cpu].can_take(src.kind) is None:
                    opts.append((IRQ, i))
        return opts

    def decide(self) -> tuple[int, int]:
        """Pick the next action and account for it (preemptions, interrupt budgets).

        Only real choices (two options or more) are recorded in the schedule: a forced step is the
        same in every replay, so leaving it out keeps replay strings short and searches cheap.
        """
        self.decisions += 1
        opts = self.options()
        if not opts or opts[0][0] != RUN:  # RUN options come first: none means nobody can go on
            raise self.kernel.deadlock_across_cpus(self)
        if len(opts) == 1:
            return opts[0]  # a RUN (see above), and a forced one is never a preemption
        k = self.strategy.choose(self, opts)
        self.choices.append(k)
        self.nchoices += 1
        action = opts[k]
        if action[0] == RUN:
            last = self.last
            if last is not None and action[1] != last.id and opts[0] == (RUN, last.id):
                self.preemptions += 1
        else:
            self.budget[action[1]] -= 1
            self.injections += 1
            self._pending = any(self.budget)
        return action

    def dispatch(self, action: tuple[int, int]):
        """Resume the CPU the action concerns; returns when someone resumes the caller."""
        kind, arg = action
        cpu = self.cpus[arg] if kind == RUN else self.cpus[self.sources[arg].cpu]
        self.cpu = self.last = cpu
        msg = None if kind == RUN else arg
        if cpu.id in self._unstarted:
            self._unstarted.discard(cpu.id)
            return self._glets[cpu.id].switch(self._task(cpu.id), msg)
        return self._glets[cpu.id].switch(msg)

    # -- called in a CPU greenlet -------------------------------------------------------------
    def schedule(self) -> None:
        """A scheduling point of the running CPU: decide until this CPU is chosen to go on.

        Interrupts for this CPU run right here, nested; choosing another CPU switches straight to its
        greenlet (no round trip through the hub), and we continue when someone switches back.
        """
        me = self.cpu
        if self._alone and not self._pending:
            return  # nothing else can happen here: no decision to make
        while True:
            kind, arg = action = self.decide()
            if kind == RUN and arg == me.id:
                self.cpu = self.last = me
                return
            if kind == IRQ and self.sources[arg].cpu == me.id:
                self.cpu = self.last = me
                self.deliver(arg)
                continue
            msg = self.dispatch(action)
            if msg is None:
                return
            self.deliver(msg)

    def block(self) -> None:
        """This CPU cannot go on (it waits for a lock): let another action run."""
        me = self.cpu
        kind, arg = action = self.decide()
        if kind == IRQ and self.sources[arg].cpu == me.id:
            self.deliver(arg)
            return
        msg = self.dispatch(action)
        if msg is not None:
            self.deliver(msg)

    def deliver(self, index: int) -> None:
        src = self.sources[index]
        self.deliver_handler(src.kind, src.handler, src.label)

    def deliver_handler(self, kind: str, handler: Callable[[], object], label: str) -> None:
        cpu = self.cpu
        ctx = cpu.enter(kind)
        self.log(f"{kind}-entry", label)
        self.kernel.irq_entered(ctx)
        handler()
        self.kernel.irq_leaving(ctx)
        self.log(f"{kind}-exit", label)
        cpu.leave(ctx)

    def _task(self, cpu_id: int) -> Callable[[], None]:
        fn = self.tasks[cpu_id]

        def body(msg):
            if msg is not None:  # an interrupt arrived before the task's first step
                self.deliver(msg)
                self.schedule()
            self.log("start", None)
            self.results[cpu_id] = fn()
            self.kernel.task_exiting(self.cpus[cpu_id].top)
            self.log("exit", None)
            del self._glets[cpu_id]  # finished: back to the hub, which decides what runs next
            self._alone = len(self._glets) == 1

        return body

    def _unwind_cpus(self) -> None:
        """A run that ends in an exception leaves every CPU back in its idle task: interrupt frames
        popped, no lock held by any of its contexts, preemption and interrupts enabled.  (Usage
        errors are raised before the model changes; after a report the locks' data is whatever the
        report says it is.)"""
        for cpu in self.cpus:
            for ctx in cpu.stack:
                for lock in ctx.held:
                    _release_on_unwind(lock, cpu)
                ctx.held.clear()
            del cpu.stack[1:]
            cpu.path_str = cpu.stack[0].kind
            cpu.preempt_count = 0
            cpu.irqs_disabled = False
            cpu.migrate_disabled = 0
            cpu.stack[0].waiting = None

    # -- the hub: runs in the caller's greenlet ----------------------------------------------------
    def check(self) -> None:
        """Refuse a run that cannot start (a usage error), before anything in the machine changes."""
        if _run is not _NO_RUN:
            raise ContextError("a run is already in progress; runs do not nest")
        for cid in self.tasks:
            if not 0 <= cid < len(self.cpus):
                raise ContextError(f"no CPU {cid}: this machine has CPUs 0..{len(self.cpus) - 1}")
        for src in self.sources:
            if not 0 <= src.cpu < len(self.cpus):
                raise ContextError(f"interrupt {src.label!r} targets CPU {src.cpu}, which does not exist")
            if src.kind not in INTERRUPT_KINDS:
                raise ContextError(f"unknown interrupt kind {src.kind!r}; known: {', '.join(INTERRUPT_KINDS)}")
        self.strategy.start(self)

    def execute(self):
        """Run to the end (after :meth:`check`)."""
        global _run
        _run = self
        hub = greenlet.getcurrent()
        self._glets = {}
        for cid in sorted(self.tasks):
            glet = _pool.pop() if _pool else greenlet(_worker)
            glet.parent = hub  # a finished task comes back here
            self._glets[cid] = glet
        self._unstarted = set(self._glets)
        self._alone = len(self._glets) == 1
        self._pending = any(self.budget)  # some interrupt may still arrive
        try:
            while self._glets:
                self.dispatch(self.decide())  # returns when a task finishes
        except KernelReport as report:
            report.with_replay(self.replay)
            report.events = self.events
            self.strategy.finish(self, report)
            raise
        except BaseException:
            self._unwind_cpus()
            raise
        else:
            self.strategy.finish(self)
        finally:
            _run = _NO_RUN
            for cid, glet in list(self._glets.items()):
                if cid not in self._unstarted:
                    glet.throw()  # unwind the CPUs left suspended (their frames hold no cleanup code)
                else:
                    _pool.append(glet)
            self._glets = {}
        return RunResult(self.fingerprint, self.choices, self.events, self.results, self.preemptions,
                         self.injections)


def _name(obj) -> str:
    return getattr(obj, "name", None) or repr(obj)


def _release_on_unwind(lock, cpu: CPU) -> None:
    if hasattr(lock, "_holder"):  # a local_lock_t: per-CPU holder
        lock._holder[cpu.id] = None
        return
    lock.shadowed.clear()
    lock.owner = None


@dataclass
class RunResult:
    """What a run leaves: its schedule (``replay``), its event log (an
    :class:`~tryalloc.kernel.events.EventLog`), each task's return value, the
    number of scheduling decisions (``steps``), and how many preemptions and interrupt injections."""

    fingerprint: tuple
    choices: list
    events: list
    results: dict
    preemptions: int
    injections: int

    @property
    def replay(self) -> str:
        return encode(self.fingerprint, self.choices)

    @property
    def steps(self) -> int:
        return len(self.choices)

    @property
    def trace_hash(self) -> str:
        """A digest of the event log: two runs with the same hash produced the same events."""
        return hashlib.sha256(repr(self.events).encode()).hexdigest()[:16]

"""The machine: a configured set of CPUs and the subsystems booted on it.

``Kernel(config)`` builds the CPUs, lockdep-lite, and then runs every registered *initcall* so that
subsystems (the page allocator, memcg, ...) can set up their state on it, as ``start_kernel`` does.
A scenario puts a task on some CPUs (:meth:`Kernel.spawn`), declares where interrupts may arrive
(:meth:`Kernel.on_interrupt`), and runs under a strategy (:meth:`Kernel.run`).
:meth:`Kernel.call` runs one function on one CPU, in any context, for quick experiments.
"""
from __future__ import annotations

from collections.abc import Callable

from ..config import Config
from ..errors import ContextError, DeadlockError, KernelReport, LockdepError
from .context import CPU, INTERRUPT_KINDS, TASK
from .events import EventLog
from .locking.lockdep import Lockdep
from .report import compose, lock_name
from .sched import IRQ, Interrupt, Run, RunResult, Serial, Strategy

_initcalls: list[Callable] = []
_DEFAULT = Config()


def initcall(fn: Callable) -> Callable:
    """Register ``fn(kernel)`` to run when every :class:`Kernel` boots (``module_init``)."""
    _initcalls.append(fn)
    return fn


class Kernel:
    """A configured machine.  ``Kernel(nr_cpus=2, preempt_rt=True)`` or ``Kernel(Config(...))``."""

    def __init__(self, config: Config | None = None, **options):
        if config is not None and options:
            raise ContextError("pass either a Config or keyword options, not both")
        self.config = config if config is not None else Config.make(**options) if options else _DEFAULT
        self.cpus = [CPU(i) for i in range(self.config.nr_cpus)]
        self.lockdep = Lockdep(self)
        self.reports: list[KernelReport] = []  # reports of detectors in "warn" mode
        self.events = EventLog()  # the last run's event log
        self._last_run: Run | None = None
        self._tasks: dict[int, Callable] = {}
        self._sources: list[Interrupt] = []
        for fn in _initcalls:
            fn(self)

    # -- scenarios ------------------------------------------------------------------------------
    def spawn(self, cpu: int, fn: Callable[[], object]) -> None:
        """Run ``fn()`` as the task of CPU ``cpu`` in the next run."""
        self._check_cpu(cpu)
        _check_callable("spawn", fn)
        if cpu in self._tasks:
            raise ContextError(f"CPU{cpu} already has a task for the next run")
        self._tasks[cpu] = fn

    def on_interrupt(self, cpu: int, kind: str, handler: Callable[[], object], budget: int = 1,
                     name: str = "") -> None:
        """Let a ``kind`` interrupt (``softirq``, ``hardirq``, ``nmi``) running ``handler`` arrive on
        CPU ``cpu`` up to ``budget`` times in the next run, wherever the strategy injects it."""
        self._check_cpu(cpu)
        _check_kind(kind)
        _check_callable("on_interrupt", handler)
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
            raise ContextError(f"interrupt budget must be an int >= 0, got {budget!r}")
        if not isinstance(name, str):
            raise ContextError(f"interrupt name must be a str, got {name!r}")
        self._sources.append(Interrupt(cpu, kind, handler, budget, name))

    def run(self, strategy: Strategy | None = None, *, trace: bool = True,
            check_step: Callable | None = None) -> RunResult:
        """Run the spawned tasks to completion under ``strategy`` (:class:`Serial` by default).

        Raises a :class:`~tryalloc.errors.KernelReport` subclass if a detector fires; its ``replay``
        attribute reproduces the run.  The scenario is consumed either way, also by a run the
        strategy refuses to start (a :class:`~tryalloc.errors.TriggerError`...), which changes nothing else.
        ``check_step(run)``, if given, runs at every scheduling point, before the announced step (a
        per-step invariant check: it may raise a report, which ends the run like a detector's).
        """
        if not self._tasks:
            raise ContextError("nothing to run: spawn() a task on at least one CPU first")
        tasks, sources = self._tasks, self._sources
        self._tasks, self._sources = {}, []
        run = Run(self, tasks, sources, strategy or Serial(), trace, check_step)
        run.check()  # a run refused here leaves the machine, and the last run's log, as they were
        try:
            return run.execute()
        finally:
            self.events = run.events
            self._last_run = run

    @property
    def last_replay(self) -> str:
        """The replay string of the last run (empty before any)."""
        return self._last_run.replay if self._last_run else ""

    def call(self, fn: Callable, *args, cpu: int = 0, context: str = TASK, **kwargs):
        """Run ``fn(*args, **kwargs)`` on CPU ``cpu`` in ``context`` (``task`` or an interrupt kind
        arriving on top of the idle task) and return its result.  Bad arguments raise before
        anything is set up, so the machine stays ready for the next call."""
        self._check_cpu(cpu)
        _check_callable("call", fn)
        if context != TASK:
            _check_kind(context, also=(TASK,))
        if self._tasks or self._sources:
            raise ContextError("a scenario is being set up (spawn/on_interrupt); run() it first")
        result = []

        def body():
            result.append(fn(*args, **kwargs))

        if context == TASK:
            self.spawn(cpu, body)
            self.run()
        else:
            self.spawn(cpu, lambda: None)
            self.on_interrupt(cpu, context, body, name=getattr(fn, "__name__", "call"))
            self.run(_InjectFirst())
        return result[0]

    def _check_cpu(self, cpu: int) -> None:
        if isinstance(cpu, bool) or not isinstance(cpu, int) or not 0 <= cpu < len(self.cpus):
            raise ContextError(f"no CPU {cpu!r}: this machine has CPUs 0..{len(self.cpus) - 1}")

    # -- detectors ------------------------------------------------------------------------------
    def detect(self, detector: str, report: KernelReport) -> None:
        """Raise, record or drop ``report`` according to the detector's configured mode."""
        mode = self.config.detector(detector)
        if mode == "raise":
            raise report
        if mode == "warn":
            self.reports.append(report)

    def deadlock_across_cpus(self, run: Run) -> DeadlockError:
        waiting = [c for c in self.cpus if getattr(c, "waiting", None) is not None]
        lines = []
        for cpu in waiting:
            owner = cpu.waiting.owner
            lines.append(f"  {cpu.top.name} waits for {lock_name(cpu.waiting)}, held by "
                         f"{owner.name if owner else '?'}")
        cols = "".join(f"{'CPU' + str(c.id):<28}" for c in waiting)
        rows = []
        for cpu in waiting:
            for ctx in cpu.stack:
                for held in ctx.held:
                    rows.append(" " * (28 * waiting.index(cpu)) + f"  lock({lock_name(held)});")
        for cpu in waiting:
            rows.append(" " * (28 * waiting.index(cpu)) + f"  lock({lock_name(cpu.waiting)});")
        scen = f"       {cols}\n" + "\n".join(rows) + "\n\n *** DEADLOCK ***"
        body = "every unfinished CPU waits for a lock held by another waiting CPU:\n" + "\n".join(lines)
        return DeadlockError(compose("no CPU can make progress", body, scen, self.cpus, run.events),
                             title="WARNING: deadlock across CPUs")

    # -- hooks the scheduler calls ----------------------------------------------------------------
    def irq_entered(self, ctx) -> None:
        """An interrupt frame was pushed (subsystems may extend this)."""

    def irq_leaving(self, ctx) -> None:
        self._leak_check(ctx, "returning from interrupt")

    def task_exiting(self, ctx) -> None:
        self._leak_check(ctx, "returning to user space")

    def _leak_check(self, ctx, where: str) -> None:
        if ctx.held:
            from .sched import running
            run = running()
            names = ", ".join(lock_name(lock) for lock in ctx.held)
            body = f"{ctx.name} is {where} with locks still held: {names}"
            self.detect("lockdep", LockdepError(compose(f"lock held when {where}", body, "", self.cpus, run.events),
                                                title=f"WARNING: lock held when {where}!"))


def _check_kind(kind: str, also: tuple[str, ...] = ()) -> None:
    if kind not in INTERRUPT_KINDS:
        what = "context" if also else "interrupt"
        raise ContextError(f"unknown {what} kind {kind!r}; known: {', '.join(also + INTERRUPT_KINDS)}")


def _check_callable(what: str, fn) -> None:
    if not callable(fn):
        raise ContextError(f"{what}: expected a function to run, got {fn!r}")


class _InjectFirst(Strategy):
    """Deliver the pending interrupt at the first opportunity, then run serially."""

    def choose(self, run, options):
        for i, (kind, _) in enumerate(options):
            if kind == IRQ:
                return i
        return 0

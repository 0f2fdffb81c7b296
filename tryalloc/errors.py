"""The exceptions the model raises.

Two families, kept apart on purpose:

* :class:`UsageError` and its subclasses: the caller asked for something the model cannot do
  (a bad configuration, unlocking a lock that is not held, an interrupt where none can arrive, a
  replay string that does not fit the scenario).  They are raised *before* anything changes, so the
  model's state is exactly as it was.
* :class:`KernelReport` and its subclasses: the model caught the modelled kernel doing something
  wrong (a deadlock, a lockdep splat, per-CPU corruption, a bad page).  These are the model's normal
  output, worded like the kernel's own reports, and carry the replay string of the run that led there.
"""
from __future__ import annotations


class TryallocError(Exception):
    """Base class of every exception the package raises on purpose."""


class UsageError(TryallocError):
    """The request itself was wrong; nothing in the model changed."""


class ConfigError(UsageError, ValueError):
    """A configuration value is missing, unknown or out of range."""


class InvalidArgumentError(UsageError, ValueError):
    """An argument out of range: an order above ``MAX_PAGE_ORDER``, a node that does not exist..."""


class LockUsageError(UsageError):
    """A lock was released that this context does not hold, or on another CPU."""


class ContextError(UsageError):
    """An operation that is impossible in the current execution context, for example an
    interrupt injected with interrupts disabled, or a model call made outside a run."""


class ReplayError(UsageError, ValueError):
    """A replay string is malformed or does not fit the scenario it is replayed on."""


class TriggerError(UsageError, ValueError):
    """A :class:`~tryalloc.kernel.sched.Scripted` trigger that cannot fire or did not: an operation the
    model never logs (a typo such as ``"aquired"``), an interrupt kind with no source declared on its
    CPU, or a trigger still unfired when the run ended (an object the machine's events never name,
    such as ``zone->lock`` on a two-node machine whose locks are ``node0:zone->lock``...).  The message
    names the trigger.  Raised before the run starts where that can be known; a trigger found unfired
    at the end leaves the machine as the run left it (the run happened), since only the end tells."""


class KernelReport(TryallocError):
    """A kernel-style report: the modelled kernel did something the real one must not.

    ``title`` is the report's first line (as the kernel prints it), ``report`` the whole text,
    ``replay`` the replay string of the schedule that led here (``None`` outside a scheduled run).
    """

    title = "BUG"

    def __init__(self, report: str, *, title: str | None = None, replay: str | None = None):
        self.title = title or self.title
        self.report = report
        self.replay = replay
        super().__init__(self._text())

    def _text(self) -> str:
        tail = f"\nreplay: {self.replay}" if self.replay is not None else ""
        return f"{self.title}\n{self.report}{tail}"

    def with_replay(self, replay: str) -> KernelReport:
        """Attach the replay string once the scheduler knows it."""
        self.replay = replay
        self.args = (self._text(),)
        return self


class DeadlockError(KernelReport):
    """A certain deadlock: a context spins on a lock held lower on its own CPU's stack, or every
    unfinished CPU waits for a lock that only another waiting CPU can release."""

    title = "WARNING: deadlock detected"


class LockdepError(KernelReport):
    """A lockdep-like prediction: recursive locking, inconsistent irq usage of a lock class, or a
    cycle in the lock-order graph.  Trylocks add no dependency, as in the kernel."""

    title = "WARNING: lockdep"


class PerCpuCorruptionError(KernelReport):
    """Two contexts of one CPU inside the same per-CPU critical section at once (on !RT a
    ``local_lock_t`` only disables interrupts, so an NMI still walks in)."""

    title = "BUG: per-CPU data corruption"


class InvalidContextError(KernelReport):
    """A sleeping lock (``spinlock_t`` on PREEMPT_RT) or a forbidden trylock in atomic context."""

    title = "BUG: sleeping function called from invalid context"


class BadPageError(KernelReport):
    """The kernel's "BUG: Bad page state": a double free, a free with the wrong order, a free of a
    page never allocated, a refcount underflow.  Raised before the model changes anything."""

    title = "BUG: Bad page state"


class VMBugError(KernelReport):
    """A failed ``VM_BUG_ON_PAGE`` of a ``CONFIG_DEBUG_VM`` kernel: the page is dumped and ``BUG()`` stops
    the kernel (not a "Bad page state", which reports and goes on).  Raised before the model changes
    anything; a kernel without DEBUG_VM has no such check and goes on with the damage."""

    title = "kernel BUG at mm/page_alloc.c"


class MemcgAccountingError(KernelReport):
    """memcg's books do not balance: a page counter would go negative, a charge was returned twice
    or never, an objcg reference was dropped once too often.  Raised before the counters change."""

    title = "BUG: memcg accounting"


class InvariantError(KernelReport):
    """The page allocator's books do not balance: a page lost or counted twice, a free page in two
    places, two free buddies left unmerged, a pcp count or free counter that disagrees with its lists."""

    title = "BUG: page allocator invariant violated"


class TraceabilityError(TryallocError):
    """The book and the tests disagree about a rule: a chapter names a rule id that no test names, so the
    book would claim behaviour nothing checks (raised by :func:`tryalloc.series.traceability.check`)."""

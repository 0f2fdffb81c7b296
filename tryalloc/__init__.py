"""tryalloc: an executable model of the Linux series "bpf, mm: Introduce try_alloc_pages()".

The facade: a configured machine (:class:`Kernel`, :class:`Config`), the strategies and searches
that run scenarios on it, and the exceptions it raises.  The modules below mirror the kernel tree:
``tryalloc.kernel`` (CPUs, contexts, locks, scheduling), ``tryalloc.lib`` (llist) and, as the model
grows, ``tryalloc.mm`` and ``tryalloc.bpf``.
"""
from .config import Config
from .errors import (
    ConfigError,
    ContextError,
    DeadlockError,
    InvalidContextError,
    KernelReport,
    LockdepError,
    LockUsageError,
    PerCpuCorruptionError,
    ReplayError,
    TriggerError,
    TryallocError,
    UsageError,
)
from .kernel import (
    ExploreResult,
    Kernel,
    Random,
    Replay,
    RunResult,
    Scripted,
    Serial,
    When,
    explore,
    random_search,
    replay,
)

# Every Kernel boots every subsystem: importing them registers their initcalls (as built-in code is
# linked into the kernel image), in dependency order: the memory map and zones before their users.
from . import trace  # noqa: E402,F401  isort: skip
from .mm import page_alloc, memcontrol, page_owner, debug  # noqa: E402,F401  isort: skip
from .lib import stackdepot  # noqa: E402,F401  isort: skip
from .bpf import prog, syscall, arena  # noqa: E402,F401  isort: skip
# The tools that drive the model (searches on a pool, scenarios, stress, state snapshots), reachable as
# attributes of a loaded level like the rest.
from .kernel import parallel, snapshot  # noqa: E402,F401  isort: skip
from .mm import invariants, reference, scenarios, stress  # noqa: E402,F401  isort: skip

__version__ = "0.1.0"

__all__ = [
    "Config", "ConfigError", "ContextError", "DeadlockError", "ExploreResult", "InvalidContextError", "Kernel",
    "KernelReport", "LockUsageError", "LockdepError", "PerCpuCorruptionError", "Random", "Replay", "ReplayError",
    "RunResult", "Scripted", "Serial", "TriggerError", "TryallocError", "UsageError", "When", "explore",
    "random_search", "replay",
]

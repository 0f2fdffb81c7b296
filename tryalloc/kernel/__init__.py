"""The simulated machine: CPUs, execution contexts, locks, scheduling and exploration."""
from .context import CPU, HARDIRQ, INTERRUPT_KINDS, NMI, SOFTIRQ, TASK, Context, Task
from .explore import ExploreResult, explore, random_search, replay
from .machine import Kernel, initcall
from .sched import (
    Interrupt,
    Random,
    Replay,
    RunResult,
    Scripted,
    Serial,
    Strategy,
    When,
    current_context,
    event,
    point,
    this_cpu,
)

__all__ = [
    "CPU", "Context", "ExploreResult", "HARDIRQ", "INTERRUPT_KINDS", "Interrupt", "Kernel", "NMI", "Random",
    "Replay", "RunResult", "SOFTIRQ", "Scripted", "Serial", "Strategy", "TASK", "Task", "When",
    "current_context", "event", "explore", "initcall", "point", "random_search", "replay", "this_cpu",
]

"""BPF programs attached to tracepoints and to perf events (``kernel/trace/bpf_trace.c``,
``kernel/events/core.c``).

A program here is a Python callable taking one ``ctx`` argument: for a tracepoint, a dict of the
tracepoint's fields (a raw tracepoint's argument array, by name); for a perf event, a dict with the
CPU the event fired on (``struct bpf_perf_event_data`` reduced to what the model has).  It runs in
whatever context fired it, with whatever locks that context holds: that is why an allocation from a
program can deadlock, the problem of the whole series (its v6 cover letter, 20250124035655.78899-1).

The kernel guards against a program re-entering itself on one CPU, and the model keeps both guards
because they decide what a re-entrant allocation does:

* a program on a raw tracepoint (``__bpf_trace_run``) counts its own per-CPU ``prog->active``; a
  nested run of the *same* program on that CPU is skipped and counted in ``misses``;
* a perf-event program (``bpf_overflow_handler``) uses the per-CPU ``bpf_prog_active`` shared by
  kprobe and perf programs; it is skipped while any of those runs on that CPU.

So a program on ``mm_page_alloc`` that allocates does not recurse forever (its nested firing is a
miss), while a perf NMI program still runs on top of a tracepoint program.
"""
from __future__ import annotations

from collections.abc import Callable

from ..errors import InvalidArgumentError
from ..kernel.machine import initcall
from ..kernel.sched import declare_ops, event, running
from ..trace import register_trace

declare_ops("bpf_prog_run", "bpf_prog_miss")


class bpf_prog:
    """``struct bpf_prog``: the callable, its per-CPU recursion counter, and run/miss statistics."""

    def __init__(self, func: Callable[[dict], object], nr_cpus: int, name: str = ""):
        self.func = func
        self.name = name or getattr(func, "__name__", "prog")
        self.active = [0] * nr_cpus  # prog->active, per CPU
        self.run_cnt = 0
        self.misses = 0

    def __repr__(self) -> str:
        return f"<bpf_prog {self.name} runs={self.run_cnt} misses={self.misses}>"


@initcall
def bpf_init(kernel) -> None:
    """Boot: no program is running on any CPU (``DEFINE_PER_CPU(int, bpf_prog_active)``)."""
    kernel.bpf_prog_active = [0] * kernel.config.nr_cpus


def _prog(kernel, prog) -> bpf_prog:
    if isinstance(prog, bpf_prog):
        return prog
    if not callable(prog):
        raise InvalidArgumentError(f"a BPF program must be callable, got {prog!r}")
    return bpf_prog(prog, kernel.config.nr_cpus)


def _run_prog(prog: bpf_prog, ctx: dict) -> None:
    prog.run_cnt += 1
    event("bpf_prog_run", prog.name)
    prog.func(ctx)


def __bpf_trace_run(prog: bpf_prog, ctx: dict) -> None:
    """Run ``prog`` from a raw tracepoint unless it is already running on this CPU (a miss)."""
    cpu = running().cpu.id
    prog.active[cpu] += 1
    try:
        if prog.active[cpu] != 1:
            prog.misses += 1
            event("bpf_prog_miss", prog.name)
            return
        _run_prog(prog, ctx)
    finally:
        prog.active[cpu] -= 1


def bpf_overflow_handler(prog: bpf_prog, ctx: dict) -> None:
    """Run ``prog`` for a perf event unless a kprobe/perf program already runs on this CPU."""
    run = running()
    active = run.kernel.bpf_prog_active
    cpu = run.cpu.id
    active[cpu] += 1
    try:
        if active[cpu] != 1:
            prog.misses += 1
            event("bpf_prog_miss", prog.name)
            return
        _run_prog(prog, ctx)
    finally:
        active[cpu] -= 1


def bpf_prog_attach_tracepoint(kernel, name: str, prog) -> bpf_prog:
    """Attach ``prog`` to tracepoint ``name`` as a raw tracepoint program; returns the
    :class:`bpf_prog` (its ``run_cnt`` and ``misses`` tell what happened).  An unknown tracepoint
    or a non-callable program raises :class:`~tryalloc.errors.InvalidArgumentError`."""
    p = _prog(kernel, prog)

    def probe(**fields):
        __bpf_trace_run(p, fields)

    probe.__name__ = f"bpf:{p.name}"
    register_trace(kernel, name, probe)
    return p


def bpf_prog_attach_perf_event(kernel, cpu: int, prog, budget: int = 1) -> bpf_prog:
    """Attach ``prog`` to a perf event that overflows as an NMI on ``cpu``, up to ``budget`` times in
    the next run, wherever the run's strategy injects it (``kernel.on_interrupt``).  Like every
    interrupt source, it lasts one run: attach again before the next."""
    p = _prog(kernel, prog)

    def perf_event_nmi():
        bpf_overflow_handler(p, {"cpu": cpu})

    kernel.on_interrupt(cpu, "nmi", perf_event_nmi, budget=budget, name=f"perf:{p.name}")
    return p

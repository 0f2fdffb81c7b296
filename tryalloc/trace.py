"""Tracepoints of the page allocator (``include/trace/events/kmem.h``) and their probes.

A tracepoint is a call the allocator makes at a fixed place; whoever registered a probe there (a BPF
program, a test) runs *inside* that call, on the same CPU, in the same context, with whatever locks
the allocator holds at that moment.  That is the whole problem the series solves: a probe on
``mm_page_alloc_zone_locked`` runs under ``zone->lock`` and must not allocate with a spinning lock.

``register_trace(kernel, name, probe)`` attaches ``probe(**fields)`` to the tracepoint ``name`` of one
machine (the kernel's ``register_trace_<name>``); ``trace_<name>(field=value, ...)`` fires it
(when a probe or the event log listens): it logs the event ``trace:<name>`` with the page's ``pfn``
and, where the tracepoint has them, its orders and migratetypes
(:class:`~tryalloc.kernel.events.Fields`, printed ``pfn=0x40 order=0 migratetype=1``; ``page=NULL``
for a failed allocation), and calls every probe in registration order.  The probes' fields mirror
the ``TP_PROTO`` arguments: ``mm_page_alloc(page, order, gfp_flags, migratetype)``,
``mm_page_free(page, order)``, ``mm_page_alloc_zone_locked(page, order, migratetype, percpu_refill)``,
``mm_page_pcpu_drain(page, order, migratetype)``, ``mm_page_alloc_extfrag(page, alloc_order, fallback_order,
alloc_migratetype, fallback_migratetype)``.  ``mm_page_alloc_zone_locked`` fires where
``__rmqueue_smallest`` takes a block, ``mm_page_alloc_extfrag`` where an allocation steals from another
migratetype (``__rmqueue_fallback``), both with ``zone->lock`` held (v6.13
https://elixir.bootlin.com/linux/v6.13/source/include/trace/events/kmem.h).  ``mm_page_free_batched``
is left out with the folio batch free it belongs to.
"""
from __future__ import annotations

from collections.abc import Callable

from .errors import InvalidArgumentError
from .kernel import sched
from .kernel.events import Fields
from .kernel.machine import initcall
from .kernel.sched import declare_ops

#: The tracepoints the model has, in ``kmem.h`` order.
TRACEPOINTS = ("mm_page_free", "mm_page_alloc", "mm_page_alloc_zone_locked", "mm_page_pcpu_drain",
               "mm_page_alloc_extfrag")


@initcall
def tracepoints_init(kernel) -> None:
    """Boot: every tracepoint starts with no probe."""
    kernel.tracepoints = {name: [] for name in TRACEPOINTS}


def _probes(kernel, name: str) -> list:
    if name not in TRACEPOINTS:
        raise InvalidArgumentError(f"unknown tracepoint {name!r}; known: {', '.join(TRACEPOINTS)}")
    return kernel.tracepoints[name]


def register_trace(kernel, name: str, probe: Callable[..., object]) -> None:
    """Attach ``probe`` to tracepoint ``name`` of ``kernel``; it is called with the keyword fields."""
    if not callable(probe):
        raise InvalidArgumentError(f"probe for {name!r} must be callable, got {probe!r}")
    probes = _probes(kernel, name)
    if probe in probes:
        raise InvalidArgumentError(f"probe {probe!r} is already registered on {name!r}")
    probes.append(probe)


def unregister_trace(kernel, name: str, probe: Callable[..., object]) -> None:
    """Detach ``probe`` from tracepoint ``name``; :class:`InvalidArgumentError` if it is not attached."""
    probes = _probes(kernel, name)
    if probe not in probes:
        raise InvalidArgumentError(f"probe {probe!r} is not registered on {name!r}")
    probes.remove(probe)


_EVENT = {name: "trace:" + name for name in TRACEPOINTS}
#: The fields the log keeps beside the pfn, in print order (extfrag has two orders and two migratetypes).
_LOGGED = ("order", "alloc_order", "fallback_order", "migratetype", "alloc_migratetype", "fallback_migratetype")
declare_ops(*_EVENT.values())


def _fire(run, name: str, fields: dict) -> None:
    if run.trace:  # the fields are worth building only for a log
        page = fields["page"]
        logged = (("pfn", page.pfn if page is not None else None),)
        logged += tuple((key, fields[key]) for key in _LOGGED if key in fields)
        run.log_fields(_EVENT[name], Fields(logged))
    probes = run.kernel.tracepoints[name]
    if probes:
        for probe in tuple(probes):  # a probe may unregister itself
            probe(**fields)


# Each tracepoint tests, as the kernel's static key does, whether anyone listens (a probe, or the
# event log) before its fields are gathered: with neither, a tracepoint costs one call.
def trace_mm_page_free(*, page, order) -> None:
    run = sched._run
    if run.trace or run.kernel.tracepoints["mm_page_free"]:
        _fire(run, "mm_page_free", {"page": page, "order": order})


def trace_mm_page_alloc(*, page, order, gfp_flags, migratetype) -> None:
    run = sched._run
    if run.trace or run.kernel.tracepoints["mm_page_alloc"]:
        _fire(run, "mm_page_alloc", {"page": page, "order": order, "gfp_flags": gfp_flags,
                                     "migratetype": migratetype})


def trace_mm_page_alloc_zone_locked(*, page, order, migratetype, percpu_refill) -> None:
    run = sched._run
    if run.trace or run.kernel.tracepoints["mm_page_alloc_zone_locked"]:
        _fire(run, "mm_page_alloc_zone_locked", {"page": page, "order": order, "migratetype": migratetype,
                                                 "percpu_refill": percpu_refill})


def trace_mm_page_pcpu_drain(*, page, order, migratetype) -> None:
    run = sched._run
    if run.trace or run.kernel.tracepoints["mm_page_pcpu_drain"]:
        _fire(run, "mm_page_pcpu_drain", {"page": page, "order": order, "migratetype": migratetype})


def trace_mm_page_alloc_extfrag(*, page, alloc_order, fallback_order, alloc_migratetype,
                                fallback_migratetype) -> None:
    run = sched._run
    if run.trace or run.kernel.tracepoints["mm_page_alloc_extfrag"]:
        _fire(run, "mm_page_alloc_extfrag", {"page": page, "alloc_order": alloc_order,
                                             "fallback_order": fallback_order,
                                             "alloc_migratetype": alloc_migratetype,
                                             "fallback_migratetype": fallback_migratetype})

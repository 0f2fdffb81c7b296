"""A full snapshot of a machine's state, to prove that a rejected call changed nothing.

:func:`snapshot` walks everything the kernel object reaches (zones with their free lists, pcp lists
and counters; the memory map's flags, orders and refcounts; memcg's counters, stocks and ledger;
page_owner, the stack depot, lockdep, the CPUs' contexts and the reports) and turns it into nested
tuples of plain values, so two snapshots compare with ``==``.  Order is kept where the kernel's is
meaningful (a free list is a list).  An object reached a second time is written as a reference to
the first visit, so shared structure and cycles cost nothing.  Left out: the last run's event log
and the scenario being set up (``spawn``/``on_interrupt``), which are not the machine's state.
:func:`diff` names the first parts that differ, for a readable assertion.
"""
from __future__ import annotations

from array import array
from collections import deque
from types import FunctionType, MethodType, ModuleType

_SKIP = {"events", "_last_run", "_tasks", "_sources", "announced"}  # announced: scheduler scratch
_PLAIN = (int, float, str, bytes, bool, type(None))


def _freeze(obj, seen: dict):
    if isinstance(obj, _PLAIN):
        return obj
    if isinstance(obj, (bytearray, array)):
        return (type(obj).__name__, bytes(obj))
    if isinstance(obj, (FunctionType, MethodType, ModuleType, type)) or type(obj).__name__ == "greenlet":
        return ("code", getattr(obj, "__qualname__", type(obj).__name__))
    key = id(obj)
    if key in seen:
        return ("ref", seen[key])
    seen[key] = len(seen)
    if isinstance(obj, dict):
        return ("dict", tuple((_freeze(k, seen), _freeze(v, seen)) for k, v in obj.items()))
    if isinstance(obj, (list, tuple, deque)):
        return (type(obj).__name__, tuple(_freeze(v, seen) for v in obj))
    if isinstance(obj, (set, frozenset)):
        return ("set", tuple(sorted((_freeze(v, seen) for v in obj), key=repr)))
    fields = dict(getattr(obj, "__dict__", {}))
    for cls in type(obj).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if hasattr(obj, name):
                fields[name] = getattr(obj, name)
    return (type(obj).__name__, tuple((name, _freeze(value, seen)) for name, value in sorted(fields.items())
                                      if name not in _SKIP))


def snapshot(kernel) -> tuple:
    """The machine's whole state as nested tuples (see the module docstring)."""
    return _freeze(kernel, {})


def diff(before: tuple, after: tuple, limit: int = 5) -> list[str]:
    """Paths to the first ``limit`` parts where two snapshots differ."""
    out: list[str] = []

    def walk(a, b, path):
        if len(out) >= limit or a == b:
            return
        if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                label = x[0] if isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) else i
                walk(x, y, f"{path}/{label}")
            return
        out.append(f"{path}: {str(a)[:120]} -> {str(b)[:120]}")

    walk(before, after, "kernel")
    return out

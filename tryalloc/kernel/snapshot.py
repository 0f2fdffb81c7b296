"""A machine's state, captured once: put back before each execution of a search, or compared after a call.

One capture serves two uses. *Restore:* a stateless search (:mod:`tryalloc.kernel.explore`) used to boot
a fresh :class:`~tryalloc.kernel.machine.Kernel` for every execution; booting is a third of a short
execution's time, and collecting the last machine's garbage another tenth. :func:`snapshot` instead
records, once, the contents of every mutable object reachable from the booted kernel (the memory map's
arrays, the zones' free lists, the per-CPU pagesets, memcg, the stack depot, page_owner, BPF, debug
objects, the probes, the fault-injection state, lockdep, the CPUs and their contexts...), and
:func:`restore` puts each object's contents back *in place*: arrays are slice-copied, lists, deques,
dicts and sets refilled, instance attributes reset. Identities are kept, so every cross-reference (a
page's memory map, the zonelists' zones, a lock's owner) is as after boot, and whatever a scenario added
after boot (its tasks, its locks, a memcg it made) is simply no longer referenced.

The capture is generic rather than a hook per subsystem: a subsystem that boots new state is covered
without registering anything, and a kind of object the capture does not know how to put back (a
greenlet, a file) makes :func:`snapshot` raise :class:`~tryalloc.errors.ContextError` naming where it
was found, instead of being silently shared between executions.  ``tests/test_snapshot.py`` checks a
restored machine against a freshly booted one, field by field, for every subsystem.

*Compare:* :func:`changes` reads the live objects against the same saved contents and names where they
differ, which is how the fuzz test (``tests/test_fuzz_api.py``) proves that a rejected call left the
machine's whole state as it was.  That snapshot leaves out :data:`NOT_STATE`, what a call replaces
without it being the machine's state (the last run and its event log, the scenario being set up, the
scheduler's scratch).
"""
from __future__ import annotations

import random
import types
from array import array
from collections import deque
from dataclasses import dataclass

from ..config import Config
from ..errors import ContextError

#: Attributes that are not the machine's state, left out of a snapshot taken to compare: the last run
#: and its event log (every call replaces them), the scenario being set up (``spawn``/``on_interrupt``)
#: and what the scheduler notes at a point for the reduction.
NOT_STATE = frozenset({"events", "_last_run", "_tasks", "_sources", "announced"})

#: Values that cannot change, so they are part of the state by value and need no putting back.
_IMMUTABLE = (int, float, complex, str, bytes, bool, type(None), range, frozenset, Config,
              types.FunctionType, types.BuiltinFunctionType, types.MethodType, type, types.ModuleType)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The saved contents of one machine: ``(container, saved, put, where)`` for every list, array,
    dict, deque and set (an object's attributes are its ``__dict__``), put back only where they differ
    (a C-level comparison; most of a small machine is untouched by one execution), and ``(object,
    saved, put, where)`` for the few that cannot be compared cheaply (slotted objects, random
    generators); ``where`` is the path from the kernel to the object, for :func:`changes`."""

    kernel: object
    compared: tuple
    always: tuple


def snapshot(kernel, state_only: bool = False) -> Snapshot:
    """Record ``kernel``'s state (it must not be running).  For a search take it right after boot, of
    everything; to compare, ``state_only`` leaves out the attributes named in :data:`NOT_STATE`."""
    compared: list = []
    always: list = []
    seen: set[int] = set()
    stack = [(kernel, "kernel")]
    while stack:
        obj, where = stack.pop()
        if isinstance(obj, _IMMUTABLE) or id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, tuple):  # immutable itself, but it may hold mutable objects
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(obj))
            continue
        stack.extend(_save(obj, where, compared, always, state_only))
    return Snapshot(kernel, tuple(compared), tuple(always))


def restore(kernel, snap: Snapshot) -> None:
    """Put ``kernel`` back in the state :func:`snapshot` recorded."""
    if snap.kernel is not kernel:
        raise ContextError("this snapshot was taken of another machine")
    for target, saved, put, _ in snap.compared:
        if target != saved:
            put(target, saved)
    for target, saved, put, _ in snap.always:
        put(target, saved)


def changes(kernel, snap: Snapshot, limit: int = 5) -> list[str]:
    """Where ``kernel`` differs from ``snap`` (at most ``limit`` paths, each with the saved and the
    current contents, shortened); empty when the state is the one recorded."""
    if snap.kernel is not kernel:
        raise ContextError("this snapshot was taken of another machine")
    out = []
    for target, saved, put, where in snap.compared + snap.always:
        now = _READ[put](target, saved)
        if now != saved and len(out) < limit:
            out.append(f"{where}: {str(saved)[:120]} -> {str(now)[:120]}")
    return out


def _put_sequence(target, saved) -> None:
    target[:] = saved


def _put_deque(target: deque, saved) -> None:
    target.clear()
    target.extend(saved)


def _put_mapping(target, saved) -> None:  # a dict or a set
    target.clear()
    target.update(saved)


def _put_slots(target, saved) -> None:
    for name, value in saved:
        object.__setattr__(target, name, value)


def _put_random(target: random.Random, saved) -> None:
    target.setstate(saved)


def _put_attributes(target, saved) -> None:
    """Put back the attributes of an object some of whose attributes are not state: those stay."""
    kept = {k: v for k, v in vars(target).items() if k in NOT_STATE}
    _put_mapping(vars(target), saved)
    vars(target).update(kept)


def _state_attributes(target) -> dict:
    return {k: v for k, v in vars(target).items() if k not in NOT_STATE}


#: How :func:`changes` reads an object's current contents, by the way it is put back (slotted
#: objects: the slots saved).
_READ = {_put_sequence: lambda target, saved: target, _put_deque: lambda target, saved: target,
         _put_mapping: lambda target, saved: target, _put_attributes: lambda target, saved: _state_attributes(target),
         _put_slots: lambda target, saved: tuple((name, getattr(target, name)) for name, _ in saved),
         _put_random: lambda target, saved: target.getstate()}


#: The package's own modules (``tryalloc.``, or a level's copy ``tryalloc_L3.`` of :func:`tryalloc.series.load`).
_PACKAGE = __name__.split(".")[0] + "."


def _save(obj, where: str, compared: list, always: list, state_only: bool) -> list:
    """Record how to put ``obj`` back; return the objects inside it, to visit next."""
    if isinstance(obj, (list, array, bytearray)):
        compared.append((obj, obj[:], _put_sequence, where))
        return [] if isinstance(obj, (array, bytearray)) else [(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, deque):
        compared.append((obj, deque(obj), _put_deque, where))
        return [(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        compared.append((obj, obj.copy(), _put_mapping, where))  # an OrderedDict stays one, so == keeps its order
        return [(v, f"{where}[{k!r}]") for k, v in obj.items()] + [(k, f"{where} key") for k in obj]
    if isinstance(obj, set):
        compared.append((obj, set(obj), _put_mapping, where))
        return [(v, f"{where} item") for v in obj]
    if isinstance(obj, random.Random):
        always.append((obj, obj.getstate(), _put_random, where))
        return []
    if not type(obj).__module__.startswith(_PACKAGE):
        raise ContextError(f"snapshot: cannot save {type(obj).__qualname__} at {where}")
    children = []
    if hasattr(obj, "__dict__"):
        if state_only and not NOT_STATE.isdisjoint(vars(obj)):
            fields = _state_attributes(obj)
            compared.append((obj, fields, _put_attributes, where))
        else:
            fields = vars(obj)
            compared.append((fields, dict(fields), _put_mapping, where))
        children += [(v, f"{where}.{k}") for k, v in fields.items()]
    slots = tuple((name, getattr(obj, name)) for cls in type(obj).__mro__ for name in getattr(cls, "__slots__", ())
                  if not (state_only and name in NOT_STATE) and hasattr(obj, name))
    if slots:
        always.append((obj, slots, _put_slots, where))
        children += [(v, f"{where}.{k}") for k, v in slots]
    return children

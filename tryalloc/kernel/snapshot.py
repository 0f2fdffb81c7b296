"""A booted machine's state, saved once and put back before each execution of a search.

A stateless search (:mod:`tryalloc.kernel.explore`) used to boot a fresh :class:`~tryalloc.kernel.machine.Kernel`
for every execution; booting is a third of a short execution's time, and collecting the last
machine's garbage another tenth.  :func:`snapshot` instead records, once, the contents of every
mutable object reachable from the booted kernel (the memory map's arrays, the zones' free lists,
the per-CPU pagesets, memcg, the stack depot, page_owner, BPF, debug objects, the probes, the
fault-injection state, lockdep, the CPUs and their contexts...), and :func:`restore` puts each
object's contents back *in place*: arrays are slice-copied, lists, deques, dicts and sets refilled,
instance attributes reset.  Identities are kept, so every cross-reference (a page's memory map, the
zonelists' zones, a lock's owner) is as after boot, and whatever a scenario added after boot (its
tasks, its locks, a memcg it made) is simply no longer referenced.

The capture is generic rather than a hook per subsystem: a subsystem that boots new state is covered
without registering anything, and a kind of object the capture does not know how to put back (a
greenlet, a file) makes :func:`snapshot` raise :class:`~tryalloc.errors.ContextError` naming where it
was found, instead of being silently shared between executions.  ``tests/test_snapshot.py`` checks a
restored machine against a freshly booted one, field by field, for every subsystem.
"""
from __future__ import annotations

import random
import types
from array import array
from collections import deque
from dataclasses import dataclass

from ..config import Config
from ..errors import ContextError

#: Values that cannot change, so they are part of the state by value and need no putting back.
_IMMUTABLE = (int, float, complex, str, bytes, bool, type(None), range, frozenset, Config,
              types.FunctionType, types.BuiltinFunctionType, types.MethodType, type, types.ModuleType)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The saved contents of one booted machine: ``(container, saved, put)`` for every list, array,
    dict, deque and set (an object's attributes are its ``__dict__``), put back only where they differ
    (a C-level comparison; most of a small machine is untouched by one execution), and ``(object,
    saved, put)`` for the few that cannot be compared cheaply (slotted objects, random generators)."""

    kernel: object
    compared: tuple
    always: tuple


def snapshot(kernel) -> Snapshot:
    """Record ``kernel``'s state (it must not be running: take it right after boot)."""
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
        stack.extend(_save(obj, where, compared, always))
    return Snapshot(kernel, tuple(compared), tuple(always))


def restore(kernel, snap: Snapshot) -> None:
    """Put ``kernel`` back in the state :func:`snapshot` recorded."""
    if snap.kernel is not kernel:
        raise ContextError("this snapshot was taken of another machine")
    for target, saved, put in snap.compared:
        if target != saved:
            put(target, saved)
    for target, saved, put in snap.always:
        put(target, saved)


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


def _save(obj, where: str, compared: list, always: list) -> list:
    """Record how to put ``obj`` back; return the objects inside it, to visit next."""
    if isinstance(obj, (list, array, bytearray)):
        compared.append((obj, obj[:], _put_sequence))
        return [] if isinstance(obj, (array, bytearray)) else [(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, deque):
        compared.append((obj, deque(obj), _put_deque))
        return [(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        compared.append((obj, obj.copy(), _put_mapping))  # an OrderedDict stays one, so == keeps its order
        return [(v, f"{where}[{k!r}]") for k, v in obj.items()] + [(k, f"{where} key") for k in obj]
    if isinstance(obj, set):
        compared.append((obj, set(obj), _put_mapping))
        return [(v, f"{where} item") for v in obj]
    if isinstance(obj, random.Random):
        always.append((obj, obj.getstate(), _put_random))
        return []
    if not type(obj).__module__.startswith("tryalloc."):
        raise ContextError(f"snapshot: cannot save {type(obj).__qualname__} at {where}")
    children = []
    if hasattr(obj, "__dict__"):
        compared.append((obj.__dict__, dict(obj.__dict__), _put_mapping))
        children += [(v, f"{where}.{k}") for k, v in vars(obj).items()]
    slots = tuple((name, getattr(obj, name)) for cls in type(obj).__mro__
                  for name in getattr(cls, "__slots__", ()) if hasattr(obj, name))
    if slots:
        always.append((obj, slots, _put_slots))
        children += [(v, f"{where}.{k}") for k, v in slots]
    return children

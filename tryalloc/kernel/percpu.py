"""Per-CPU variables (``DEFINE_PER_CPU``, ``this_cpu_ptr``, ``per_cpu_ptr``).

A :class:`PerCpu` holds one instance per CPU, made by a factory when the machine boots.  In C a
per-CPU variable is one symbol whose address is resolved against the running CPU; here the variable
is an object and :func:`this_cpu_ptr` picks the running CPU's instance.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from ..errors import ContextError
from . import sched

T = TypeVar("T")


class PerCpu(Generic[T]):
    """One ``T`` per CPU, named for reports (``memcg_stock``, ``zone->per_cpu_pageset``)."""

    def __init__(self, name: str, nr_cpus: int, factory: Callable[[int], T]):
        self.name = name
        self._slots: list[T] = [factory(cpu) for cpu in range(nr_cpus)]

    def __len__(self) -> int:
        return len(self._slots)

    def __iter__(self):
        return iter(self._slots)

    def __repr__(self) -> str:
        return f"<per-cpu {self.name} x{len(self._slots)}>"


def this_cpu_ptr(var: PerCpu[T]) -> T:
    """The running CPU's instance of ``var``."""
    return var._slots[sched._run.cpu.id]


def per_cpu_ptr(var: PerCpu[T], cpu: int) -> T:
    """CPU ``cpu``'s instance of ``var``."""
    if not 0 <= cpu < len(var._slots):
        raise ContextError(f"{var.name}: no CPU {cpu} (this machine has {len(var._slots)})")
    return var._slots[cpu]

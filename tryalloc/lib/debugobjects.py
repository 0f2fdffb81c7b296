"""Debug objects (``lib/debugobjects.c``), only as far as the free path meets them.

With ``CONFIG_DEBUG_OBJECTS_FREE`` every page free asks ``debug_check_no_obj_freed`` whether a tracked
object still lives in the memory going away; the walk holds the hash bucket's ``raw_spinlock_t``.
``free_pages_prepare`` does this for every free, ``FPI_TRYLOCK`` ones included -- the v6 gap R2.14,
which a 2026 fix (338ad1e84d15, S9.12.1) closed by skipping the check for them.  The model keeps one
bucket and tracks no objects: the lock is what matters.
"""
from __future__ import annotations

from ..kernel.locking import raw_spin_lock_irqsave, raw_spin_unlock_irqrestore, raw_spinlock_t
from ..kernel.machine import initcall
from ..kernel.sched import running


@initcall
def debug_objects_init(kernel) -> None:
    kernel.obj_hash_lock = raw_spinlock_t("obj_hash[].lock", cls="&obj_hash[i].lock")


def debug_check_no_obj_freed(page, order: int) -> None:
    """Look for live objects in the freed block, under the bucket lock (a spinning acquire)."""
    lock = running().kernel.obj_hash_lock
    flags = raw_spin_lock_irqsave(lock)
    raw_spin_unlock_irqrestore(lock, flags)

"""Stack depot: a deduplicating store of stack traces (``lib/stackdepot.c``, v6.13).

A user (page_owner, KASAN, KMSAN ...) hands the depot a stack trace and gets back a *handle*, a
small integer naming the one stored copy of that trace; saving the same trace again returns the same
handle.  Records live in *pools* of ``DEPOT_POOL_ORDER`` pages taken from the page allocator, so
saving a new trace may need a page allocation, and that allocation may not happen under the depot's
``pool_lock``.  ``stack_depot_save_flags`` therefore works in three steps
(https://elixir.bootlin.com/linux/v6.13/source/lib/stackdepot.c):

1. a lock-free lookup in the trace's hash bucket (RCU in the kernel; here a scheduling point, so an
   exploration can interleave other CPUs and NMIs between the lookup and what follows);
2. if the caller allows allocation (``STACK_DEPOT_FLAG_CAN_ALLOC``) and the depot wants a spare pool,
   allocate one *before* taking the lock (``prealloc``);
3. take ``pool_lock`` (a ``raw_spinlock_t``; in NMI only by trylock, bailing out with 0 if it is
   busy), look again, insert, keep an unused ``prealloc`` as the next spare pool; after the unlock,
   free a ``prealloc`` nobody wanted.

How the model differs from the C:

* A trace is a tuple of frame names (:func:`stack_trace_save` reads the model's own Python call
  stack), hashed with CRC-32 instead of ``jhash2`` so runs are reproducible across processes.
* A pool holds ``records_per_pool`` records of any length instead of 16 KiB of variable-size
  records; :class:`StackDepot` lets a test make it small to force new pools.
* ``WARN_ON_ONCE`` / ``WARN_ONCE`` are recorded in ``kernel.stack_depot.warnings`` and logged as a
  ``WARN`` event; the run goes on, as in the kernel.
* Only ``STACK_DEPOT_FLAG_CAN_ALLOC`` is modelled: ``STACK_DEPOT_FLAG_GET`` (refcounted, evictable
  records) has no user in this model; a caller passing it gets :class:`InvalidArgumentError`.

Patch 1 of the series (97769a53f117, R1.18) makes the save side honour ``gfpflags_allow_spinning``: it
adds that test to the two helpers that decide, :func:`_depot_can_alloc` and :func:`_depot_lock_pool`.
"""
from __future__ import annotations

import sys
import zlib
from dataclasses import dataclass, field

from ..errors import InvalidArgumentError
from ..include.gfp import (
    __GFP_NOLOCKDEP,
    __GFP_NOWARN,
    GFP_ATOMIC,
    GFP_KERNEL,
    GFP_ZONEMASK,
    check_gfp,
    gfpflags_allow_spinning,  # @since 1
)
from ..kernel.locking import (
    raw_spin_lock_irqsave,
    raw_spin_trylock_irqsave,
    raw_spin_unlock_irqrestore,
    raw_spinlock_t,
)
from ..kernel.machine import initcall
from ..kernel.preempt import in_nmi
from ..kernel.sched import declare_ops, event, point, running

declare_ops("stack_depot:lookup", "stack_depot:insert", "WARN")

#: ``DEPOT_POOL_ORDER``: a pool is an order-2, non-compound block.
DEPOT_POOL_ORDER = 2
#: ``DEPOT_POOLS_CAP``: the most pools the depot will ever allocate.
DEPOT_POOLS_CAP = 8192
#: ``CONFIG_STACKDEPOT_MAX_FRAMES``: longer traces are cut to this many frames.
STACKDEPOT_MAX_FRAMES = 64
#: Handle layout (``union handle_parts``): pool index plus one in the low bits, the record's slot above.
DEPOT_POOL_INDEX_BITS = 17
DEPOT_OFFSET_BITS = 10
#: Records per pool unless a scenario asks for fewer (a 16 KiB pool holds about this many 10-frame traces).
DEFAULT_RECORDS_PER_POOL = 128
#: ``STACK_BUCKET_NUMBER_ORDER_MAX``-style table size (the kernel sizes it at boot from memory size).
STACK_HASH_ORDER = 12

#: ``depot_flags_t`` bits.
STACK_DEPOT_FLAG_CAN_ALLOC = 1 << 0
STACK_DEPOT_FLAGS_MASK = STACK_DEPOT_FLAG_CAN_ALLOC

#: ``STACK_DEPOT_POISON``: what ``new_pool`` holds once the depot may open no more pools, so that no
#: save preallocates one (in C a poison pointer; here a marker object).
STACK_DEPOT_POISON = object()

#: ``REFCOUNT_SATURATED``: the count a record starts with when its user does not refcount it.
REFCOUNT_SATURATED = -(1 << 30)

#: Modules whose frames are the machine's own "entry code": a trace stops at the first of them, as
#: ``filter_irq_stacks`` cuts a trace at the interrupt entry.
_ENTRY_PACKAGE = "tryalloc.kernel"


@dataclass(eq=False)
class stack_record:
    """One stored trace (``struct stack_record``).  ``count`` belongs to the user (page_owner keeps
    its per-stack page count there)."""

    hash: int
    entries: tuple
    handle: int
    count: int = REFCOUNT_SATURATED


@dataclass(eq=False)
class DepotPool:
    """One pool: the page block it lives in and the records carved from it so far."""

    page: object
    records: list = field(default_factory=list)


class StackDepot:
    """The depot's global state (``stack_table``, ``stack_pools``, ``new_pool`` ... in the C file),
    one per booted :class:`~tryalloc.kernel.machine.Kernel` as ``kernel.stack_depot``.  As in v6.13
    (https://elixir.bootlin.com/linux/v6.13/source/lib/stackdepot.c) ``new_pool`` alone says whether a
    spare pool is wanted; the pre-6.8 ``new_pool_required`` flag is gone."""

    def __init__(self):
        self.pool_lock = raw_spinlock_t("pool_lock")
        self.stack_table: dict[int, list[stack_record]] = {}
        self.stack_pools: list[DepotPool] = []
        # the spare pool page kept for when the current pool fills up; None: wanted, so the next
        # CAN_ALLOC save preallocates one; STACK_DEPOT_POISON: the depot is full, none is wanted
        self.new_pool = None
        self.warnings: list[str] = []
        self._records_per_pool = DEFAULT_RECORDS_PER_POOL
        self._max_pools = DEPOT_POOLS_CAP

    @property
    def records_per_pool(self) -> int:
        """How many records a pool holds.  Set it (to 1..2**DEPOT_OFFSET_BITS) before the first
        save to make pools fill up quickly."""
        return self._records_per_pool

    @records_per_pool.setter
    def records_per_pool(self, n: int) -> None:
        self._records_per_pool = _check_limit("records_per_pool", n, 1 << DEPOT_OFFSET_BITS)

    @property
    def max_pools(self) -> int:
        """``DEPOT_POOLS_CAP``: past it the depot stops allocating and saves of new traces fail."""
        return self._max_pools

    @max_pools.setter
    def max_pools(self, n: int) -> None:
        self._max_pools = _check_limit("max_pools", n, DEPOT_POOLS_CAP)

    @property
    def pools_num(self) -> int:
        return len(self.stack_pools)

    def nr_records(self) -> int:
        return sum(len(pool.records) for pool in self.stack_pools)

    def warn_once(self, message: str) -> None:
        """``WARN_ONCE``: record the first occurrence of ``message``, log it, carry on."""
        if message not in self.warnings:
            self.warnings.append(message)
            event("WARN", message)


def _check_limit(name: str, n: int, most: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= most:
        raise InvalidArgumentError(f"stack depot {name} must be an int in 1..{most}, got {n!r}")
    return n


@initcall
def stack_depot_init(kernel) -> None:
    """``stack_depot_init``: an empty table, no pools, a spare pool wanted."""
    kernel.stack_depot = StackDepot()


def _depot() -> StackDepot:
    return running().kernel.stack_depot


# --- traces -------------------------------------------------------------------------------------
def stack_trace_save(skipnr: int = 0, max_entries: int = STACKDEPOT_MAX_FRAMES) -> tuple:
    """The caller's stack trace, innermost frame first (``kernel/stacktrace.c: stack_trace_save``
    followed by ``filter_irq_stacks``).

    The frames are the names of the Python functions on the model's call stack, starting at the
    caller of this function (minus ``skipnr`` more) and ending before the machine's entry code
    (:mod:`tryalloc.kernel`): a task's trace stops at its start, an interrupt's at its entry, so an
    NMI's trace never includes the code it interrupted.
    """
    frame = sys._getframe(1 + skipnr)
    entries = []
    while frame is not None and len(entries) < max_entries:
        if frame.f_globals.get("__name__", "").startswith(_ENTRY_PACKAGE):
            break
        entries.append(frame.f_code.co_name)
        frame = frame.f_back
    return tuple(entries)


def _check_entries(entries) -> tuple:
    if not isinstance(entries, tuple) or not all(isinstance(e, str) and e for e in entries):
        raise InvalidArgumentError(f"a stack trace is a tuple of frame names, got {entries!r}")
    return entries[:STACKDEPOT_MAX_FRAMES]


def hash_stack(entries: tuple) -> int:
    """``hash_stack``: a 32-bit hash of the trace (CRC-32 here, ``jhash2`` in the kernel)."""
    return zlib.crc32("\0".join(entries).encode())


def _make_handle(pool_index: int, slot: int) -> int:
    return (pool_index + 1) | (slot << DEPOT_POOL_INDEX_BITS)


# --- the depot ----------------------------------------------------------------------------------
def find_stack(bucket: list, entries: tuple, hash_: int) -> stack_record | None:
    """``find_stack``: the record of ``entries`` in ``bucket``, if stored."""
    for record in bucket:
        if record.hash == hash_ and record.entries == entries:
            return record
    return None


def _depot_alloc_pool(alloc_flags: int):
    """Allocate a pool block with the caller's mask restricted as ``stack_depot_save_flags`` does:
    no zone modifiers, only the bits of ``GFP_ATOMIC | GFP_KERNEL | __GFP_NOLOCKDEP``, and quietly."""
    from ..mm import page_alloc  # imported late: page_alloc -> page_owner -> stackdepot -> page_alloc
    gfp = alloc_flags & ~GFP_ZONEMASK
    gfp &= GFP_ATOMIC | GFP_KERNEL | __GFP_NOLOCKDEP
    gfp |= __GFP_NOWARN
    return page_alloc.alloc_pages(gfp, DEPOT_POOL_ORDER)


#~ def _depot_free_pool(page) -> None:  # @until 2
def _depot_free_pool(page, allow_spin: bool) -> None:  # @since 2
    """Give back an unwanted pool page; a caller that may not spin frees it without spinning (patch 2,
    R2.13 -- a defensive branch: such a caller never preallocates, as ``can_alloc`` needs spinning)."""
    from ..mm import page_alloc
    # @since 2
    if not allow_spin:
        page_alloc.free_pages_nolock(page, DEPOT_POOL_ORDER)
        return
    # @end
    page_alloc.free_pages(page, DEPOT_POOL_ORDER)


def depot_keep_new_pool(depot: StackDepot, prealloc):
    """``depot_keep_new_pool`` (v6.13: https://elixir.bootlin.com/linux/v6.13/C/ident/depot_keep_new_pool):
    keep ``prealloc`` as the spare pool unless ``new_pool`` is already set (a spare, or the full
    depot's poison); returns what is left over for the caller to free (``None`` if it was kept)."""
    if depot.new_pool is not None:
        return prealloc
    depot.new_pool = prealloc
    return None


def depot_init_pool(depot: StackDepot, prealloc):
    """``depot_init_pool`` (v6.13: https://elixir.bootlin.com/linux/v6.13/C/ident/depot_init_pool):
    open a new current pool from the spare one, else from ``prealloc``.

    Returns ``(opened, prealloc)`` with ``prealloc`` set to ``None`` if it was used.  Afterwards
    ``new_pool`` is reset to ``None`` (another spare wanted) if the pool count *before* this one was
    below the cap, else to :data:`STACK_DEPOT_POISON`.  v6.13 tests the count before incrementing it,
    and the cap check above has just made sure it is below the cap, so the reset is always to ``None``:
    the save after the last pool opens still preallocates a spare that can never be used (kept, not
    freed).  A later kernel tests ``pools_num + 1``; the model keeps v6.13's test.
    """
    if depot.pools_num >= depot.max_pools:
        depot.warn_once("Stack depot reached limit capacity")
        return False, prealloc
    if depot.new_pool is None and prealloc is not None:
        depot.new_pool, prealloc = prealloc, None
    if depot.new_pool is None:
        return False, prealloc
    opened = depot.new_pool
    depot.new_pool = None if depot.pools_num < depot.max_pools else STACK_DEPOT_POISON
    depot.stack_pools.append(DepotPool(opened))
    return True, prealloc


def depot_alloc_stack(depot: StackDepot, entries: tuple, hash_: int, prealloc):
    """``depot_alloc_stack``: carve a record for ``entries`` from the current pool, opening a new
    pool when it is full.  Returns ``(record or None, prealloc)``; called with ``pool_lock`` held."""
    current = depot.stack_pools[-1] if depot.stack_pools else None
    if current is None or len(current.records) >= depot.records_per_pool:
        started, prealloc = depot_init_pool(depot, prealloc)
        if not started:
            return None, prealloc
        current = depot.stack_pools[-1]
    record = stack_record(hash_, entries, _make_handle(depot.pools_num - 1, len(current.records)))
    current.records.append(record)
    return record, prealloc


#~ def _depot_can_alloc(depot_flags: int) -> bool:  # @until 1
def _depot_can_alloc(depot_flags: int, allow_spin: bool) -> bool:  # @since 1
    """May this save allocate a pool?  In v6.13 the caller's ``STACK_DEPOT_FLAG_CAN_ALLOC`` alone
    decides; patch 1 also requires that the caller may spin (``gfpflags_allow_spinning``, R1.18)."""
    #~ return bool(depot_flags & STACK_DEPOT_FLAG_CAN_ALLOC)  # @until 1
    return bool(depot_flags & STACK_DEPOT_FLAG_CAN_ALLOC) and allow_spin  # @since 1


#~ def _depot_lock_pool(depot: StackDepot, can_alloc: bool):  # @until 1
def _depot_lock_pool(depot: StackDepot, can_alloc: bool, allow_spin: bool):  # @since 1
    """Take ``pool_lock``: the saved irq flags, or ``None`` if the save must give up.

    In NMI the lock may be held by the very context the NMI interrupted, so it is only tried (best
    effort), and asking to allocate there is a caller's bug worth a warning.  Elsewhere the lock is
    taken by spinning -- from patch 1 only if the caller may spin; one that may not only tries it too
    (R1.18, R1.19).
    """
    #~ if in_nmi():  # @until 1
    if in_nmi() or not allow_spin:  # @since 1
        if can_alloc:
            depot.warn_once("stack_depot_save_flags: can_alloc in NMI")
        return raw_spin_trylock_irqsave(depot.pool_lock)
    return raw_spin_lock_irqsave(depot.pool_lock)


def stack_depot_save_flags(entries: tuple, alloc_flags: int, depot_flags: int) -> int:
    """Store ``entries`` (or find it stored) and return its handle; 0 if it could not be stored.

    ``lib/stackdepot.c: stack_depot_save_flags`` (v6.13), in the three steps of the module docstring.  Raises
    :class:`~tryalloc.errors.InvalidArgumentError` (before touching the depot) for a trace that is
    not a tuple of frame names, a bad gfp mask or unknown ``depot_flags`` bits.
    """
    entries = _check_entries(entries)
    check_gfp(alloc_flags)
    if isinstance(depot_flags, bool) or not isinstance(depot_flags, int) or depot_flags & ~STACK_DEPOT_FLAGS_MASK:
        raise InvalidArgumentError(f"depot_flags {depot_flags!r}: only STACK_DEPOT_FLAG_CAN_ALLOC is modelled")
    if not entries:
        return 0
    depot = _depot()
    #~ can_alloc = _depot_can_alloc(depot_flags)  # @until 1
    allow_spin = gfpflags_allow_spinning(alloc_flags)  # @since 1
    can_alloc = _depot_can_alloc(depot_flags, allow_spin)  # @since 1
    hash_ = hash_stack(entries)
    bucket_index = hash_ & ((1 << STACK_HASH_ORDER) - 1)
    bucket = depot.stack_table.setdefault(bucket_index, [])

    point("stack_depot:lookup", f"stack_table[{bucket_index}]")
    found = find_stack(bucket, entries, hash_)
    if found is not None:
        return found.handle

    # No allocation is possible under pool_lock, so get a spare pool first if one is wanted.
    prealloc = _depot_alloc_pool(alloc_flags) if can_alloc and depot.new_pool is None else None

    #~ flags = _depot_lock_pool(depot, can_alloc)  # @until 1
    flags = _depot_lock_pool(depot, can_alloc, allow_spin)  # @since 1
    if flags is not None:
        found = find_stack(bucket, entries, hash_)  # another CPU may have stored it meanwhile
        if found is None:
            found, prealloc = depot_alloc_stack(depot, entries, hash_, prealloc)
            if found is not None:
                bucket.insert(0, found)  # list_add_rcu: visible to lock-free lookups from here on
                event("stack_depot:insert", f"stack_table[{bucket_index}]")
        if prealloc is not None:
            prealloc = depot_keep_new_pool(depot, prealloc)
        raw_spin_unlock_irqrestore(depot.pool_lock, flags)
    if prealloc is not None:
        #~ _depot_free_pool(prealloc)  # nobody wanted it  # @until 2
        _depot_free_pool(prealloc, allow_spin)  # nobody wanted it  # @since 2
    return found.handle if found is not None else 0


def stack_depot_save(entries: tuple, alloc_flags: int) -> int:
    """``stack_depot_save``: :func:`stack_depot_save_flags` with ``STACK_DEPOT_FLAG_CAN_ALLOC``."""
    return stack_depot_save_flags(entries, alloc_flags, STACK_DEPOT_FLAG_CAN_ALLOC)


def depot_fetch_stack(depot: StackDepot, handle: int) -> stack_record | None:
    """``depot_fetch_stack``: the record behind ``handle`` in ``depot`` (``None`` for 0).  A handle
    the depot never gave out raises :class:`~tryalloc.errors.InvalidArgumentError` (the kernel
    warns with ``WARN`` and returns NULL)."""
    if isinstance(handle, bool) or not isinstance(handle, int) or handle < 0:
        raise InvalidArgumentError(f"stack depot handle must be a non-negative int, got {handle!r}")
    if handle == 0:
        return None
    pool_index = (handle & ((1 << DEPOT_POOL_INDEX_BITS) - 1)) - 1
    slot = handle >> DEPOT_POOL_INDEX_BITS
    if not 0 <= pool_index < depot.pools_num or slot >= len(depot.stack_pools[pool_index].records):
        raise InvalidArgumentError(f"stack depot handle {handle:#x} was never handed out")
    return depot.stack_pools[pool_index].records[slot]


def __stack_depot_get_stack_record(handle: int) -> stack_record | None:
    """``__stack_depot_get_stack_record``: the record behind ``handle`` on the running machine."""
    return depot_fetch_stack(_depot(), handle)


def stack_depot_fetch(handle: int) -> tuple:
    """``stack_depot_fetch``: the trace stored under ``handle`` (empty for handle 0)."""
    record = depot_fetch_stack(_depot(), handle)
    return record.entries if record is not None else ()

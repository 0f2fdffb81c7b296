"""page_owner: who allocated each page, and who freed it last (``mm/page_owner.c``, v6.13).

With ``page_owner=on`` (``Config(page_owner=True)``) the allocator calls :func:`set_page_owner` from
``post_alloc_hook`` and :func:`reset_page_owner` from ``free_pages_prepare``.  Each saves the current
stack trace in the stack depot and records the handle for every page of the block; a per-stack
counter (the depot record's ``count``) says how many base pages each allocation stack holds now.

That makes every allocation and every free a stack depot save, so page_owner drags the depot's
``pool_lock`` and its pool allocation into the allocator's paths: the reason patches 1 and 2 of the
series touch it (97769a53f117 and 8c57b687e833; R1.18, R2.12) and why a 2025 fix (S9.13.1, likely c83aab85e181)
stops page_owner spinning on the allocation side.

Where the model differs:

* The alloc and free handles live in the memory map (``page.owner_alloc_handle`` /
  ``owner_free_handle``); the rest of ``struct page_owner`` (order, gfp mask, the "allocated" bit) in
  :class:`PageExt`, arrays indexed by pfn, the model's ``page_ext``.  No pid, tgid or timestamps.
* The kernel registers a *dummy* stack (returned when page_owner re-enters itself) and a *failure*
  stack (when the depot cannot save) in the depot at boot.  The model cannot allocate at boot, so
  :data:`dummy_handle` and :data:`failure_handle` are sentinels the depot never issues (pool field 0);
  the views print them by name, and no per-stack count is kept for them.
* The list node ``add_stack_record_to_list`` gets from ``kmalloc`` is logged as a ``kmalloc`` event;
  the model has no slab allocator, so the allocation always succeeds.
"""
from __future__ import annotations

from array import array

from ..errors import ConfigError, InvalidArgumentError

#~ from ..include.gfp import __GFP_NOWARN, format_gfp  # @until 6.15
from ..include.gfp import __GFP_NOWARN, format_gfp, gfpflags_allow_spinning  # @since 6.15
from ..kernel.locking import spin_lock_irqsave, spin_unlock_irqrestore, spinlock_t
from ..kernel.machine import initcall
from ..kernel.sched import declare_ops, event, running, this_cpu
from ..lib import stackdepot
from ..lib.stackdepot import DEPOT_POOL_INDEX_BITS, REFCOUNT_SATURATED
from ..series.mutants import fixed  # @since 6.15

declare_ops("kmalloc", "WARN")

#: ``PAGE_OWNER_STACK_DEPTH``: frames kept per trace.
PAGE_OWNER_STACK_DEPTH = 16
#: Sentinel handles (see the module docstring): page_owner re-entered, and the depot failed.
dummy_handle = 1 << DEPOT_POOL_INDEX_BITS
failure_handle = 2 << DEPOT_POOL_INDEX_BITS
_SENTINELS = {dummy_handle: "(page_owner re-entered: dummy stack)",
              failure_handle: "(stack depot save failed: failure stack)"}

#: ``enum page_ext_flags`` bits page_owner uses.
PAGE_EXT_OWNER = 1 << 0
PAGE_EXT_OWNER_ALLOCATED = 1 << 1


class PageExt:
    """``page_ext`` for page_owner: the fields of ``struct page_owner`` the model keeps, per pfn."""

    def __init__(self, nr_pages: int):
        self.flags = bytearray(nr_pages)
        self.order = bytearray(nr_pages)
        self.gfp_mask = array("I", [0]) * nr_pages


class PageOwner:
    """page_owner's global state: ``page_ext``, ``stack_list`` with its lock, and the tasks inside
    page_owner right now (``current->in_page_owner``)."""

    def __init__(self, nr_pages: int):
        self.page_ext = PageExt(nr_pages)
        self.stack_list: list = []  # depot records, newest first
        self.stack_list_lock = spinlock_t("stack_list_lock")
        self.in_page_owner: set = set()


@initcall
def init_page_owner(kernel) -> None:
    """``init_page_owner``: only with ``page_owner=on``; otherwise the hooks stay no-ops."""
    cfg = kernel.config
    kernel.page_owner = PageOwner(cfg.nr_nodes * cfg.pages_per_node) if cfg.page_owner else None


# --- saving stacks ------------------------------------------------------------------------------
def save_stack(flags: int) -> int:
    """``save_stack``: the caller's trace saved in the depot with ``flags``.

    While the current task is already inside page_owner (the depot allocating a pool, which runs
    ``post_alloc_hook`` again) it returns :data:`dummy_handle` instead of recursing; an interrupt
    shares ``current`` with the task it interrupted, so it gets the dummy handle too, as in the kernel.
    The trace skips ``save_stack`` and its caller (the kernel's ``skipnr`` of 2), so it starts at the
    ``set_page_owner``/``reset_page_owner`` wrapper (inlined away in C).
    """
    owner = running().kernel.page_owner
    current = this_cpu().task
    if current in owner.in_page_owner:
        return dummy_handle
    owner.in_page_owner.add(current)
    try:
        entries = stackdepot.stack_trace_save(skipnr=2, max_entries=PAGE_OWNER_STACK_DEPTH)
        handle = stackdepot.stack_depot_save(entries, flags)
    finally:
        owner.in_page_owner.discard(current)
    return handle or failure_handle


def _stack_record(handle: int):
    return None if handle in _SENTINELS else stackdepot.__stack_depot_get_stack_record(handle)


def add_stack_record_to_list(owner: PageOwner, record, gfp_mask: int) -> None:
    """``add_stack_record_to_list``: link a stack seen for the first time into ``stack_list``.

    The kernel ``kmalloc``s the list node (with ``gfp_mask``'s nested form) and then takes
    ``stack_list_lock`` with irqs saved; both may spin, whatever ``gfp_mask`` says, until the 2025 fix
    (S9.13.1, likely c83aab85e181; release 6.18 of the model) skips this step for a mask that forbids
    spinning: the handle is still recorded in page_ext, the stack just stays off ``stack_list``.
    """
    # @since 6.15
    if not gfpflags_allow_spinning(gfp_mask) and fixed("stack-record-spins"):
        return
    # @end
    event("kmalloc", "stack_list node")
    flags = spin_lock_irqsave(owner.stack_list_lock)
    owner.stack_list.insert(0, record)
    spin_unlock_irqrestore(owner.stack_list_lock, flags)


def inc_stack_record_count(owner: PageOwner, handle: int, gfp_mask: int, nr_base_pages: int) -> None:
    """``inc_stack_record_count``: a record's count starts saturated; the first user sets it to 1
    (and lists the stack), then each allocation adds its base pages."""
    record = _stack_record(handle)
    if record is None:
        return
    if record.count == REFCOUNT_SATURATED:
        record.count = 1
        add_stack_record_to_list(owner, record, gfp_mask)
    record.count += nr_base_pages


def dec_stack_record_count(handle: int, nr_base_pages: int) -> None:
    """``dec_stack_record_count``: the block's pages leave their allocation stack."""
    record = _stack_record(handle)
    if record is None:
        return
    record.count -= nr_base_pages
    if record.count == 0:
        event("WARN", f"dec_stack_record_count: refcount went to 0 for {handle:#x} handle")


# --- the hooks ----------------------------------------------------------------------------------
def __set_page_owner(page, order: int, gfp_mask: int) -> None:
    """``__set_page_owner``: record the allocating stack on all ``2**order`` pages of the block."""
    owner = running().kernel.page_owner
    handle = save_stack(gfp_mask)
    ext, mm = owner.page_ext, page.mem_map
    for pfn in range(page.pfn, page.pfn + (1 << order)):
        mm.owner_alloc_handle[pfn] = handle
        ext.order[pfn] = order
        ext.gfp_mask[pfn] = gfp_mask
        ext.flags[pfn] |= PAGE_EXT_OWNER | PAGE_EXT_OWNER_ALLOCATED
    inc_stack_record_count(owner, handle, gfp_mask, 1 << order)


def __reset_page_owner(page, order: int) -> None:
    """``__reset_page_owner``: record the freeing stack and release the allocation stack's count.

    The free stack is saved with ``GFP_NOWAIT | __GFP_NOWARN`` in v6.13; patch 2 narrows it to
    ``__GFP_NOWARN`` so the depot neither allocates nor spins on a free from any context (R2.12).
    """
    owner = running().kernel.page_owner
    alloc_handle = page.owner_alloc_handle
    #~ from ..include.gfp import GFP_NOWAIT  # @until 2
    #~ handle = save_stack(GFP_NOWAIT | __GFP_NOWARN)  # @until 2
    handle = save_stack(__GFP_NOWARN)  # @since 2
    ext, mm = owner.page_ext, page.mem_map
    for pfn in range(page.pfn, page.pfn + (1 << order)):
        mm.owner_free_handle[pfn] = handle
        ext.flags[pfn] &= ~PAGE_EXT_OWNER_ALLOCATED
    dec_stack_record_count(alloc_handle, 1 << order)


def set_page_owner(page, order: int, gfp: int) -> None:
    """``set_page_owner``: a no-op unless page_owner is on."""
    if running().kernel.page_owner is not None:
        __set_page_owner(page, order, gfp)


def reset_page_owner(page, order: int) -> None:
    """``reset_page_owner``: a no-op unless page_owner is on."""
    if running().kernel.page_owner is not None:
        __reset_page_owner(page, order)


# --- views (read the machine's state, inside or outside a run) ----------------------------------
def _owner(kernel) -> PageOwner:
    if kernel.page_owner is None:
        raise ConfigError("page_owner is off on this machine: boot it with Kernel(page_owner=True)")
    return kernel.page_owner


def _trace(kernel, handle: int) -> tuple:
    if handle in _SENTINELS:
        return (_SENTINELS[handle],)
    record = stackdepot.depot_fetch_stack(kernel.stack_depot, handle)
    return record.entries if record is not None else ()


def _frames(trace: tuple) -> list[str]:
    return [f" {frame}" for frame in trace]


def page_owner_info(kernel, pfn: int) -> dict:
    """What page_owner knows of ``pfn``: alloc and free handles and traces, order, gfp, allocated."""
    owner = _owner(kernel)
    page = kernel.mem_map.page(pfn)
    ext = owner.page_ext
    return {
        "pfn": pfn,
        "allocated": bool(ext.flags[pfn] & PAGE_EXT_OWNER_ALLOCATED),
        "order": ext.order[pfn],
        "gfp_mask": ext.gfp_mask[pfn],
        "alloc_handle": page.owner_alloc_handle,
        "alloc_stack": _trace(kernel, page.owner_alloc_handle),
        "free_handle": page.owner_free_handle,
        "free_stack": _trace(kernel, page.owner_free_handle),
    }


def read_page_owner(kernel) -> str:
    """The text of ``/sys/kernel/debug/page_owner``: one entry per allocated block (at its first
    pfn), its order, mask and allocation stack (``read_page_owner``/``print_page_owner``)."""
    owner = _owner(kernel)
    ext, mm = owner.page_ext, kernel.mem_map
    out = []
    pfn = 0
    while pfn < len(ext.flags):
        if not ext.flags[pfn] & PAGE_EXT_OWNER_ALLOCATED:
            pfn += 1
            continue
        order = ext.order[pfn]
        out.append(f"Page allocated via order {order}, mask {ext.gfp_mask[pfn]:#x}({format_gfp(ext.gfp_mask[pfn])})")
        out.append(f"PFN {pfn:#x}")
        out.extend(_frames(_trace(kernel, mm.owner_alloc_handle[pfn])))
        out.append("")
        pfn += 1 << order
    return "\n".join(out)


def page_owner_stacks(kernel, threshold: int = 0) -> list[tuple[tuple, int]]:
    """``/sys/kernel/debug/page_owner_stacks/show_stacks``: every allocation stack seen, newest
    first, with the base pages it holds now; stacks holding fewer than ``threshold`` pages are left
    out (``count_threshold``)."""
    owner = _owner(kernel)
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
        raise InvalidArgumentError(f"threshold must be an int >= 0, got {threshold!r}")
    return [(record.entries, record.count - 1) for record in owner.stack_list if record.count - 1 >= threshold]

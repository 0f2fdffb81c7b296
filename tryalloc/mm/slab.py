"""``kmalloc_nolock`` and ``kfree_nolock``: small objects from any context, modelled on the nolock
page allocator.

Alexei Starovoitov's ``kmalloc_nolock()`` (mm/slub.c, merged for 6.18) gives a small object in any
context, NMI included, or NULL; it never spins on a lock: it trylocks the per-CPU slab structures
and, when it needs a new slab, gets its pages from the nolock page allocator (``alloc_pages_nolock``,
the 6.16 name of ``try_alloc_pages``, with 6.18's gfp argument).  The model has it from release 6.18
(``Config(release="6.18")``).  Sizes above ``KMALLOC_MAX_CACHE_SIZE`` (the largest kmalloc cache, 8 KiB with
4 KiB pages) get NULL: such objects would need the page allocator's large path.  ``kfree_nolock()``
gives an object back from any context.

Where the model differs: the model has no slab caches, so every object has pages of its own (order
``get_order(size)``: the kernel's ``kmalloc_large`` shape), from ``alloc_pages_nolock`` and back
through :func:`free_pages_nolock`.  So an object costs a whole page, charged (with ``__GFP_ACCOUNT``)
in whole pages to the memcg of the context, and each call can fail as the nolock allocator can (a
busy ``zone->lock``, the memcg limit).  The model overstates what objects cost and how often their
allocation fails, never the reverse; the BPF arena is the only user.  ``gfp_flags`` may hold
``__GFP_ACCOUNT`` and ``__GFP_ZERO`` (what the kernel allows besides ``__GFP_NO_OBJ_EXT``); the page
comes zeroed either way.
"""
from __future__ import annotations

from ..errors import InvalidArgumentError
from ..include.gfp import __GFP_ACCOUNT, __GFP_ZERO

# @since 6.15
from ..kernel.sched import running
from ..series.mutants import fixed
from .page_alloc import alloc_pages_nolock, free_pages_nolock

# @end

#: Page size of the model's machines (x86-64): ``PAGE_SHIFT``, ``PAGE_SIZE``.
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
#: The largest kmalloc cache (``KMALLOC_SHIFT_HIGH`` is ``PAGE_SHIFT + 1`` in SLUB): 8 KiB.
KMALLOC_MAX_CACHE_SIZE = 2 * PAGE_SIZE
#: ``sizeof(void *)`` on a 64-bit kernel: an array of page pointers takes this much per entry.
POINTER_SIZE = 8


class kmalloc_obj:
    """One object: its ``size`` in bytes, the pages behind it and their ``order``, ``slots`` (room for
    ``size // POINTER_SIZE`` pointers, what an array of page pointers is) and ``payload`` (what a
    structure stored in it holds)."""

    __slots__ = ("size", "page", "order", "slots", "payload")

    def __init__(self, size: int, page, order: int):
        self.size = size
        self.page = page
        self.order = order
        self.slots: list = [None] * (size // POINTER_SIZE)
        self.payload = None

    def __repr__(self) -> str:
        return f"<kmalloc_obj {self.size} bytes on pfn {self.page.pfn:#x}>"


def get_order(size: int) -> int:
    """The smallest order whose block holds ``size`` bytes (``get_order``)."""
    return max(0, (size - 1).bit_length() - PAGE_SHIFT)


# @since 6.15
def kmalloc_nolock(size: int, gfp_flags: int, node: int) -> kmalloc_obj | None:
    """An object of ``size`` bytes, or NULL (``None``): for ``size`` 0 or above
    :data:`KMALLOC_MAX_CACHE_SIZE`, and when ``alloc_pages_nolock`` fails.  Flags other than
    ``__GFP_ACCOUNT | __GFP_ZERO`` or a size that is not an int raise
    :class:`~tryalloc.errors.InvalidArgumentError` (the kernel warns once and returns NULL); so does a
    machine of a release before 6.18, which has no such function."""
    if not fixed("nolock-gfp-argument"):
        raise InvalidArgumentError(f"kmalloc_nolock arrived in 6.18 (this machine runs release "
                                   f"{running().kernel.config.release})")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise InvalidArgumentError(f"kmalloc_nolock: size must be an int >= 0, got {size!r}")
    if not isinstance(gfp_flags, int) or gfp_flags & ~(__GFP_ACCOUNT | __GFP_ZERO):
        raise InvalidArgumentError(f"kmalloc_nolock: gfp_flags {gfp_flags!r} may hold only __GFP_ACCOUNT "
                                   f"and __GFP_ZERO")
    if not size or size > KMALLOC_MAX_CACHE_SIZE:
        return None
    order = get_order(size)
    page = alloc_pages_nolock(gfp_flags & __GFP_ACCOUNT, node, order)
    return kmalloc_obj(size, page, order) if page is not None else None


def kfree_nolock(obj: kmalloc_obj | None) -> None:
    """Give ``obj`` back from any context (NULL is ignored)."""
    if obj is None:
        return
    if not isinstance(obj, kmalloc_obj):
        raise InvalidArgumentError(f"kfree_nolock: {obj!r} did not come from kmalloc_nolock")
    free_pages_nolock(obj.page, obj.order)
# @end

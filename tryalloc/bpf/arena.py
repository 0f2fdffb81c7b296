"""The BPF arena map (``kernel/bpf/arena.c``, ``kernel/bpf/range_tree.c``), as of v6.13.

An arena is a sparse region of up to 4 GiB shared by BPF programs and one user-space mapping.  Pages
come on demand, from a program (kfunc ``bpf_arena_alloc_pages``) or from a user page fault
(:func:`arena_vm_fault`), always through :func:`~tryalloc.bpf.syscall.bpf_map_alloc_pages`, so they
are charged to the map's memcg.  Which page offsets are free is kept in a range tree; both paths
take ``arena->lock``, a mutex, and allocate with ``GFP_KERNEL``, so they may only run where sleeping
is allowed (v6.13 ``kernel/bpf/arena.c``; R6.5 for why that stays so after the series).

Where the model differs:

* ``arena->lock`` is a :class:`mutex` defined here, a stand-in for ``struct mutex``: a sleeping lock
  with a ``might_sleep`` check, no lockdep class, no optimistic spinning.
* The range tree is a sorted list of disjoint free ``[start, end)`` runs; ``range_tree_find`` is best
  fit, the smallest run that is large enough, lowest offset first among equals (the kernel breaks
  ties by its size tree's order).  Clearing never fails here (the kernel's node allocation can).
* The kernel vm area is a dict from page offset to page (the kernel maps at ``kern_vm_start`` plus
  the lower 32 bits of the user address, a bijection with the offset); the user mapping is a dict of
  the pages faulted in, each holding the extra reference the fault took.
* ``kvcalloc`` of the page-pointer array is a ``might_sleep`` check and a list.

**The any-context arena** (Puranjay Mohan's follow-ups after the series, on top of its nolock
allocator; the details are not confirmed against a release, so the model labels them unconfirmed).  A
machine booted with it (:func:`arena_any_context`) builds the same arena with three changes, and its
kfuncs may be called from any context, NMI included:

* ``arena->lock`` becomes ``arena->spinlock``, a resilient spinlock
  (:mod:`tryalloc.kernel.locking.rqspinlock`) taken with interrupts off: an acquire that fails (the
  lock is held on this CPU, or the wait timed out) makes the allocation return NULL, the fault
  ``VM_FAULT_RETRY`` and the free deferred;
* the page-pointer array comes from ``kmalloc_nolock`` (:mod:`tryalloc.mm.slab`), charged to the map's
  memcg (``__GFP_ACCOUNT`` between ``bpf_map_memcg_enter`` and ``_exit``), capped at
  ``KMALLOC_MAX_CACHE_SIZE`` and reused batch after batch; the pages come from ``bpf_map_alloc_pages``
  under the spinlock, where interrupts are off, so always from the nolock allocator; mapping them is
  ``apply_to_page_range`` (the dict assignment here);
* a free that may not sleep, or that cannot get the lock, is *deferred*: a ``kmalloc_nolock``'ed span
  goes onto the per-arena llist ``free_spans`` and ``irq_work_queue`` asks for the worker; the model
  folds the irq_work (whose only job is ``schedule_work``) into marking ``free_work_pending``, and
  :func:`arena_free_worker` is what a kworker runs in task context.  If the span cannot be allocated the
  pages stay mapped until the arena is destroyed, as in the kernel.
"""
from __future__ import annotations

from bisect import bisect_right

from ..errors import InvalidArgumentError, LockUsageError

#~ from ..include.gfp import __GFP_ZERO, GFP_KERNEL  # @until 6
from ..include.gfp import __GFP_ACCOUNT
from ..kernel.locking.rqspinlock import raw_res_spin_lock_irqsave, raw_res_spin_unlock_irqrestore, rqspinlock_t
from ..kernel.preempt import might_sleep, preemptible
from ..kernel.sched import declare_ops, event, point, running, wait_for
from ..lib.llist import llist_add, llist_del_all, llist_for_each, llist_head, llist_node
from ..mm import slab  # @since 6.15
from ..mm.memcontrol import set_active_memcg
from ..mm.page import page_ref_inc, put_page_testzero
from ..mm.page_alloc import NUMA_NO_NODE, __free_page
from ..mm.slab import KMALLOC_MAX_CACHE_SIZE, PAGE_SHIFT, PAGE_SIZE, POINTER_SIZE
from ..series.mutants import fixed  # @since 6.15
from .syscall import BPF_MAP_TYPE_ARENA, bpf_map, bpf_map_alloc_pages, bpf_map_get_memcg, bpf_map_init_from_attr

declare_ops("mutex_lock", "mutex_unlock", "sleep", "acquired", "arena_alloc_pages")
declare_ops("arena_free_deferred", "arena_free_leaked", "irq_work_queue", "arena_free_worker")  # @since 6.15

PAGE_MASK = ~(PAGE_SIZE - 1)
SZ_4G = 1 << 32
# map flags (include/uapi/linux/bpf.h)
BPF_F_MMAPABLE = 1 << 10
BPF_F_SEGV_ON_FAULT = 1 << 17
BPF_F_NO_USER_CONV = 1 << 18
#: What the fault handler returns when user space must get SIGSEGV (``VM_FAULT_SIGSEGV``).
VM_FAULT_SIGSEGV = "VM_FAULT_SIGSEGV"
#: What it returns when the fault should be tried again (``VM_FAULT_RETRY``): the any-context arena
#: could not take its spinlock.
VM_FAULT_RETRY = "VM_FAULT_RETRY"  # @since 6.15
#: ``sizeof(struct arena_free_span)``: an llist node, a user address and a page count.
ARENA_FREE_SPAN_SIZE = 24  # @since 6.15
#: The user address the model gives an arena created without ``map_extra`` (mmap would choose one).
DEFAULT_USER_VM_START = 1 << 32


# --- a stand-in for struct mutex ------------------------------------------------------------------
class mutex:
    """A sleeping lock: a waiter sleeps (is not runnable) until the owner unlocks."""

    sleeps_on_rt = True

    def __init__(self, name: str):
        self.name = name
        self.cls = name
        self.owner = None

    def __repr__(self) -> str:
        return f"<mutex {self.name}: {self.owner.name if self.owner else 'free'}>"


def mutex_lock(lock: mutex) -> None:
    might_sleep(f"mutex_lock({lock.name})")
    point("mutex_lock", lock)
    ctx = running().cpu.top
    if lock.owner is ctx:
        raise LockUsageError(f"mutex_lock({lock.name}) by {ctx.name}: it already holds it")
    if lock.owner is not None:
        event("sleep", lock)
        wait_for(lock)
    lock.owner = ctx
    ctx.held.append(lock)
    event("acquired", lock)


def mutex_unlock(lock: mutex) -> None:
    ctx = running().cpu.top
    if lock.owner is not ctx:
        raise LockUsageError(f"mutex_unlock({lock.name}) by {ctx.name}: it does not hold it")
    point("mutex_unlock", lock)
    ctx.held.remove(lock)
    lock.owner = None


# --- the range tree of free page offsets ---------------------------------------------------------
class range_tree:
    """Free page offsets as sorted, disjoint, non-adjacent ``[start, end)`` runs."""

    def __init__(self):
        self.runs: list[list[int]] = []

    def free_count(self) -> int:
        return sum(end - start for start, end in self.runs)


def range_tree_set(rt: range_tree, start: int, length: int) -> None:
    """Mark ``[start, start+length)`` free, merging with neighbouring runs."""
    end = start + length
    keep = [r for r in rt.runs if r[1] < start or r[0] > end]
    touch = [r for r in rt.runs if not (r[1] < start or r[0] > end)]
    lo = min([start] + [r[0] for r in touch])
    hi = max([end] + [r[1] for r in touch])
    keep.append([lo, hi])
    rt.runs = sorted(keep)


def range_tree_clear(rt: range_tree, start: int, length: int) -> int:
    """Mark ``[start, start+length)`` used (reserved), splitting runs; returns 0."""
    end = start + length
    out = []
    for lo, hi in rt.runs:
        if hi <= start or lo >= end:
            out.append([lo, hi])
            continue
        if lo < start:
            out.append([lo, start])
        if hi > end:
            out.append([end, hi])
    rt.runs = out
    return 0


def is_range_tree_set(rt: range_tree, start: int, length: int) -> int:
    """0 if all of ``[start, start+length)`` is free, else ``-ESRCH`` (-3)."""
    i = bisect_right(rt.runs, [start, float("inf")]) - 1
    if i >= 0 and rt.runs[i][0] <= start and start + length <= rt.runs[i][1]:
        return 0
    return -3


def range_tree_find(rt: range_tree, length: int) -> int:
    """Start of the smallest free run of at least ``length`` pages, or ``-ENOENT`` (-2)."""
    fits = [(hi - lo, lo) for lo, hi in rt.runs if hi - lo >= length]
    return min(fits)[1] if fits else -2


# --- the arena map ----------------------------------------------------------------------------------
class bpf_arena:
    """``struct bpf_arena``: the map, its user range, kernel vm area, range tree and lock."""

    def __init__(self, map: bpf_map, user_vm_start: int):
        self.map = map
        self.user_vm_start = user_vm_start
        self.user_vm_end = user_vm_start + map.max_entries * PAGE_SIZE
        self.kern_vm: dict = {}  # page offset -> page (vm_area_map_pages)
        self.user_mapped: dict = {}  # page offset -> page faulted into the user mapping
        self.rt = range_tree()
        self.lock = mutex("arena->lock")
        # @since 6.15
        if arena_any_context(map.kernel):
            self.lock = rqspinlock_t("arena->spinlock")
            self.free_spans = llist_head("arena->free_spans")
            self.free_work_pending = False  # irq_work_queue'd, the worker not yet run
        # @end
        range_tree_set(self.rt, 0, map.max_entries)

    def __repr__(self) -> str:
        return f"<bpf_arena {self.map.max_entries} pages, {len(self.kern_vm)} mapped>"


# @since 6.15
def arena_any_context(kernel) -> bool:
    """Does ``kernel`` build the any-context arena?  From release 2026 (``Config(release="2026")``; the
    follow-ups were merged into bpf-next late in 2025, the release is unconfirmed), unless the mutant
    ``sleepable-arena`` puts the arena of patch 6 back (:func:`tryalloc.series.mutants.fixed`)."""
    return fixed("sleepable-arena", kernel)


def is_any_context(arena: bpf_arena) -> bool:
    """Was ``arena`` built any-context (a resilient spinlock, nolock arrays, deferred frees)?"""
    return isinstance(arena.lock, rqspinlock_t)
# @end


def arena_lock(arena: bpf_arena) -> tuple[int, object]:
    """Take the arena's lock: ``(0, flags)``, or ``(error, None)`` when the any-context arena's
    resilient spinlock gives up (the mutex always gets it, sleeping if it must)."""
    # @since 6.15
    if is_any_context(arena):
        return raw_res_spin_lock_irqsave(arena.lock)
    # @end
    mutex_lock(arena.lock)
    return 0, None


def arena_unlock(arena: bpf_arena, flags) -> None:
    """Release what :func:`arena_lock` took."""
    # @since 6.15
    if is_any_context(arena):
        raw_res_spin_unlock_irqrestore(arena.lock, flags)
        return
    # @end
    mutex_unlock(arena.lock)


def page_array(arena: bpf_arena, page_cnt: int) -> tuple[list | None, object]:
    """The array of page pointers ``arena_alloc_pages`` fills: ``(slots, allocation)``.

    As the series left it, ``kvcalloc(page_cnt, GFP_KERNEL)``: it may sleep.  Any-context, at most
    ``KMALLOC_MAX_CACHE_SIZE`` worth of pointers from ``kmalloc_nolock(__GFP_ACCOUNT)`` with the map's
    memcg active, reused for as many batches as ``page_cnt`` needs; ``(None, None)`` if that fails."""
    # @since 6.15
    if is_any_context(arena):
        entries = min(page_cnt, KMALLOC_MAX_CACHE_SIZE // POINTER_SIZE)
        old = set_active_memcg(bpf_map_get_memcg(arena.map))  # bpf_map_memcg_enter
        obj = slab.kmalloc_nolock(entries * POINTER_SIZE, __GFP_ACCOUNT, NUMA_NO_NODE)
        set_active_memcg(old)  # bpf_map_memcg_exit
        return (obj.slots, obj) if obj is not None else (None, None)
    # @end
    might_sleep("kvcalloc(GFP_KERNEL)")
    return [None] * page_cnt, None


def free_page_array(obj) -> None:
    """Give back the array of :func:`page_array` (``kvfree``; ``kfree_nolock`` any-context)."""
    # @since 6.15
    slab.kfree_nolock(obj)
    # @end


def arena_map_alloc(kernel, max_entries: int, map_flags: int = BPF_F_MMAPABLE, map_extra: int = 0,
                    memcg=None) -> bpf_arena:
    """Create an arena of ``max_entries`` pages at user address ``map_extra`` (``arena_map_alloc``).

    The kernel's checks, each an :class:`~tryalloc.errors.InvalidArgumentError` here (-EINVAL,
    -E2BIG, -ERANGE there): at least one page, ``BPF_F_MMAPABLE`` set and no unknown flag, a page
    aligned start, at most 4 GiB, and a range that does not cross a 4 GiB boundary.
    """
    if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries <= 0:
        raise InvalidArgumentError(f"arena: max_entries must be a positive int, got {max_entries!r}")
    if not map_flags & BPF_F_MMAPABLE or map_flags & ~(BPF_F_SEGV_ON_FAULT | BPF_F_MMAPABLE | BPF_F_NO_USER_CONV):
        raise InvalidArgumentError(f"arena: map_flags {map_flags:#x} must have BPF_F_MMAPABLE and no unknown flag")
    if map_extra & ~PAGE_MASK:
        raise InvalidArgumentError(f"arena: map_extra {map_extra:#x} is not page aligned")
    vm_range = max_entries * PAGE_SIZE
    if vm_range > SZ_4G:
        raise InvalidArgumentError(f"arena: {max_entries} pages exceed 4 GiB (E2BIG)")
    start = map_extra or DEFAULT_USER_VM_START
    if start >> 32 != (start + vm_range - 1) >> 32:
        raise InvalidArgumentError(f"arena: [{start:#x}, +{vm_range:#x}) crosses a 4 GiB boundary (ERANGE)")
    return bpf_arena(bpf_map_init_from_attr(kernel, BPF_MAP_TYPE_ARENA, max_entries, map_flags, memcg), start)


def compute_pgoff(arena: bpf_arena, uaddr: int) -> int:
    """The page offset of a user address in the arena (only its lower 32 bits count)."""
    return ((uaddr - arena.user_vm_start) & 0xFFFFFFFF) >> PAGE_SHIFT


def arena_alloc_pages(arena: bpf_arena, uaddr: int, page_cnt: int, node_id: int) -> int:
    """Allocate ``page_cnt`` zeroed pages at ``uaddr`` (0: anywhere free); their user address or 0.

    ``kernel/bpf/arena.c: arena_alloc_pages``.  Out-of-range or misaligned requests and a busy range
    return 0, as in the kernel (the caller is an untrusted program).  The page-pointer array first
    (:func:`page_array`), then under the arena's lock: reserve the offsets, then batch after batch
    (one batch unless the any-context array is shorter than ``page_cnt``) allocate through
    ``bpf_map_alloc_pages`` and map the pages into the kernel vm area; a failed batch un-reserves what
    is not mapped and frees what is.  Any-context, a lock that cannot be had returns 0 too.
    """
    page_cnt_max = (arena.user_vm_end - arena.user_vm_start) >> PAGE_SHIFT
    if page_cnt > page_cnt_max:
        return 0
    pgoff = 0
    if uaddr:
        if uaddr & ~PAGE_MASK:
            return 0
        pgoff = compute_pgoff(arena, uaddr)
        if pgoff > page_cnt_max - page_cnt:
            return 0
    pages, array = page_array(arena, page_cnt)
    if pages is None:
        return 0
    ret, flags = arena_lock(arena)
    if ret:
        free_page_array(array)
        return 0
    mapped = 0
    try:
        if uaddr:
            if is_range_tree_set(arena.rt, pgoff, page_cnt):
                return 0
        else:
            pgoff = range_tree_find(arena.rt, page_cnt)
            if pgoff < 0:
                return 0
        range_tree_clear(arena.rt, pgoff, page_cnt)
        while mapped < page_cnt:
            batch = min(page_cnt - mapped, len(pages))
            pages[:batch] = [None] * batch
            #~ if bpf_map_alloc_pages(arena.map, GFP_KERNEL | __GFP_ZERO, node_id, batch, pages):  # @until 6
            if bpf_map_alloc_pages(arena.map, node_id, batch, pages):  # @since 6
                range_tree_set(arena.rt, pgoff + mapped, page_cnt - mapped)
                return 0
            for i in range(batch):  # vm_area_map_pages; apply_to_page_range any-context
                arena.kern_vm[pgoff + mapped + i] = pages[i]
            mapped += batch
        event("arena_alloc_pages", f"pgoff {pgoff} x{page_cnt}")
        return arena.user_vm_start + pgoff * PAGE_SIZE
    finally:
        arena_unlock(arena, flags)
        if mapped < page_cnt and mapped:  # a later batch failed: free the batches already mapped
            arena_free_pages(arena, arena.user_vm_start + pgoff * PAGE_SIZE, mapped)
        free_page_array(array)


def zap_pages(arena: bpf_arena, pgoff: int, page_cnt: int) -> None:
    """Remove the pages from the user mapping, dropping the references the faults took."""
    for off in range(pgoff, pgoff + page_cnt):
        page = arena.user_mapped.pop(off, None)
        if page is not None:
            put_page_testzero(page)


def _zap_and_free(arena: bpf_arena, pgoff: int, page_cnt: int, pages: list) -> None:
    zap_pages(arena, pgoff, page_cnt)
    for page in pages:
        __free_page(page)


def _clear_range(arena: bpf_arena, pgoff: int, page_cnt: int) -> list:
    """Unmap ``[pgoff, pgoff+page_cnt)`` from the kernel vm area; the pages that were mapped there."""
    return [arena.kern_vm.pop(off) for off in range(pgoff, pgoff + page_cnt) if off in arena.kern_vm]


def arena_free_pages(arena: bpf_arena, uaddr: int, page_cnt: int) -> None:
    """Free ``page_cnt`` pages from ``uaddr`` (``arena_free_pages``): clipped to the arena, the offsets
    become free again, user mappings are zapped and every mapped page goes back with ``__free_page``.

    As the series left it, all of it under the mutex.  Any-context, the pages are collected under the
    spinlock and zapped and freed after it; where the caller may not sleep (the kernel asks whether
    the program is sleepable; the model asks :func:`~tryalloc.kernel.preempt.preemptible`), or the
    lock cannot be had, the free is deferred to :func:`arena_free_worker` instead.
    """
    uaddr &= 0xFFFFFFFF
    uaddr &= PAGE_MASK
    full_uaddr = (arena.user_vm_start & ~0xFFFFFFFF) + uaddr
    uaddr_end = min(arena.user_vm_end, full_uaddr + (page_cnt << PAGE_SHIFT))
    if full_uaddr >= uaddr_end:
        return
    page_cnt = (uaddr_end - full_uaddr) >> PAGE_SHIFT
    pgoff = compute_pgoff(arena, uaddr)
    # @since 6.15
    if is_any_context(arena) and not preemptible():
        return defer_free(arena, uaddr, page_cnt)
    # @end
    ret, flags = arena_lock(arena)
    # @since 6.15
    if ret:
        return defer_free(arena, uaddr, page_cnt)
    # @end
    range_tree_set(arena.rt, pgoff, page_cnt)
    pages = _clear_range(arena, pgoff, page_cnt)
    if isinstance(arena.lock, mutex):  # v6.13 zaps and frees under arena->lock
        _zap_and_free(arena, pgoff, page_cnt, pages)
        arena_unlock(arena, flags)
        return
    arena_unlock(arena, flags)  # any-context: drop the spinlock first
    _zap_and_free(arena, pgoff, page_cnt, pages)


# @since 6.15
def defer_free(arena: bpf_arena, uaddr: int, page_cnt: int) -> None:
    """Leave the free of ``page_cnt`` pages at ``uaddr`` to :func:`arena_free_worker`: a span from
    ``kmalloc_nolock`` onto ``arena->free_spans``, and the work queued.  Without a span the pages stay
    mapped until the arena is destroyed (event ``arena_free_leaked``)."""
    old = set_active_memcg(bpf_map_get_memcg(arena.map))
    span = slab.kmalloc_nolock(ARENA_FREE_SPAN_SIZE, __GFP_ACCOUNT, NUMA_NO_NODE)
    set_active_memcg(old)
    if span is None:
        event("arena_free_leaked", f"{uaddr:#x} x{page_cnt}")
        return
    span.payload = (uaddr, page_cnt)
    llist_add(llist_node(span), arena.free_spans)
    event("arena_free_deferred", f"{uaddr:#x} x{page_cnt}")
    irq_work_queue(arena)


def irq_work_queue(arena: bpf_arena) -> None:
    """Ask for the arena's free worker (``irq_work_queue(&arena->free_irq)``, whose handler only calls
    ``schedule_work``): the model marks the work pending for a kworker to run."""
    arena.free_work_pending = True
    event("irq_work_queue", arena.free_spans.name)


def arena_free_worker(arena: bpf_arena) -> None:
    """The deferred frees, in task context (``arena_free_worker``): under the spinlock, take every
    span off ``free_spans``, unmap its pages and mark its offsets free; then zap, free the spans and
    the pages.  If the lock cannot be had the work stays pending (the kernel calls ``schedule_work``
    again)."""
    ret, flags = raw_res_spin_lock_irqsave(arena.lock)
    if ret:
        return
    arena.free_work_pending = False
    event("arena_free_worker", arena.free_spans.name)
    spans = [node.payload for node in llist_for_each(llist_del_all(arena.free_spans))]
    pages = []
    for span in spans:
        uaddr, page_cnt = span.payload
        pgoff = compute_pgoff(arena, uaddr)
        pages += _clear_range(arena, pgoff, page_cnt)
        range_tree_set(arena.rt, pgoff, page_cnt)
    raw_res_spin_unlock_irqrestore(arena.lock, flags)
    for span in spans:
        uaddr, page_cnt = span.payload
        zap_pages(arena, compute_pgoff(arena, uaddr), page_cnt)
        slab.kfree_nolock(span)
    for page in pages:
        __free_page(page)
# @end


def arena_vm_fault(arena: bpf_arena, addr: int):
    """A user page fault at ``addr``: 0 with the page mapped, or :data:`VM_FAULT_SIGSEGV`.

    ``kernel/bpf/arena.c: arena_vm_fault``.  Under ``arena->lock``: a page already in the kernel vm
    area is reused; with ``BPF_F_SEGV_ON_FAULT`` a missing page is SIGSEGV; otherwise the offset is
    reserved and a page allocated through ``bpf_map_alloc_pages`` (failure: un-reserve, SIGSEGV).
    The page gets an extra reference for the user mapping.  A fault outside the arena's user range
    cannot happen (the VMA bounds it): :class:`~tryalloc.errors.InvalidArgumentError`.
    """
    if not arena.user_vm_start <= addr < arena.user_vm_end:
        raise InvalidArgumentError(f"arena_vm_fault: {addr:#x} is outside the arena's mapping "
                                   f"[{arena.user_vm_start:#x}, {arena.user_vm_end:#x})")
    pgoff = compute_pgoff(arena, addr)
    ret, flags = arena_lock(arena)
    # @since 6.15
    if ret:
        return VM_FAULT_RETRY
    # @end
    try:
        page = arena.kern_vm.get(pgoff)
        if page is None:
            if arena.map.map_flags & BPF_F_SEGV_ON_FAULT:
                return VM_FAULT_SIGSEGV
            range_tree_clear(arena.rt, pgoff, 1)
            got = [None]
            #~ if bpf_map_alloc_pages(arena.map, GFP_KERNEL | __GFP_ZERO, NUMA_NO_NODE, 1, got):  # @until 6
            if bpf_map_alloc_pages(arena.map, NUMA_NO_NODE, 1, got):  # @since 6
                range_tree_set(arena.rt, pgoff, 1)
                return VM_FAULT_SIGSEGV
            page = arena.kern_vm[pgoff] = got[0]
        if pgoff not in arena.user_mapped:
            page_ref_inc(page)
            arena.user_mapped[pgoff] = page
        return 0
    finally:
        arena_unlock(arena, flags)


def bpf_arena_alloc_pages(map, addr, page_cnt: int, node_id: int, flags: int):
    """kfunc: ``page_cnt`` pages at ``addr`` (``None``: anywhere); their user address or ``None`` (NULL).

    NULL for a map that is not an arena, non-zero ``flags`` or a zero count, and whenever
    :func:`arena_alloc_pages` fails.  The kfunc is registered sleepable (``KF_SLEEPABLE``); the
    any-context arena's is not.
    """
    if not isinstance(map, bpf_arena) or flags or not page_cnt:
        return None
    return arena_alloc_pages(map, addr or 0, page_cnt, node_id) or None


def bpf_arena_free_pages(map, ptr, page_cnt: int) -> None:
    """kfunc: free ``page_cnt`` pages at ``ptr``; ignored for a non-arena map, zero count or NULL."""
    if not isinstance(map, bpf_arena) or not page_cnt or not ptr:
        return
    arena_free_pages(map, ptr, page_cnt)

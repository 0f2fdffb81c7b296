"""memcg kmem charging at the baseline (about v6.13): ``mm/memcontrol.c`` and ``mm/page_counter.c``.

What the series touches (v6.13: https://elixir.bootlin.com/linux/v6.13/source/mm/memcontrol.c; patch 4,
01d37228d331, then makes the stock lock a trylock, rules R4.1-R4.10):

* a tree of :class:`mem_cgroup` with a root that is never charged; each has a ``memory``
  :class:`page_counter` whose parent is its parent's counter, so a charge walks up to the root;
* an :class:`obj_cgroup` per non-root memcg: what a kmem page is tagged with (``page->memcg_data``);
* the per-CPU charge cache ``memcg_stock_pcp`` under ``stock_lock``, a ``local_lock_t``.  On !RT that
  lock only disables interrupts, so an NMI that charges or uncharges while the interrupted context is
  inside it corrupts the stock: the model's ``percpu`` detector reports exactly that, which is what
  patch 4 of the series fixes with a trylock;
* ``try_charge_memcg`` with its batch, the stock refill of the surplus, the ``memory.high`` check
  after a charge ("done_restock": outside task context the memcg's high work item is scheduled, in
  task context the pages over high are noted for the return to user space), and the failure path;
* ``set_active_memcg`` / ``current_obj_cgroup`` and the allocator's hooks
  :func:`__memcg_kmem_charge_page` / :func:`__memcg_kmem_uncharge_page`.

Where the model differs (all on purpose, to keep to what the series needs):

* cgroup v2 only: no ``memsw`` counter (``do_memsw_account()`` is false); ``memory.high`` is a limit
  that only schedules work: the high work item and the return-to-user reclaim are counted
  (``mem_cgroup.high_work_scheduled``, ``MemcgState.nr_pages_over_high``), never run, and the
  synchronous over-high reclaim is not modelled; no byte-sized objcg stock, no ``mod_objcg_state``;
  vmstat-like statistics are one ``kmem`` page count per memcg.
* ``schedule_work`` and ``cgroup_file_notify`` take workqueue, kernfs and cgroup-file locks in the
  kernel; the model records them as events (``schedule_work``, ``cgroup_file_notify``) so a test can
  see a non-spinning charge reach them (the v6 gaps R4.7 and R4.9), without modelling those locks.
* css reference counts are not modelled; objcg references are (:attr:`obj_cgroup.refcnt`).
* Reclaim cannot free kmem, so a blocking charge over the limit is a ``might_sleep`` check, a
  scheduling point and an event, and then fails (or is forced); there is no OOM killer.
* ``page->memcg_data`` of a kmem page is ``objcg | MEMCG_DATA_KMEM`` in the kernel; here objcg ids are
  multiples of 4, standing for aligned addresses, so the same encoding works on an int.
* A ledger of charged pages (``kernel.memcg.charged``) exists only so :func:`memcg_invariants` can
  check that every charge is returned once.

Bad input (a memcg of another machine, a charge to an offline memcg, a negative count) raises
:class:`~tryalloc.errors.InvalidArgumentError` before anything changes.  A counter that would go
negative is the kernel's "page_counter underflow" warning, raised as
:class:`~tryalloc.errors.MemcgAccountingError` before the counters change.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError, ContextError, InvalidArgumentError, MemcgAccountingError
from ..include.gfp import (
    __GFP_HIGH,
    __GFP_NOFAIL,
    check_gfp,
    gfpflags_allow_blocking,
    gfpflags_allow_spinning,  # @since 4
)
from ..kernel.locking.local_lock import (
    local_lock_irqsave,
    #~ local_lock_t,  # @until 4
    local_trylock_irqsave,  # @since 4
    local_trylock_t,  # @since 4
    local_unlock_irqrestore,
)

# @since 6.15
from ..kernel.locking.localtry_lock import (
    localtry_lock_irqsave,
    localtry_lock_t,
    localtry_trylock_irqsave,
    localtry_unlock_irqrestore,
)

# @end
from ..kernel.machine import initcall
from ..kernel.percpu import PerCpu, per_cpu_ptr, this_cpu_ptr

#~ from ..kernel.preempt import in_task, might_sleep, smp_processor_id  # @until 6.15
from ..kernel.preempt import in_nmi, in_task, might_sleep, smp_processor_id  # @since 6.15
from ..kernel.sched import declare_ops, event, point, running, this_cpu
from ..series.mutants import fixed  # @since 6.15

declare_ops("try_to_free_mem_cgroup_pages", "memcg_charge_failed", "memcg_memory_event:max", "cgroup_file_notify",
            "schedule_work", "set_notify_resume", "mod_memcg_state")
declare_ops("memcg_uncharge_direct")  # @since 4

ENOMEM = 12
#: Pages a CPU pre-charges at once and at most keeps in its stock (``MEMCG_CHARGE_BATCH``).
MEMCG_CHARGE_BATCH = 64
#: ``PAGE_COUNTER_MAX``: the limit of a counter nobody limited.
PAGE_COUNTER_MAX = 2**62
#: ``page->memcg_data`` flag bits (``enum page_memcg_data_flags``).
MEMCG_DATA_OBJEXTS = 1 << 0
MEMCG_DATA_KMEM = 1 << 1
MEMCG_DATA_FLAGS_MASK = MEMCG_DATA_OBJEXTS | MEMCG_DATA_KMEM
#: ``current->flags`` bit of a task that may dip into reserves (reclaimers); memcg force-charges it.
PF_MEMALLOC = 0x00000800
#: The name of the stock lock in events and reports (the lockdep class of ``memcg_stock.stock_lock``).
STOCK_LOCK = "memcg_stock.stock_lock"


# --- page_counter (mm/page_counter.c) ----------------------------------------------------------
@dataclass(eq=False)
class page_counter:
    """``struct page_counter``: pages charged here and in every descendant, and the limit."""

    usage: int = 0
    max: int = PAGE_COUNTER_MAX
    high: int = PAGE_COUNTER_MAX  # memory.high: above it a charge schedules reclaim work, it is not refused
    parent: page_counter | None = field(default=None, repr=False)
    failcnt: int = 0
    memcg: mem_cgroup | None = field(default=None, repr=False)  # the memcg embedding it (the kernel uses container_of)

    def ancestors(self):
        """This counter, then its parent, up to the root's."""
        c = self
        while c is not None:
            yield c
            c = c.parent


def page_counter_try_charge(counter: page_counter, nr_pages: int) -> page_counter | None:
    """Charge ``nr_pages`` to ``counter`` and all its ancestors unless one would exceed its max.

    ``mm/page_counter.c: page_counter_try_charge``.  Returns ``None`` on success, else the counter
    that refused (the kernel returns a bool and the failing counter through ``**fail``); partial
    charges on the way up are undone, as the kernel does.
    """
    done = []
    for c in counter.ancestors():
        if c.usage + nr_pages > c.max:
            c.failcnt += 1
            for d in done:
                d.usage -= nr_pages
            return c
        c.usage += nr_pages
        done.append(c)
    return None


def page_counter_charge(counter: page_counter, nr_pages: int) -> None:
    """Charge ignoring the limits (``page_counter_charge``: the forced path)."""
    for c in counter.ancestors():
        c.usage += nr_pages


def page_counter_uncharge(counter: page_counter, nr_pages: int) -> None:
    """Return ``nr_pages`` to ``counter`` and its ancestors (``page_counter_uncharge``).

    The kernel warns "page_counter underflow" and clamps at 0; the model raises
    :class:`~tryalloc.errors.MemcgAccountingError` before changing any counter, since an underflow
    means some charge was returned twice.
    """
    for c in counter.ancestors():
        if c.usage < nr_pages:
            raise MemcgAccountingError(
                f"page_counter underflow: {c.usage - nr_pages} nr_pages={nr_pages} "
                f"(the counter holds {c.usage}: a charge was returned twice)",
                title="WARNING: page_counter underflow")
    for c in counter.ancestors():
        c.usage -= nr_pages


# --- the memcg tree ---------------------------------------------------------------------------
@dataclass(eq=False)
class obj_cgroup:
    """``struct obj_cgroup``: the handle a kmem page is charged through.

    ``memcg`` is the memcg it charges; when that memcg goes offline the objcg is reparented
    (``memcg_reparent_objcgs``), so pages charged before still uncharge somewhere alive.  ``refcnt``
    counts the memcg's own reference (dropped at offline) plus one per charged page.
    """

    id: int
    memcg: mem_cgroup
    refcnt: int = 1

    def __repr__(self) -> str:
        return f"<obj_cgroup {self.id:#x} of {self.memcg.name}>"


@dataclass(eq=False)
class mem_cgroup:
    """``struct mem_cgroup``: a name, its parent, its ``memory`` counter and its objcg."""

    name: str
    parent: mem_cgroup | None
    memory: page_counter
    objcg: obj_cgroup | None = None
    online: bool = True
    kmem: int = 0  # MEMCG_KMEM as memory.stat shows it: pages of this memcg and its descendants
    memory_events: dict = field(default_factory=lambda: {"max": 0})
    high_work_scheduled: int = 0  # times schedule_work(&memcg->high_work) was called

    def __repr__(self) -> str:
        return f"<mem_cgroup {self.name}{'' if self.online else ' (offline)'}>"


@dataclass(eq=False)
class memcg_stock_pcp:
    """``struct memcg_stock_pcp``: pages one CPU has pre-charged to one memcg.

    Charges never stock root (``try_charge`` returns early for it), but an uncharge through an objcg
    reparented to root does, as in the kernel's ``refill_stock``.
    """

    cached: mem_cgroup | None = None
    nr_pages: int = 0


class MemcgState:
    """A machine's memcg state: the tree, the per-CPU stock and the per-task and per-CPU memcgs."""

    def __init__(self, kernel):
        nr_cpus = kernel.config.nr_cpus
        self.root_mem_cgroup = mem_cgroup("root", None, page_counter())
        self.root_mem_cgroup.memory.memcg = self.root_mem_cgroup
        self.memcgs: dict[str, mem_cgroup] = {"root": self.root_mem_cgroup}
        self.objcgs: dict[int, obj_cgroup] = {}
        self.memcg_stock = PerCpu("memcg_stock", nr_cpus, lambda cpu: memcg_stock_pcp())
        #~ self.stock_lock = local_lock_t(STOCK_LOCK, nr_cpus)  # @until 4
        #~ self.stock_lock = local_trylock_t(STOCK_LOCK, nr_cpus)  # @since 4 @until 6.15
        # @since 6.15
        # 6.15-rc1 still has v7-v9's localtry_lock_t (S9.1); 6.15-rc2 brought local_trylock_t back (S9.4.1)
        lock_type = local_trylock_t if fixed("localtry-api", kernel) else localtry_lock_t
        self.stock_lock = lock_type(STOCK_LOCK, nr_cpus)
        # @end
        self.int_active_memcg: list[mem_cgroup | None] = [None] * nr_cpus  # DEFINE_PER_CPU(int_active_memcg)
        self.task_memcg: dict = {}  # Task -> mem_cgroup (the kernel reaches it through the task's css_set)
        self.charged: dict[int, tuple] = {}  # pfn -> (page, objcg, nr_pages, memcg charged): the ledger
        self.nr_pages_over_high: dict = {}  # Task -> current->memcg_nr_pages_over_high


@initcall
def mem_cgroup_init(kernel) -> None:
    """Boot: the root memcg alone, empty stocks (``mem_cgroup_init`` and ``mem_cgroup_css_alloc``)."""
    kernel.memcg = MemcgState(kernel)


def _state(kernel=None) -> MemcgState:
    return (kernel if kernel is not None else running().kernel).memcg


def _check_memcg(state: MemcgState, memcg, what: str) -> mem_cgroup:
    if not isinstance(memcg, mem_cgroup) or state.memcgs.get(memcg.name) is not memcg:
        raise InvalidArgumentError(f"{what}: {memcg!r} is not a memcg of this machine")
    return memcg


def _check_online(memcg: mem_cgroup, what: str) -> None:
    if not memcg.online:
        raise InvalidArgumentError(f"{what}: {memcg.name} is offline (removed); nothing can be charged to it")


def _check_nr(nr_pages, what: str) -> int:
    if isinstance(nr_pages, bool) or not isinstance(nr_pages, int) or nr_pages < 1:
        raise InvalidArgumentError(f"{what}: nr_pages must be a positive int, got {nr_pages!r}")
    return nr_pages


def memcg_check_usable(kernel, memcg, what: str) -> mem_cgroup:
    """Refuse (:class:`~tryalloc.errors.InvalidArgumentError`) a memcg of another machine or an
    offline one, for callers outside this module that are handed a memcg (BPF map creation)."""
    _check_memcg(_state(kernel), memcg, what)
    _check_online(memcg, what)
    return memcg


def _require_no_run(what: str) -> None:
    # creating and removing cgroups is the administrator's business, done between scenarios
    try:
        running()
    except ContextError:
        return
    raise ContextError(f"{what} is a setup step: call it between runs, not from model code")


def mem_cgroup_is_root(memcg: mem_cgroup) -> bool:
    return memcg.parent is None


def parent_mem_cgroup(memcg: mem_cgroup) -> mem_cgroup | None:
    return memcg.parent


def mem_cgroup_create(kernel, name: str, parent: mem_cgroup | None = None,
                      max: int = PAGE_COUNTER_MAX, high: int = PAGE_COUNTER_MAX) -> mem_cgroup:
    """``mkdir`` of a cgroup: a new online memcg under ``parent`` (root by default), limit ``max`` pages
    and ``memory.high`` ``high`` pages.

    ``mem_cgroup_css_alloc`` + ``mem_cgroup_css_online`` (which allocates the objcg,
    ``memcg_online_kmem``).  Raises :class:`~tryalloc.errors.ConfigError` without ``memcg``;
    :class:`~tryalloc.errors.InvalidArgumentError` for a taken name, a bad limit, or a parent that is
    offline or of another machine; :class:`~tryalloc.errors.ContextError` inside a run.
    """
    _require_no_run("mem_cgroup_create")
    if not kernel.config.memcg:
        raise ConfigError("mem_cgroup_create: this machine is built without memcg (memcg=False)")
    state = _state(kernel)
    parent = _check_memcg(state, parent if parent is not None else state.root_mem_cgroup, "mem_cgroup_create")
    _check_online(parent, "mem_cgroup_create")
    if not isinstance(name, str) or not name or name in state.memcgs:
        raise InvalidArgumentError(f"mem_cgroup_create: name {name!r} is empty, not a string or already taken")
    for what, value in (("max", max), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= PAGE_COUNTER_MAX:
            raise InvalidArgumentError(f"mem_cgroup_create: {what} must be an int in 0..PAGE_COUNTER_MAX, "
                                       f"got {value!r}")
    memcg = mem_cgroup(name, parent, page_counter(max=max, high=high, parent=parent.memory))
    memcg.memory.memcg = memcg
    objcg = obj_cgroup(4 * (len(state.objcgs) + 1), memcg)  # ids stand for aligned addresses
    memcg.objcg = objcg
    state.objcgs[objcg.id] = objcg
    state.memcgs[name] = memcg
    return memcg


def mem_cgroup_offline(kernel, memcg: mem_cgroup) -> None:
    """``rmdir`` of a cgroup: ``mem_cgroup_css_offline``.

    Drains every CPU's stock of this memcg (``drain_all_stock``: done directly, as the work items
    would, since this runs between scenarios) and reparents the objcg to the parent
    (``memcg_reparent_objcgs``: pages charged before keep uncharging, now from the parent).  The
    memcg's counter keeps whatever those pages charged to it, as a dying memcg's does.
    Refused (:class:`~tryalloc.errors.InvalidArgumentError`) for root, an offline memcg, one with
    online children, or one a task belongs to (``-EBUSY`` in the kernel).
    """
    _require_no_run("mem_cgroup_offline")
    state = _state(kernel)
    _check_memcg(state, memcg, "mem_cgroup_offline")
    if mem_cgroup_is_root(memcg):
        raise InvalidArgumentError("mem_cgroup_offline: the root memcg cannot be removed")
    _check_online(memcg, "mem_cgroup_offline")
    busy = [m.name for m in state.memcgs.values() if m.parent is memcg and m.online]
    busy += [t.name for t, m in state.task_memcg.items() if m is memcg]
    if busy:
        raise InvalidArgumentError(f"mem_cgroup_offline: {memcg.name} is busy (children or tasks: {', '.join(busy)})")
    for stock in state.memcg_stock:
        if stock.cached is memcg:
            drain_stock(stock)
    memcg.online = False
    objcg = memcg.objcg
    objcg.memcg = memcg.parent
    objcg.refcnt -= 1  # the memcg's own reference (percpu_ref_kill)
    memcg.objcg = None


# --- the per-CPU stock --------------------------------------------------------------------------
def _check_uncharge(state: MemcgState, memcg: mem_cgroup, nr_pages: int, what: str) -> None:
    _check_nr(nr_pages, what)
    _check_memcg(state, memcg, what)
    outstanding = memcg.memory.usage - sum(s.nr_pages for s in state.memcg_stock if s.cached is memcg)
    if nr_pages > outstanding:
        raise MemcgAccountingError(
            f"{what}: returning {nr_pages} pages to {memcg.name}, which has only {outstanding} charged "
            f"outside the per-CPU stocks (a charge returned twice, or never made)",
            title="WARNING: page_counter underflow")


def drain_stock(stock: memcg_stock_pcp) -> None:
    """Give the stock's pre-charged pages back to its memcg's counters and forget the memcg."""
    old = stock.cached
    if old is None:
        return
    if stock.nr_pages:
        page_counter_uncharge(old.memory, stock.nr_pages)
        stock.nr_pages = 0
    stock.cached = None


#~ def consume_stock(memcg: mem_cgroup, nr_pages: int) -> bool:  # @until 4
def consume_stock(memcg: mem_cgroup, nr_pages: int, gfp_mask: int) -> bool:  # @since 4
    """Take ``nr_pages`` from this CPU's stock if it holds that many for ``memcg``.

    ``mm/memcontrol.c: consume_stock``.  Baseline: the stock lock is always taken with
    ``local_lock_irqsave``.
    Patch 4 (v6 4/6, 01d37228d331): a trylock first; if that fails (this CPU is inside the stock
    lock: an NMI or a re-entry) a request that may not spin gives up at once (R4.3), and one that
    may falls back to the blocking lock, as before.
    From 6.15-rc2 (51339d99c013, S9.4.3) a request that may spin takes the lock at once and only a
    non-spinning one trylocks; release 6.15-rc1 keeps v9's try-first on the ``localtry_*`` API.
    """
    _check_nr(nr_pages, "consume_stock")
    if nr_pages > MEMCG_CHARGE_BATCH:
        return False
    state = _state()
    #~ flags = local_lock_irqsave(state.stock_lock)  # @until 4
    # @since 4 @until 6.15
    #~ flags = local_trylock_irqsave(state.stock_lock)
    #~ if flags is None:
    #~     if not gfpflags_allow_spinning(gfp_mask):
    #~         return False
    #~     flags = local_lock_irqsave(state.stock_lock)
    # @end
    # @since 6.15
    spin = gfpflags_allow_spinning(gfp_mask)
    flags = None if spin and not _localtry(state) else _stock_trylock_irqsave(state)
    if flags is None:
        if not spin:
            return False
        flags = _stock_lock_irqsave(state)
    # @end
    stock = this_cpu_ptr(state.memcg_stock)
    ret = memcg is stock.cached and stock.nr_pages >= nr_pages
    if ret:
        stock.nr_pages -= nr_pages
    #~ local_unlock_irqrestore(state.stock_lock, flags)  # @until 6.15
    _stock_unlock_irqrestore(state, flags)  # @since 6.15
    return ret


def __refill_stock(memcg: mem_cgroup, nr_pages: int) -> None:
    """Add ``nr_pages`` pre-charged pages of ``memcg`` to this CPU's stock (stock lock held).

    A stock caching another memcg is drained first; one above ``MEMCG_CHARGE_BATCH`` is drained.
    """
    stock = this_cpu_ptr(_state().memcg_stock)
    if stock.cached is not memcg:
        drain_stock(stock)
        stock.cached = memcg
    stock.nr_pages += nr_pages
    if stock.nr_pages > MEMCG_CHARGE_BATCH:
        drain_stock(stock)


def refill_stock(memcg: mem_cgroup, nr_pages: int) -> None:
    """``refill_stock``: :func:`__refill_stock` under the stock lock (baseline: a blocking local lock).

    Patch 4: the lock is only tried.  When this CPU is already inside it, the pages go straight back
    to the memcg's page counter instead (nothing for root), and the stock is not touched (R4.4).

    Bad input is refused before anything changes: a count that is not positive
    (:class:`~tryalloc.errors.InvalidArgumentError`), or more pages than ``memcg`` has charged outside
    the CPUs' stocks (:class:`~tryalloc.errors.MemcgAccountingError`, the kernel's "page_counter
    underflow", which its stock path would only meet at the next drain).
    """
    state = _state()
    _check_uncharge(state, memcg, nr_pages, "refill_stock")
    #~ flags = local_lock_irqsave(state.stock_lock)  # @until 4
    # @since 4
    #~ flags = local_trylock_irqsave(state.stock_lock)  # @until 6.15
    flags = _stock_trylock_irqsave(state)  # @since 6.15
    if flags is None:
        if mem_cgroup_is_root(memcg):
            return
        page_counter_uncharge(memcg.memory, nr_pages)  # no memsw counter in the model
        event("memcg_uncharge_direct", memcg.name)
        return
    # @end
    __refill_stock(memcg, nr_pages)
    #~ local_unlock_irqrestore(state.stock_lock, flags)  # @until 6.15
    _stock_unlock_irqrestore(state, flags)  # @since 6.15


def drain_local_stock() -> None:
    """Drain this CPU's stock (``drain_local_stock``, the work item of ``drain_all_stock``)."""
    state = _state()
    #~ flags = local_lock_irqsave(state.stock_lock)  # @until 6.15
    flags = _stock_lock_irqsave(state)  # @since 6.15
    drain_stock(this_cpu_ptr(state.memcg_stock))
    #~ local_unlock_irqrestore(state.stock_lock, flags)  # @until 6.15
    _stock_unlock_irqrestore(state, flags)  # @since 6.15


# @since 6.15
# The stock lock's API as the machine's release spells it: v7-v9's localtry_* on 6.15-rc1 (0aaddfb06882,
# S9.1.1-S9.2.1), the local_lock API on the local_trylock_t type from 6.15-rc2 (51339d99c013, S9.4.1).
def _localtry(state: MemcgState) -> bool:
    return isinstance(state.stock_lock, localtry_lock_t)


def _stock_lock_irqsave(state: MemcgState):
    return (localtry_lock_irqsave if _localtry(state) else local_lock_irqsave)(state.stock_lock)


def _stock_trylock_irqsave(state: MemcgState):
    return (localtry_trylock_irqsave if _localtry(state) else local_trylock_irqsave)(state.stock_lock)


def _stock_unlock_irqrestore(state: MemcgState, flags) -> None:
    (localtry_unlock_irqrestore if _localtry(state) else local_unlock_irqrestore)(state.stock_lock, flags)
# @end


# --- charging -----------------------------------------------------------------------------------
#~ def memcg_memory_event(memcg: mem_cgroup, event_name: str) -> None:  # @until 6.15
def __memcg_memory_event(memcg: mem_cgroup, event_name: str, allow_spin: bool) -> None:  # @since 6.15
    """Count a ``memory.events`` entry (``MEMCG_MAX`` ...) on ``memcg`` and notify the file's pollers.

    The kernel's ``cgroup_file_notify`` takes the cgroup-file and kernfs-notify locks and may queue
    work: the model records it as a ``cgroup_file_notify`` event.  Level 6.15 has the form of
    "memcg: skip cgroup_file_notify if spinning is not allowed" (Shakeel Butt,
    https://lore.kernel.org/r/20250905201606.66198-1-shakeel.butt@linux.dev; mainline id unconfirmed,
    release 6.18 in the model; S9.13a.1): the charge passes whether it may spin, and one that may not
    still counts the event but notifies nobody.  Before that release every event notifies.
    """
    memcg.memory_events[event_name] += 1
    event(f"memcg_memory_event:{event_name}", memcg.name)
    #~ event("cgroup_file_notify", memcg.name)  # @until 6.15
    # @since 6.15
    if allow_spin or not fixed("notify-under-nolock"):
        event("cgroup_file_notify", memcg.name)
    # @end


def try_charge_memcg(memcg: mem_cgroup, gfp_mask: int, nr_pages: int) -> int:
    """Charge ``nr_pages`` to ``memcg``: 0 or ``-ENOMEM``.  ``mm/memcontrol.c: try_charge_memcg``.

    From the stock if it can; else charge a whole batch to the counters and put the surplus in the
    stock ("done_restock"), then walk up for a memcg above ``memory.high``: outside task context its
    high work item is scheduled, in task context the pages are noted for the return to user space.
    Over a limit: retry once with just ``nr_pages``; a ``PF_MEMALLOC`` task
    is force-charged; a non-blocking mask gives up; a blocking one "reclaims" (a ``might_sleep``
    point that frees nothing here) and raises ``MEMCG_MAX``; then ``__GFP_NOFAIL`` or ``__GFP_HIGH``
    force the charge past the limit and anything else fails.  The root memcg is never charged
    (``try_charge`` returns 0 for it).

    Patch 4: the stock is consumed with the caller's mask (:func:`consume_stock`), and a charge that
    may not spin charges exactly ``nr_pages`` (R4.5), so there is no surplus to refill the stock with.
    The memory.high walk is unchanged (the v6 gap R4.7), and so is the forced path with its
    ``MEMCG_MAX`` event and file notification (the v6 gap of R4.9).
    """
    check_gfp(gfp_mask)
    _check_nr(nr_pages, "try_charge_memcg")
    state = _state()
    _check_memcg(state, memcg, "try_charge_memcg")
    _check_online(memcg, "try_charge_memcg")
    if mem_cgroup_is_root(memcg):
        return 0
    batch = max(MEMCG_CHARGE_BATCH, nr_pages)
    while True:  # retry:
        #~ if consume_stock(memcg, nr_pages):  # @until 4
        if consume_stock(memcg, nr_pages, gfp_mask):  # @since 4
            return 0
        # @since 4
        if not gfpflags_allow_spinning(gfp_mask):
            batch = nr_pages  # no surplus: no refill, and no flush of another memcg's stock
        # @end
        fail = page_counter_try_charge(memcg.memory, batch)
        if fail is None:
            break  # done_restock
        mem_over_limit = fail.memcg
        if batch > nr_pages:
            batch = nr_pages
            continue
        raised_max_event = False
        if this_cpu().task.flags & PF_MEMALLOC:  # current: the interrupted task outside task context
            #~ return _force(memcg, mem_over_limit, nr_pages, raised_max_event)  # @until 6.15
            return _force(memcg, mem_over_limit, nr_pages, raised_max_event, gfp_mask)  # @since 6.15
        if gfpflags_allow_blocking(gfp_mask):  # a mask that may block may spin
            #~ memcg_memory_event(mem_over_limit, "max")  # @until 6.15
            __memcg_memory_event(mem_over_limit, "max", True)  # @since 6.15
            raised_max_event = True
            might_sleep("try_to_free_mem_cgroup_pages")
            point("try_to_free_mem_cgroup_pages", mem_over_limit.name)
        if gfp_mask & (__GFP_NOFAIL | __GFP_HIGH):  # nomem: atomic and nofail charges go through
            #~ return _force(memcg, mem_over_limit, nr_pages, raised_max_event)  # @until 6.15
            return _force(memcg, mem_over_limit, nr_pages, raised_max_event, gfp_mask)  # @since 6.15
        event("memcg_charge_failed", mem_over_limit.name)
        return -ENOMEM
    if batch > nr_pages:
        refill_stock(memcg, batch - nr_pages)
    _check_high(memcg, batch)
    return 0


def _check_high(memcg: mem_cgroup, batch: int) -> None:
    # done_restock's walk: the first memcg up the tree above memory.high gets its reclaim scheduled
    state = _state()
    task_context = in_task()
    while memcg is not None:
        if memcg.memory.usage > memcg.memory.high:
            if not task_context:  # "don't bother a random interrupted task"
                memcg.high_work_scheduled += 1
                event("schedule_work", f"{memcg.name}->high_work")
            else:
                task = this_cpu().task
                state.nr_pages_over_high[task] = state.nr_pages_over_high.get(task, 0) + batch
                event("set_notify_resume", memcg.name)
            return
        memcg = parent_mem_cgroup(memcg)


# @until 6.15
#~ def _force(memcg: mem_cgroup, mem_over_limit: mem_cgroup, nr_pages: int, raised_max_event: bool) -> int:
# @end
# @since 6.15
def _force(memcg: mem_cgroup, mem_over_limit: mem_cgroup, nr_pages: int, raised_max_event: bool,
           gfp_mask: int) -> int:
# @end
    # force: past the limit, and the MEMCG_MAX event is raised once either way
    if not raised_max_event:
        #~ memcg_memory_event(mem_over_limit, "max")  # @until 6.15
        __memcg_memory_event(mem_over_limit, "max", gfpflags_allow_spinning(gfp_mask))  # @since 6.15
    page_counter_charge(memcg.memory, nr_pages)
    return 0


def set_active_memcg(memcg: mem_cgroup | None) -> mem_cgroup | None:
    """Charge this context's kernel allocations to ``memcg`` until restored; returns the old value.

    ``include/linux/sched/mm.h: set_active_memcg``: in task context ``current->active_memcg``,
    otherwise this CPU's ``int_active_memcg``.  ``None`` restores the default.  An offline memcg or
    one of another machine is refused before anything changes.
    """
    state = _state()
    if memcg is not None:
        _check_memcg(state, memcg, "set_active_memcg")
        _check_online(memcg, "set_active_memcg")
    if in_task():
        task = this_cpu().task
        old, task.active_memcg = task.active_memcg, memcg
    else:
        cpu = smp_processor_id()
        old, state.int_active_memcg[cpu] = state.int_active_memcg[cpu], memcg
    return old


def task_set_memcg(kernel, cpu: int, memcg: mem_cgroup) -> None:
    """Move CPU ``cpu``'s task into ``memcg`` (writing its pid to ``cgroup.procs``); a setup step.

    The kernel reaches a task's memcg through its css_set and caches the objcg in ``current->objcg``;
    the model keeps a per-task table in the memcg state instead of a field on ``Task``.
    """
    _require_no_run("task_set_memcg")
    state = _state(kernel)
    kernel._check_cpu(cpu)
    _check_memcg(state, memcg, "task_set_memcg")
    _check_online(memcg, "task_set_memcg")
    state.task_memcg[kernel.cpus[cpu].task] = memcg


def __get_obj_cgroup_from_memcg(memcg: mem_cgroup) -> obj_cgroup | None:
    """The first objcg from ``memcg`` up, stopping before root (which has none)."""
    while not mem_cgroup_is_root(memcg):
        if memcg.objcg is not None:
            return memcg.objcg
        memcg = memcg.parent
    return None


def current_obj_cgroup() -> obj_cgroup | None:
    """The objcg this context's kernel allocations are charged to, or ``None`` (no charge).

    ``mm/memcontrol.c: current_obj_cgroup``: in task context the active memcg, else the task's own
    objcg; outside task context ``int_active_memcg``, else nothing.  From a memcg, the first objcg
    walking up, stopping before root.

    From 6.16 (the NMI-safe kmem charging series, Shakeel Butt,
    https://lore.kernel.org/r/20250509232859.657525-1-shakeel.butt@linux.dev; ids and release
    unconfirmed, S9.13a.2): on an architecture with neither NMI-safe this_cpu ops nor NMI-safe cmpxchg
    (``Config(arch_nmi_safe=False)``, the kernel's ``CONFIG_MEMCG_NMI_UNSAFE``) nothing is charged in NMI.
    """
    # @since 6.15
    if in_nmi() and not running().kernel.config.arch_nmi_safe and fixed("nmi-unsafe-kmem-charge"):
        return None
    # @end
    state = _state()
    if in_task():
        task = this_cpu().task
        memcg = task.active_memcg or state.task_memcg.get(task)
    else:
        memcg = state.int_active_memcg[smp_processor_id()]
    return __get_obj_cgroup_from_memcg(memcg) if memcg is not None else None


def obj_cgroup_get(objcg: obj_cgroup) -> None:
    objcg.refcnt += 1


def obj_cgroup_put(objcg: obj_cgroup) -> None:
    if objcg.refcnt <= 0:
        raise MemcgAccountingError(f"obj_cgroup_put: {objcg!r} has no reference left to drop",
                                   title="WARNING: refcount_t: underflow; use-after-free")
    objcg.refcnt -= 1


def memcg_account_kmem(memcg: mem_cgroup, nr_pages: int) -> None:
    """Add ``nr_pages`` (may be negative) to ``MEMCG_KMEM`` of ``memcg`` and its ancestors.

    The kernel updates the memcg's own per-CPU counter and rstat folds it into the ancestors later;
    the model folds it at once, which is the value ``memory.stat`` shows after a flush.  The update
    is recorded as a ``mod_memcg_state`` event: in v6.13 it is an interrupts-off per-CPU add plus
    rstat's "updated" bookkeeping under a per-CPU raw spinlock, neither of them NMI-safe, so a kmem
    charge from NMI (patch 5 makes them possible) is the v6 gap R4.10, closed by the 2025 NMI-safe
    memcg series.  The model does not model that lock; the event marks where it would be taken.
    """
    event("mod_memcg_state", memcg.name)
    while memcg is not None:
        memcg.kmem += nr_pages
        memcg = memcg.parent


def obj_cgroup_charge_pages(objcg: obj_cgroup, gfp: int, nr_pages: int) -> int:
    """Charge ``nr_pages`` to the objcg's memcg and count them as kmem (``obj_cgroup_charge_pages``)."""
    memcg = objcg.memcg
    ret = try_charge_memcg(memcg, gfp, nr_pages)
    if ret == 0:
        memcg_account_kmem(memcg, nr_pages)
    return ret


def obj_cgroup_uncharge_pages(objcg: obj_cgroup, nr_pages: int) -> None:
    """Uncharge through the stock (``obj_cgroup_uncharge_pages`` -> ``refill_stock``)."""
    memcg = objcg.memcg
    memcg_account_kmem(memcg, -nr_pages)
    refill_stock(memcg, nr_pages)


def page_objcg(page) -> obj_cgroup | None:
    """The objcg a kmem page is charged through (``page_objcg``), or ``None`` if not charged."""
    data = page.memcg_data
    if not data & MEMCG_DATA_KMEM:
        return None
    objcg = _state().objcgs.get(data & ~MEMCG_DATA_FLAGS_MASK)
    if objcg is None:
        raise MemcgAccountingError(f"pfn {page.pfn:#x}: memcg_data {data:#x} names no obj_cgroup",
                                   title="BUG: Bad page memcg_data")
    return objcg


def memcg_kmem_online() -> bool:
    """Is kmem accounting on (``CONFIG_MEMCG`` in this model's configuration)?"""
    return running().kernel.config.memcg


def __memcg_kmem_charge_page(page, gfp: int, order: int) -> int:
    """Charge a freshly allocated page of ``2**order`` pages to the current objcg: 0 or ``-ENOMEM``.

    ``mm/memcontrol.c: __memcg_kmem_charge_page``, called by the allocator for ``__GFP_ACCOUNT``.
    With no objcg (root, or interrupt context without ``int_active_memcg``) nothing is charged.
    On success the page holds an objcg reference and ``memcg_data = objcg | MEMCG_DATA_KMEM``.
    """
    objcg = current_obj_cgroup()
    if objcg is None:
        return 0
    nr_pages = 1 << order
    ret = obj_cgroup_charge_pages(objcg, gfp, nr_pages)
    if ret:
        return ret
    obj_cgroup_get(objcg)
    page.memcg_data = objcg.id | MEMCG_DATA_KMEM
    _state().charged[page.pfn] = (page, objcg, nr_pages, objcg.memcg)
    return 0


def __memcg_kmem_uncharge_page(page, order: int) -> None:
    """Return the charge of a kmem page being freed (``__memcg_kmem_uncharge_page``).

    Through the stock (``refill_stock``), then the tag is cleared and the objcg reference dropped.
    """
    objcg = page_objcg(page)
    if objcg is None:
        return
    nr_pages = 1 << order
    state = _state()
    entry = state.charged.get(page.pfn)
    if entry is None or entry[1] is not objcg or entry[2] != nr_pages:
        raise MemcgAccountingError(
            f"uncharge of pfn {page.pfn:#x} order {order} through {objcg!r} does not match its charge {entry!r}",
            title="BUG: memcg kmem uncharge mismatch")
    obj_cgroup_uncharge_pages(objcg, nr_pages)
    page.memcg_data = 0
    del state.charged[page.pfn]
    obj_cgroup_put(objcg)


# --- checks and views ---------------------------------------------------------------------------
def _subtree(state: MemcgState, memcg: mem_cgroup) -> set:
    out = set()
    for m in state.memcgs.values():
        a = m
        while a is not None and a is not memcg:
            a = a.parent
        if a is memcg:
            out.add(m)
    return out


def memcg_invariants(kernel) -> None:
    """Check memcg's books; raise :class:`~tryalloc.errors.MemcgAccountingError` naming the first fault.

    For every online memcg (and root): no counter negative, and its usage equals the pages charged to
    it or a descendant that are still tagged, plus the pages CPUs' stocks hold for them.  Every page
    in the ledger still carries its tag, and every objcg's reference count is its memcg's own
    reference (while online) plus one per charged page.  Call it between runs, after a scenario.
    """
    state = _state(kernel)
    faults = []
    for memcg in state.memcgs.values():
        if memcg.memory.usage < 0 or memcg.kmem < 0:
            faults.append(f"{memcg.name}: negative counter (usage {memcg.memory.usage}, kmem {memcg.kmem})")
        if not memcg.online:
            continue
        sub = _subtree(state, memcg)
        pages = sum(nr for _, _, nr, charged in state.charged.values() if charged in sub)
        stock = sum(s.nr_pages for s in state.memcg_stock if s.cached in sub)
        if memcg.memory.usage != pages + stock:
            faults.append(f"{memcg.name}: usage {memcg.memory.usage} != charged pages {pages} + stock {stock}")
        if memcg.kmem != pages:
            faults.append(f"{memcg.name}: kmem {memcg.kmem} != charged pages {pages}")
    for page, objcg, _, _ in state.charged.values():
        if page.memcg_data != objcg.id | MEMCG_DATA_KMEM:
            faults.append(f"pfn {page.pfn:#x}: memcg_data {page.memcg_data:#x} lost its charge via {objcg!r}")
    for objcg in state.objcgs.values():
        own = 1 if objcg.memcg.objcg is objcg else 0
        refs = own + sum(1 for _, o, _, _ in state.charged.values() if o is objcg)
        if objcg.refcnt != refs:
            faults.append(f"{objcg!r}: refcnt {objcg.refcnt}, expected {refs}")
    if faults:
        raise MemcgAccountingError("\n".join(faults), title="BUG: memcg accounting broken")


def memcg_usage_view(kernel) -> list[dict]:
    """One row per memcg, tree order: name, parent, usage, max, kmem, online, objcg id."""
    state = _state(kernel)
    return [{"name": m.name, "parent": m.parent.name if m.parent else None, "usage": m.memory.usage,
             "max": m.memory.max, "kmem": m.kmem, "online": m.online, "objcg": m.objcg.id if m.objcg else None}
            for m in state.memcgs.values()]


def memcg_stock_view(kernel) -> list[dict]:
    """One row per CPU: the memcg its stock caches, the pages it holds, and who is inside stock_lock."""
    state = _state(kernel)
    rows = []
    for cpu in range(kernel.config.nr_cpus):
        stock = per_cpu_ptr(state.memcg_stock, cpu)
        holder = state.stock_lock.holder(cpu)
        rows.append({"cpu": cpu, "cached": stock.cached.name if stock.cached else None,
                     "nr_pages": stock.nr_pages, "locked_by": holder.name if holder else None})
    return rows

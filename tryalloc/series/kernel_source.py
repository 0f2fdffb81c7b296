"""Where the kernel defines what the model mirrors: one table, used by the book's ``{kernel}`` role and by
the API reference, so that every modelled function is one click from its C source at the exact version.

:data:`DEFINED_IN` maps a kernel name (function, macro, struct member) to the file that defines it at each
kernel version the book links: ``v6.13`` (the baseline, level 0), ``v6.15`` (the series as merged,
level 6.15), and the tags of the releases level 6.15 can run as (``v6.15-rc1``, ``v6.16``, ``v6.18``).
A name missing at a version did not exist there (``try_alloc_pages`` before v6.15).

:func:`url` builds the link.  For a name it is the source browser's identifier page at that tag
(elixir.bootlin.com lists the definition with its file and line, and links to that line); for a file
path (``mm/page_alloc.c``, optionally ``#L123``) it is the file at that tag.  The book writes::

    {kernel}`rmqueue_pcplist`              the baseline's definition (v6.13)
    {kernel}`try_alloc_pages@v6.15`        at another tag
    {kernel}`mm/page_alloc.c@v6.15#L7364`  a file (and line) at a tag

and a docstring writes the same role reST-style, with a colon on each side of ``kernel``.  A name or
tag the table does not know raises :class:`~tryalloc.errors.InvalidArgumentError`, which fails the
book's build.
"""
from __future__ import annotations

import re

from ..errors import InvalidArgumentError

#: The tags the book links, oldest first; the first is the default.  The later ones serve the releases
#: the last level can run as (``Config(release=...)``).
VERSIONS = ("v6.13", "v6.15-rc1", "v6.15", "v6.16", "v6.18")
BROWSER = "https://elixir.bootlin.com/linux"

_PA, _MC, _PO, _SD = "mm/page_alloc.c", "mm/memcontrol.c", "mm/page_owner.c", "lib/stackdepot.c"
_BOTH = ("v6.13", "v6.15")
_NEW = ("v6.15",)
_NOLOCK = ("v6.16", "v6.18")

# name -> (file, versions where it is defined there)
_TABLE: dict[str, tuple[str, tuple[str, ...]]] = {
    # the page allocator's entry points and fast path
    "alloc_pages": ("include/linux/gfp.h", _BOTH),
    "alloc_pages_node": ("include/linux/gfp.h", _BOTH),
    "__alloc_pages": ("include/linux/gfp.h", ("v6.13",)),
    "__alloc_pages_noprof": (_PA, _BOTH),
    "__alloc_pages_slowpath": (_PA, _BOTH),
    "prepare_alloc_pages": (_PA, _BOTH),
    "get_page_from_freelist": (_PA, _BOTH),
    "rmqueue": (_PA, _BOTH),
    "rmqueue_pcplist": (_PA, _BOTH),
    "__rmqueue_pcplist": (_PA, _BOTH),
    "rmqueue_bulk": (_PA, _BOTH),
    "rmqueue_buddy": (_PA, _BOTH),
    "__rmqueue": (_PA, _BOTH),
    "__rmqueue_smallest": (_PA, _BOTH),
    "__rmqueue_fallback": (_PA, _BOTH),
    "expand": (_PA, _BOTH),
    "page_del_and_expand": (_PA, _BOTH),
    "prep_new_page": (_PA, _BOTH),
    "post_alloc_hook": (_PA, _BOTH),
    "prep_compound_page": (_PA, _BOTH),
    "gfp_to_alloc_flags": (_PA, _BOTH),
    "alloc_flags_nofragment": (_PA, _BOTH),
    "should_fail_alloc_page": (_PA, _BOTH),
    "warn_alloc": (_PA, _BOTH),
    "zone_watermark_ok": (_PA, _BOTH),
    "__zone_watermark_ok": (_PA, _BOTH),
    "setup_per_zone_wmarks": (_PA, _BOTH),
    "nr_pcp_alloc": (_PA, _BOTH),
    "nr_pcp_free": (_PA, _BOTH),
    "pcp_allowed_order": (_PA, _BOTH),
    "pcp_spin_trylock": (_PA, _BOTH),
    "pcp_trylock_prepare": (_PA, _BOTH),
    "deferred_pages_enabled": (_PA, _BOTH),
    "has_unaccepted_memory": (_PA, _BOTH),
    # the series
    "try_alloc_pages": ("include/linux/gfp.h", _NEW),
    "try_alloc_pages_noprof": (_PA, _NEW),
    "free_pages_nolock": (_PA, _NEW),
    "add_page_to_zone_llist": (_PA, _NEW),
    "gfpflags_allow_spinning": ("include/linux/gfp.h", _NEW),
    "gfpflags_allow_blocking": ("include/linux/gfp.h", _BOTH),
    "ALLOC_TRYLOCK": ("mm/internal.h", _NEW),
    "local_trylock_t": ("include/linux/local_lock_internal.h", _NEW),
    # after 6.15: the releases of the last level
    "localtry_lock_t": ("include/linux/local_lock_internal.h", ("v6.15-rc1",)),
    "localtry_trylock_irqsave": ("include/linux/local_lock.h", ("v6.15-rc1",)),
    "alloc_pages_nolock": ("include/linux/gfp.h", _NOLOCK),
    "alloc_pages_nolock_noprof": (_PA, _NOLOCK),
    "alloc_frozen_pages_nolock_noprof": (_PA, ("v6.18",)),
    "cond_accept_memory": (_PA, ("v6.13", "v6.15", "v6.16")),
    "memcg_memory_event": ("include/linux/memcontrol.h", _BOTH),
    # the free path
    "__free_pages": (_PA, _BOTH),
    "___free_pages": (_PA, _NEW),
    "free_pages_prepare": (_PA, _BOTH),
    "free_unref_page": (_PA, ("v6.13",)),
    "free_unref_folios": (_PA, _BOTH),
    "free_unref_page_commit": (_PA, ("v6.13",)),
    "free_frozen_page_commit": (_PA, _NEW),
    "free_pcppages_bulk": (_PA, _BOTH),
    "free_one_page": (_PA, _BOTH),
    "__free_one_page": (_PA, _BOTH),
    "__free_pages_ok": (_PA, _BOTH),
    "split_large_buddy": (_PA, _BOTH),
    "drain_pages_zone": (_PA, _BOTH),
    "drain_local_pages": (_PA, _BOTH),
    "drain_all_pages": (_PA, _BOTH),
    "bad_page": (_PA, _BOTH),
    "free_tail_page_prepare": (_PA, _BOTH),
    "get_pfnblock_migratetype": (_PA, _BOTH),
    "dump_page": ("mm/debug.c", _BOTH),
    # memcg
    "__memcg_kmem_charge_page": (_MC, _BOTH),
    "__memcg_kmem_uncharge_page": (_MC, _BOTH),
    "obj_cgroup_charge_pages": (_MC, _BOTH),
    "try_charge_memcg": (_MC, _BOTH),
    "consume_stock": (_MC, _BOTH),
    "refill_stock": (_MC, _BOTH),
    "drain_stock": (_MC, _BOTH),
    "memcg_account_kmem": (_MC, _BOTH),
    "current_obj_cgroup": (_MC, _BOTH),
    "page_counter_try_charge": ("mm/page_counter.c", _BOTH),
    # page_owner and the stack depot
    "__set_page_owner": (_PO, _BOTH),
    "__reset_page_owner": (_PO, _BOTH),
    "save_stack": (_PO, _BOTH),
    "inc_stack_record_count": (_PO, _BOTH),
    "dec_stack_record_count": (_PO, _BOTH),
    "add_stack_record_to_list": (_PO, _BOTH),
    "stack_depot_save": (_SD, _BOTH),
    "stack_depot_save_flags": (_SD, _BOTH),
    "stack_depot_fetch": (_SD, _BOTH),
    "depot_alloc_stack": (_SD, _BOTH),
    "depot_keep_new_pool": (_SD, _BOTH),
    # locks and contexts
    "spin_trylock": ("include/linux/spinlock.h", _BOTH),
    "do_raw_spin_trylock": ("include/linux/spinlock.h", _BOTH),
    "local_lock_irqsave": ("include/linux/local_lock.h", _BOTH),
    "local_trylock": ("include/linux/local_lock.h", _NEW),
    "local_trylock_init": ("include/linux/local_lock.h", _NEW),
    "in_nmi": ("include/linux/preempt.h", _BOTH),
    "in_hardirq": ("include/linux/preempt.h", _BOTH),
    "preempt_count": ("include/asm-generic/preempt.h", _BOTH),
    "llist_add": ("include/linux/llist.h", _BOTH),
    "llist_del_all": ("include/linux/llist.h", _BOTH),
    "raw_res_spin_lock_irqsave": ("include/asm-generic/rqspinlock.h", _NEW),
    "resilient_queued_spin_lock_slowpath": ("kernel/bpf/rqspinlock.c", _NEW),
    # BPF
    "bpf_map_alloc_pages": ("kernel/bpf/syscall.c", _BOTH),
    "arena_alloc_pages": ("kernel/bpf/arena.c", _BOTH),
    "arena_free_pages": ("kernel/bpf/arena.c", _BOTH),
    "arena_vm_fault": ("kernel/bpf/arena.c", _BOTH),
    "bpf_arena_alloc_pages": ("kernel/bpf/arena.c", _BOTH),
    "bpf_arena_free_pages": ("kernel/bpf/arena.c", _BOTH),
    "bpf_mem_alloc": ("kernel/bpf/memalloc.c", _BOTH),
    "bpf_overflow_handler": ("kernel/events/core.c", _BOTH),
    "__bpf_trace_run": ("kernel/trace/bpf_trace.c", _BOTH),
}

#: ``{name: {version: file}}``, for the versions where the kernel defines ``name``.
DEFINED_IN: dict[str, dict[str, str]] = {name: {v: path for v in versions}
                                         for name, (path, versions) in _TABLE.items()}

_FILE = re.compile(r"^(?:[\w.-]+/)+[\w.-]+\.[chS]$")
_LINE = re.compile(r"^L\d+$")


def parse(target: str) -> tuple[str, str, str | None]:
    """``(name or file, version, line anchor or None)`` from a role target such as ``"rmqueue@v6.15"``
    or ``"mm/page_alloc.c@v6.13#L100"``.  An unknown tag, name or a malformed path raises
    :class:`~tryalloc.errors.InvalidArgumentError`."""
    rest, _, anchor = target.strip().partition("#")
    name, _, version = rest.partition("@")
    if version and version not in VERSIONS:
        raise InvalidArgumentError(f"kernel: unknown tag {version!r} in {target!r}; the book links {VERSIONS}")
    if anchor and not _LINE.match(anchor):
        raise InvalidArgumentError(f"kernel: the anchor of {target!r} is not a line (#L123)")
    if "/" in name:
        if not _FILE.match(name):
            raise InvalidArgumentError(f"kernel: {name!r} is not a kernel source path like mm/page_alloc.c")
        return name, version or VERSIONS[0], anchor or None
    if anchor:
        raise InvalidArgumentError(f"kernel: {target!r}: a line anchor needs a file path, not a name")
    where = DEFINED_IN.get(name)
    if where is None:
        raise InvalidArgumentError(f"kernel: {name!r} is not in tryalloc.series.kernel_source's table")
    version = version or next(v for v in VERSIONS if v in where)
    if version not in where:
        raise InvalidArgumentError(f"kernel: {name} is not defined at {version} (only at {', '.join(where)})")
    return name, version, None


def url(target: str) -> str:
    """The source browser's address for ``target`` (see :func:`parse` for the forms)."""
    name, version, anchor = parse(target)
    if "/" in name:
        return f"{BROWSER}/{version}/source/{name}" + (f"#{anchor}" if anchor else "")
    return f"{BROWSER}/{version}/C/ident/{name}"


def title(target: str) -> str:
    """A hover text for the link: where the name is defined, at which tag."""
    name, version, anchor = parse(target)
    if "/" in name:
        return f"{name}{':' + anchor[1:] if anchor else ''} at Linux {version}"
    return f"{name} in {DEFINED_IN[name][version]} at Linux {version}"


def versions_of(name: str) -> tuple[str, ...]:
    """The tags at which the kernel defines ``name`` (empty if the table does not list it)."""
    return tuple(DEFINED_IN.get(name, {}))

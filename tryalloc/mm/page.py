"""The memory map: one ``struct page`` per page frame, stored as a struct of arrays.

``include/linux/mm_types.h`` (``struct page``), ``include/linux/page-flags.h``, ``include/linux/page_ref.h``,
``include/linux/mm.h``.  The kernel keeps an array of structs (``mem_map``) indexed by pfn; a Python
object per page would cost about a hundred bytes, so :class:`MemMap` keeps one compact array per field
instead (about 35 bytes a page), and :class:`Page` is a throw-away handle: a pfn plus the memory map it
indexes.  Two handles of the same pfn are equal and hash alike, as two ``struct page *`` of one page are.

Where the model differs:

* ``PG_buddy`` is a flag bit here; since v4.x the kernel keeps "is a free buddy" in ``page->page_type``.
* Tail pages record their head's pfn in ``compound_head`` (-1 for a page that is no tail); the kernel
  stores ``head + 1`` in the tail's ``compound_head`` word.  The compound order lives at the head's index
  (the kernel keeps it in the first tail page, ``folio->_flags_1``).
* ``contents`` stands for the page's data, just enough to tell zeroed, written, and poisoned-on-free.
* The patch-2 slot (``struct { llist_node pcp_llist; unsigned int order; }`` overlaying ``lru``) is the
  ``llist_order`` array plus a dict of llist nodes made on demand, so idle pages cost nothing for it.
"""
from __future__ import annotations

from array import array

from ..errors import BadPageError, ContextError, InvalidArgumentError, VMBugError
from ..kernel import sched
from ..kernel.machine import initcall
from ..lib.llist import llist_node

# page flags (bit numbers of enum pageflags that the model uses; PG_buddy is the model's own, see above)
PG_locked = 0
PG_referenced = 2
PG_uptodate = 3
PG_dirty = 4
PG_lru = 5
PG_head = 6
PG_reserved = 13
PG_private = 14
PG_buddy = 31

_FLAG_NAMES = ((PG_locked, "locked"), (PG_referenced, "referenced"), (PG_uptodate, "uptodate"),
               (PG_dirty, "dirty"), (PG_lru, "lru"), (PG_head, "head"), (PG_reserved, "reserved"),
               (PG_private, "private"), (PG_buddy, "buddy"))

# what a page holds (``contents``): written data, zeroes, or the free path's poison
CONTENT_DIRTY = 0
CONTENT_ZERO = 1
CONTENT_POISON = 2
CONTENT_NAMES = ("dirty", "zeroed", "poisoned")


class MemMap:
    """``mem_map``: the struct-page fields of ``nr_pages`` page frames, each an array indexed by pfn.

    Nodes own consecutive pfn ranges of ``pages_per_node`` pages; ``zones`` (one per node, set by the
    page allocator at boot) maps a node id to its zone.
    """

    def __init__(self, nr_pages: int, pages_per_node: int | None = None):
        n = nr_pages
        self.nr_pages = n
        self.pages_per_node = pages_per_node or n
        self.zones: list = []
        self.flags = array("I", [0]) * n
        self.private = array("I", [0]) * n  # page_private(): the buddy order while PG_buddy
        self._refcount = array("i", [0]) * n
        self.compound_head = array("i", [-1]) * n
        self.compound_order = bytearray(n)
        self.memcg_data = array("Q", [0]) * n
        self.owner_alloc_handle = array("I", [0]) * n  # page_owner: stack of the last allocation
        self.owner_free_handle = array("I", [0]) * n  # ... and of the last free
        self.contents = bytearray(n)
        self.llist_order = bytearray(n)  # patch 2: page->order while on zone->trylock_free_pages
        self.pcp_llist: dict[int, llist_node] = {}  # patch 2: page->pcp_llist, made on first use

    def __len__(self) -> int:
        return self.nr_pages

    def page(self, pfn: int) -> Page:
        """The page of ``pfn``; :class:`InvalidArgumentError` if no such frame exists."""
        if isinstance(pfn, bool) or not isinstance(pfn, int) or not 0 <= pfn < self.nr_pages:
            raise InvalidArgumentError(f"pfn {pfn!r} is outside the memory map (0..{self.nr_pages - 1})")
        return Page(pfn, self)


@initcall
def mem_init(kernel) -> None:
    """Boot: allocate the memory map for every node's pages (``alloc_node_mem_map``)."""
    cfg = kernel.config
    kernel.mem_map = MemMap(cfg.nr_nodes * cfg.pages_per_node, cfg.pages_per_node)


class Page:
    """A ``struct page *``: the pfn of a frame and the memory map holding its fields.

    ``page + n`` is the page ``n`` frames further (the kernel's pointer arithmetic on ``mem_map``).
    """

    __slots__ = ("pfn", "mem_map")

    def __init__(self, pfn: int, mem_map: MemMap):
        self.pfn = pfn
        self.mem_map = mem_map

    def __eq__(self, other) -> bool:
        return isinstance(other, Page) and other.pfn == self.pfn and other.mem_map is self.mem_map

    def __hash__(self) -> int:
        return hash(self.pfn)

    def __add__(self, n: int) -> Page:
        return self.mem_map.page(self.pfn + n)

    def __repr__(self) -> str:
        return f"<page pfn:{self.pfn:#x}>"

    # the fields other subsystems read and write
    @property
    def flags(self) -> int:
        return self.mem_map.flags[self.pfn]

    @property
    def memcg_data(self) -> int:
        """``page->memcg_data``: 0 when the page is not charged; memcg stores its own encoding."""
        return self.mem_map.memcg_data[self.pfn]

    @memcg_data.setter
    def memcg_data(self, value: int) -> None:
        self.mem_map.memcg_data[self.pfn] = value

    @property
    def owner_alloc_handle(self) -> int:
        return self.mem_map.owner_alloc_handle[self.pfn]

    @owner_alloc_handle.setter
    def owner_alloc_handle(self, handle: int) -> None:
        self.mem_map.owner_alloc_handle[self.pfn] = handle

    @property
    def owner_free_handle(self) -> int:
        return self.mem_map.owner_free_handle[self.pfn]

    @owner_free_handle.setter
    def owner_free_handle(self, handle: int) -> None:
        self.mem_map.owner_free_handle[self.pfn] = handle

    @property
    def contents(self) -> int:
        """What the page holds: :data:`CONTENT_DIRTY`, :data:`CONTENT_ZERO` or :data:`CONTENT_POISON`."""
        return self.mem_map.contents[self.pfn]

    @contents.setter
    def contents(self, value: int) -> None:
        self.mem_map.contents[self.pfn] = value

    @property
    def order(self) -> int:
        """Patch 2's ``page->order``: the order of a page waiting on a deferred-free llist."""
        return self.mem_map.llist_order[self.pfn]

    @order.setter
    def order(self, order: int) -> None:
        self.mem_map.llist_order[self.pfn] = order

    @property
    def pcp_llist(self) -> llist_node:
        """Patch 2's ``page->pcp_llist``: the page's llist link (its payload is the page)."""
        node = self.mem_map.pcp_llist.get(self.pfn)
        if node is None:
            node = self.mem_map.pcp_llist[self.pfn] = llist_node(self)
        return node


# --- pfn <-> page ---------------------------------------------------------------------------
def check_page(page) -> Page:
    """Return ``page`` if it is a frame of the running machine's memory map, else raise
    :class:`InvalidArgumentError`.  (In C a wild ``struct page *`` is undefined behaviour; here it must
    not index the arrays out of range, or wrap around to the last frame for a negative pfn.)"""
    mm = sched._run.kernel.mem_map
    if not isinstance(page, Page):
        raise InvalidArgumentError(f"expected a Page, got {page!r}")
    pfn = page.pfn
    if page.mem_map is not mm or isinstance(pfn, bool) or not isinstance(pfn, int) or not 0 <= pfn < mm.nr_pages:
        raise InvalidArgumentError(f"{page!r} is not a page of this machine's memory map (pfns 0..{mm.nr_pages - 1})")
    return page


def pfn_to_page(pfn: int) -> Page:
    """The page of ``pfn`` on the running machine."""
    return sched._run.kernel.mem_map.page(pfn)


def page_to_pfn(page: Page) -> int:
    return page.pfn


def page_to_nid(page: Page) -> int:
    return page.pfn // page.mem_map.pages_per_node


def page_zone(page: Page):
    """The zone the page belongs to (each node has one, ``ZONE_NORMAL``)."""
    return page.mem_map.zones[page_to_nid(page)]


# --- flags ------------------------------------------------------------------------------------
# The tests read the flag word themselves (one call, not two: the free path asks several per page).
def _set(page: Page, bit: int) -> None:
    page.mem_map.flags[page.pfn] |= 1 << bit


def _clear(page: Page, bit: int) -> None:
    page.mem_map.flags[page.pfn] &= ~(1 << bit)


def PageBuddy(page: Page) -> bool:
    """Is the page the first of a free block in the buddy allocator?"""
    return bool(page.mem_map.flags[page.pfn] >> PG_buddy & 1)


def __SetPageBuddy(page: Page) -> None:
    _set(page, PG_buddy)


def __ClearPageBuddy(page: Page) -> None:
    _clear(page, PG_buddy)


def PageHead(page: Page) -> bool:
    return bool(page.mem_map.flags[page.pfn] >> PG_head & 1)


def PageTail(page: Page) -> bool:
    return page.mem_map.compound_head[page.pfn] >= 0


def PageCompound(page: Page) -> bool:
    return PageHead(page) or PageTail(page)


def PageReserved(page: Page) -> bool:
    return bool(page.mem_map.flags[page.pfn] >> PG_reserved & 1)


def compound_head(page: Page) -> Page:
    head = page.mem_map.compound_head[page.pfn]
    return page if head < 0 else Page(head, page.mem_map)


def compound_order(page: Page) -> int:
    """The order of a compound head page; 0 for any other page."""
    return page.mem_map.compound_order[page.pfn] if PageHead(page) else 0


def prep_compound_page(page: Page, order: int) -> None:
    """Make the ``2**order`` pages at ``page`` one compound page (``mm/page_alloc.c``)."""
    mm, pfn = page.mem_map, page.pfn
    _set(page, PG_head)
    mm.compound_order[pfn] = order
    for tail in range(pfn + 1, pfn + (1 << order)):
        mm.compound_head[tail] = pfn


def clear_compound_page(page: Page, order: int) -> None:
    """Undo :func:`prep_compound_page` when the page is freed (the free path's tail checks)."""
    mm, pfn = page.mem_map, page.pfn
    _clear(page, PG_head)
    mm.compound_order[pfn] = 0
    for tail in range(pfn + 1, pfn + (1 << order)):
        mm.compound_head[tail] = -1


def buddy_order(page: Page) -> int:
    """The order of a free buddy block, kept in ``page_private`` while PG_buddy is set."""
    return page.mem_map.private[page.pfn]


def page_private(page: Page) -> int:
    return page.mem_map.private[page.pfn]


def set_page_private(page: Page, value: int) -> None:
    page.mem_map.private[page.pfn] = value


# --- reference counts -------------------------------------------------------------------------
def page_ref_count(page: Page) -> int:
    return page.mem_map._refcount[page.pfn]


def page_count(page: Page) -> int:
    """The reference count of the page's head (``page_count`` reads the folio's)."""
    return page_ref_count(compound_head(page))


def set_page_count(page: Page, v: int) -> None:
    page.mem_map._refcount[page.pfn] = v


def set_page_refcounted(page: Page) -> None:
    """Give a freshly allocated page its first reference (refcount 0 -> 1)."""
    if page_ref_count(page) != 0:
        raise bad_page(page, "nonzero _refcount on a page being handed out")
    set_page_count(page, 1)


def page_ref_inc(page: Page) -> None:
    page.mem_map._refcount[page.pfn] += 1


def get_page(page: Page) -> None:
    """Take a reference on a page someone already holds (a free page cannot be pinned)."""
    page = compound_head(page)
    if page_ref_count(page) <= 0:
        raise bad_page(page, "get_page() on a page with no reference")
    page_ref_inc(page)


def page_ref_dec_and_test(page: Page) -> bool:
    page.mem_map._refcount[page.pfn] -= 1
    return page.mem_map._refcount[page.pfn] == 0


def put_page_testzero(page: Page) -> bool:
    """Drop a reference; True if it was the last.  Dropping one the page does not have is a refcount
    underflow, reported as a bad page before the count changes (``VM_BUG_ON_PAGE`` in the kernel)."""
    if page_ref_count(page) <= 0:
        raise bad_page(page, "put_page_testzero() on a page with _refcount 0 (refcount underflow)")
    return page_ref_dec_and_test(page)


# --- reports ------------------------------------------------------------------------------------
def format_page_flags(flags: int) -> str:
    """``%pGp``: the flag word in hex and the names of its set bits."""
    names = [name for bit, name in _FLAG_NAMES if flags >> bit & 1]
    return f"{flags:#x}({'|'.join(names)})"


def dump_page(page: Page, reason: str) -> str:
    """The lines ``dump_page()`` prints: refcount, memcg, flags, and why the page was dumped."""
    mm, pfn = page.mem_map, page.pfn
    head = mm.compound_head[pfn]
    lines = [f"page: refcount:{mm._refcount[pfn]} mapcount:0 mapping:0000000000000000 index:0x0 pfn:{pfn:#x}"]
    if head >= 0:
        lines.append(f"head: pfn:{head:#x} order:{mm.compound_order[head]}")
    elif mm.flags[pfn] >> PG_head & 1:
        lines.append(f"head: order:{mm.compound_order[pfn]}")
    if mm.memcg_data[pfn]:
        lines.append(f"memcg:{mm.memcg_data[pfn]:x}")
    lines.append(f"flags: {format_page_flags(mm.flags[pfn])}")
    lines.append(f"page dumped because: {reason}")
    return "\n".join(lines)


def vm_bug_on_page(page: Page, condition: str) -> VMBugError:
    """The report of a failed ``VM_BUG_ON_PAGE(condition, page)``: ``dump_page`` naming the condition, then
    ``BUG()``; the caller raises it before changing anything."""
    return VMBugError(dump_page(page, f"VM_BUG_ON_PAGE({condition})"))


def bad_page(page: Page, reason: str) -> BadPageError:
    """The report of ``mm/page_alloc.c: bad_page()``; the caller raises it before changing anything."""
    try:
        who = sched._run.cpu.top.name
    except ContextError:  # reported outside a run (a test inspecting a page)
        who = "?"
    return BadPageError(dump_page(page, reason), title=f"BUG: Bad page state in process {who}  pfn:{page.pfn:05x}")

"""Lock-less NULL-terminated singly linked lists (``include/linux/llist.h``, ``lib/llist.c``).

``llist_add`` is a compare-and-exchange loop: read the head, point the new node at it, and swap the
head only if nobody changed it meanwhile; otherwise try again.  The read and the swap are separate
scheduling points, so another CPU or an NMI can slip in between, fail the swap, and force the retry,
just as on real hardware.  ``llist_del_all`` takes the whole list with one exchange.  Neither ever
waits, which is why the series can use an llist from any context.

Nodes are any objects with a ``next`` attribute (:class:`llist_node`); the kernel embeds the node in
the structure it links (for pages, ``page->pcp_llist``).
"""
from __future__ import annotations

from collections.abc import Iterator

from ..kernel.por import ACCESS, STEP
from ..kernel.sched import declare_ops, event, point

declare_ops("llist_add:read", "llist_add:cmpxchg", "llist_add:retry", "llist_del_all")


class llist_node:
    """A link; ``payload`` is what it stands for (a page's pfn, say)."""

    __slots__ = ("next", "payload")

    def __init__(self, payload: object = None):
        self.next: llist_node | None = None
        self.payload = payload

    def __repr__(self) -> str:
        return f"<llist_node {self.payload!r}>"


class llist_head:
    """The list head; ``first`` is ``None`` when empty."""

    def __init__(self, name: str = "llist"):
        self.name = name
        self.first: llist_node | None = None

    def __iter__(self) -> Iterator[llist_node]:
        return llist_for_each(self.first)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def llist_empty(head: llist_head) -> bool:
    return head.first is None


def llist_add(new: llist_node, head: llist_head) -> bool:
    """Push ``new``; return True if the list was empty before (as the kernel's does)."""
    while True:
        point("llist_add:read", head, (STEP, head))
        first = head.first
        new.next = first
        point("llist_add:cmpxchg", head, (ACCESS, head))
        if head.first is first:
            head.first = new
            return first is None
        event("llist_add:retry", head)


def llist_del_all(head: llist_head) -> llist_node | None:
    """Detach and return the whole list (newest first), leaving it empty: one atomic exchange."""
    point("llist_del_all", head, (ACCESS, head))
    first, head.first = head.first, None
    return first


def llist_for_each(node: llist_node | None) -> Iterator[llist_node]:
    """Walk a detached chain; the next link is read before yielding so the caller may relink."""
    while node is not None:
        nxt = node.next
        yield node
        node = nxt

"""page_owner (``mm/page_owner.c``).  INTERFACE PLACEHOLDER, being written now."""
from __future__ import annotations

from ..kernel.sched import running


def set_page_owner(page, order: int, gfp: int) -> None:
    if running().kernel.config.page_owner:
        raise NotImplementedError("page_owner is being written")


def reset_page_owner(page, order: int) -> None:
    if running().kernel.config.page_owner:
        raise NotImplementedError("page_owner is being written")

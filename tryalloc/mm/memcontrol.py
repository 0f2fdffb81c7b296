"""memcg kmem charging (``mm/memcontrol.c``).  INTERFACE PLACEHOLDER, being written now."""
from __future__ import annotations

from ..kernel.sched import running


def memcg_kmem_online() -> bool:
    """Is kmem accounting on (``CONFIG_MEMCG`` in this model's configuration)?"""
    return running().kernel.config.memcg


def __memcg_kmem_charge_page(page, gfp: int, order: int) -> int:
    raise NotImplementedError("memcg charging is being written")


def __memcg_kmem_uncharge_page(page, order: int) -> None:
    raise NotImplementedError("memcg charging is being written")

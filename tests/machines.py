"""Small machines for tests: one zone of a few pages, memcg off, no watermarks (every page usable)."""
from tryalloc import Kernel
from tryalloc.mm import page_alloc


def small_machine(nr_cpus: int = 2, pages_per_node: int = 256, max_order: int = 5, **options) -> Kernel:
    """A Kernel whose zone has ``pages_per_node`` pages in pageblocks of ``2**max_order`` pages, with
    the watermarks set to zero so tests can take every page."""
    options.setdefault("pageblock_order", max_order)
    options.setdefault("memcg", False)
    k = Kernel(nr_cpus=nr_cpus, pages_per_node=pages_per_node, max_order=max_order, **options)
    page_alloc.setup_per_zone_wmarks(k, 0)
    return k

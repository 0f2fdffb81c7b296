"""page_owner, v6.13 baseline (spec 1.5): alloc and free stacks per page, per-stack counts.

These tests call the hooks the way post_alloc_hook and free_pages_prepare do, on blocks high in the
memory map (from pfn ``B``) that the allocator leaves alone here, while the depot's own pool pages
come from the real allocator, low in memory.
"""
import types

import pytest

import tryalloc.mm
from tryalloc import ConfigError, Kernel, Scripted, When
from tryalloc.include.gfp import GFP_ATOMIC, GFP_KERNEL
from tryalloc.lib import stackdepot as sd
from tryalloc.mm import page_owner as po
from tryalloc.mm.page import pfn_to_page

B = 2048  # hand-picked blocks live from here up; the allocator hands out low pfns first


@pytest.fixture
def pool_pages(monkeypatch):
    """The depot's pool pages come from the real allocator (whose post_alloc_hook runs
    set_page_owner); returns the pfns it handed out."""
    given = []
    real = tryalloc.mm.page_alloc

    def alloc_pages(gfp, order):
        page = real.alloc_pages(gfp, order)
        given.append(page.pfn)
        return page

    monkeypatch.setattr(tryalloc.mm, "page_alloc", types.SimpleNamespace(alloc_pages=alloc_pages,
                                                                         free_pages=real.free_pages))
    return given


def kmalloc_large(pfn, order):
    po.set_page_owner(pfn_to_page(pfn), order, GFP_KERNEL)


def vmalloc_area(pfn, order):
    po.set_page_owner(pfn_to_page(pfn), order, GFP_KERNEL)


def put_area(pfn, order):
    po.reset_page_owner(pfn_to_page(pfn), order)


def test_off_by_default_the_hooks_do_nothing(pool_pages):
    k = Kernel()
    k.call(kmalloc_large, B + 8, 1)
    assert k.page_owner is None and k.mem_map.owner_alloc_handle[B + 8] == 0 and pool_pages == []
    with pytest.raises(ConfigError, match="page_owner is off"):
        po.read_page_owner(k)


def test_alloc_then_free_records_both_stacks_and_the_count(pool_pages):
    k = Kernel(page_owner=True)
    k.call(kmalloc_large, B + 8, 2)
    info = [po.page_owner_info(k, pfn) for pfn in range(B + 8, B + 12)]
    handle = info[0]["alloc_handle"]
    assert all(i["alloc_handle"] == handle and i["allocated"] and i["order"] == 2 for i in info)
    # save_stack and __set_page_owner are skipped, as the kernel's skipnr does
    assert info[0]["alloc_stack"] == ("set_page_owner", "kmalloc_large")
    assert po.page_owner_info(k, B + 12)["alloc_handle"] == 0  # next block untouched
    assert (info[0]["alloc_stack"], 4) in po.page_owner_stacks(k)

    k.call(put_area, B + 8, 2)
    after = [po.page_owner_info(k, pfn) for pfn in range(B + 8, B + 12)]
    assert all(i["alloc_handle"] == handle and not i["allocated"] for i in after)
    assert all(i["free_handle"] == after[0]["free_handle"] != 0 for i in after)
    assert after[0]["free_stack"] == ("reset_page_owner", "put_area")
    assert (info[0]["alloc_stack"], 0) in po.page_owner_stacks(k)


def test_same_path_shares_a_stack_and_counts_add_up(pool_pages):
    k = Kernel(page_owner=True)

    def body():
        kmalloc_large(B + 0, 0)
        kmalloc_large(B + 4, 1)
        vmalloc_area(B + 16, 0)

    k.call(body)
    h0, h4, h16 = (k.mem_map.owner_alloc_handle[p] for p in (B, B + 4, B + 16))
    assert h0 == h4 != h16
    counts = {trace[1]: n for trace, n in po.page_owner_stacks(k)}
    assert counts == {"kmalloc_large": 3, "vmalloc_area": 1}
    assert [trace[1] for trace, n in po.page_owner_stacks(k, threshold=2)] == ["kmalloc_large"]


def test_a_new_stack_is_listed_once_under_stack_list_lock(pool_pages):
    k = Kernel(page_owner=True)

    def body():
        kmalloc_large(B + 0, 0)
        kmalloc_large(B + 1, 0)
        vmalloc_area(B + 2, 0)

    k.call(body)
    assert sum(1 for e in k.events if e[3] == "kmalloc") == 2
    locks = [e for e in k.events if e[4] == "stack_list_lock" and e[3] == "acquired"]
    assert len(locks) == 2
    assert [r.entries[1] for r in k.page_owner.stack_list] == ["vmalloc_area", "kmalloc_large"]


def test_the_depot_pool_page_gets_the_dummy_handle(pool_pages):
    """Saving the first stack allocates a pool page, whose post_alloc_hook re-enters page_owner:
    the recursion guard gives that page the dummy handle instead of recursing."""
    k = Kernel(page_owner=True)
    k.call(kmalloc_large, B + 0, 0)
    pool_pfn = pool_pages[0]
    assert k.mem_map.owner_alloc_handle[pool_pfn] == po.dummy_handle
    assert po.page_owner_info(k, pool_pfn)["alloc_stack"] == ("(page_owner re-entered: dummy stack)",)
    assert k.mem_map.owner_alloc_handle[B + 0] not in (0, po.dummy_handle, po.failure_handle)


def test_an_nmi_free_inside_page_owner_gets_the_dummy_handle(pool_pages):
    """An NMI shares ``current`` with the task it interrupts: while that task is inside page_owner,
    the NMI's free is recorded with the dummy handle and never reaches the depot."""
    k = Kernel(nr_cpus=1, page_owner=True)
    k.call(kmalloc_large, B + 4, 0)
    k.spawn(0, lambda: vmalloc_area(B + 8, 0))  # a new stack: the task takes pool_lock inside page_owner
    k.on_interrupt(0, "nmi", lambda: put_area(B + 4, 0))
    k.run(Scripted(When(cpu=0, op="acquired", obj="pool_lock", inject="nmi")))
    assert k.mem_map.owner_free_handle[B + 4] == po.dummy_handle
    assert not any(e[2].endswith("nmi") and e[4] == "pool_lock" for e in k.events)


def nmi_free_under_pool_lock():
    """An NMI frees a page while the task it interrupted holds pool_lock for another depot user."""
    k = Kernel(nr_cpus=1, page_owner=True)
    k.call(kmalloc_large, B + 4, 0)
    k.call(vmalloc_area, B + 5, 0)  # keeps a spare pool: the task below takes pool_lock without allocating first
    assert k.stack_depot.new_pool is not None  # a spare kept: none wanted
    k.spawn(0, lambda: sd.stack_depot_save(("kasan_save_stack",), GFP_KERNEL))
    k.on_interrupt(0, "nmi", lambda: put_area(B + 4, 0))
    k.run(Scripted(When(cpu=0, op="acquired", obj="pool_lock", inject="nmi")))
    return k


def test_an_nmi_free_while_another_depot_user_holds_pool_lock_gets_the_failure_handle(pool_pages):
    k = nmi_free_under_pool_lock()
    assert k.mem_map.owner_free_handle[B + 4] == po.failure_handle
    assert not po.page_owner_info(k, B + 4)["allocated"]


@pytest.mark.levels(until="2")
def test_v6_13_saves_the_free_stack_with_a_mask_that_asks_to_allocate(pool_pages):
    """GFP_NOWAIT may allocate a pool: in NMI that earns the depot's warning."""
    k = nmi_free_under_pool_lock()
    assert "stack_depot_save_flags: can_alloc in NMI" in k.stack_depot.warnings


@pytest.mark.rule("R2.12")
def test_the_free_stack_mask_neither_allocates_nor_spins(pool_pages):
    """R2.12: __GFP_NOWARN alone cannot spin: no pool allocation, pool_lock only tried, outside NMI too."""
    k = nmi_free_under_pool_lock()
    assert k.stack_depot.warnings == []
    k.call(kmalloc_large, B + 8, 0)
    taken = len(pool_pages)
    k.call(put_area, B + 8, 0)  # a plain task-context free of a page with a new free stack
    ops = [e[3] for e in k.events if e[4] == "pool_lock"]
    assert ops and "raw_spin_lock_irqsave" not in ops and ops[0] == "raw_spin_trylock_irqsave"
    assert len(pool_pages) == taken


def test_read_page_owner_lists_allocated_blocks_once(pool_pages):
    k = Kernel(page_owner=True)

    def body():
        kmalloc_large(B + 8, 2)
        po.set_page_owner(pfn_to_page(B + 32), 0, GFP_ATOMIC)
        put_area(B + 32, 0)

    k.call(body)
    text = po.read_page_owner(k)
    assert "Page allocated via order 2, mask 0xcc0(GFP_KERNEL)\nPFN 0x808\n set_page_owner\n kmalloc_large\n" in text
    assert "PFN 0x809" not in text and "PFN 0x820" not in text  # tail pages and freed blocks are skipped


def test_views_refuse_bad_arguments(pool_pages):
    k = Kernel(page_owner=True)
    with pytest.raises(tryalloc.errors.InvalidArgumentError, match="pfn"):
        po.page_owner_info(k, 1 << 30)
    with pytest.raises(tryalloc.errors.InvalidArgumentError, match="threshold"):
        po.page_owner_stacks(k, threshold=-1)

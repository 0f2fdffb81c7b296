"""The page allocator's pictures: the data each one draws is computed first and checked here."""
from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from tryalloc import Kernel, explore
from tryalloc.book import viz
from tryalloc.errors import InvalidArgumentError
from tryalloc.include.gfp import GFP_ATOMIC, GFP_KERNEL
from tryalloc.mm import page_alloc as A
from tryalloc.mm.debug import PFN_ALLOCATED, PFN_BUDDY, PFN_PCP, pfn_states


def test_memory_map_grid_rows_are_consecutive_pfns_of_the_real_map():
    k = Kernel(nr_cpus=1, pages_per_node=256, max_order=8, pageblock_order=8, memcg=False)
    page = k.call(A.alloc_pages, GFP_KERNEL, 0)
    grid = viz.memory_map_grid(pfn_states(k), 32)
    assert len(grid) == 8 and all(len(row) == 32 for row in grid)
    flat = [s for row in grid for s in row]
    assert flat[page.pfn] == PFN_ALLOCATED and flat.count(PFN_ALLOCATED) == 1
    assert flat.count(PFN_PCP) == k.zones[0].per_cpu_pageset._slots[0].count
    assert flat.count(PFN_BUDDY) == 256 - 1 - flat.count(PFN_PCP)
    assert isinstance(viz.memory_map(pfn_states(k), 32), Figure)
    with pytest.raises(InvalidArgumentError, match="rows of 30"):
        viz.memory_map_grid(pfn_states(k), 30)


def test_buddyinfo_bars_draw_one_bar_per_order_and_snapshot_with_its_count():
    fig = viz.buddyinfo_bars({"before": [0, 0, 0, 8], "after": [1, 1, 1, 7]})
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == [0, 0, 0, 8, 1, 1, 1, 7]
    with pytest.raises(InvalidArgumentError, match="one count per order"):
        viz.buddyinfo_bars({"a": [1, 2], "b": [1]})


def test_pcp_marks_find_refills_and_bulk_frees():
    counts = [0, 2, 1, 0, 2, 3, 4, 1]
    ops = ["alloc", "alloc", "alloc", "alloc", "free", "free", "free"]
    assert viz.pcp_marks(counts, ops) == [viz.PcpMark(1, "refill", 3), viz.PcpMark(4, "refill", 3),
                                          viz.PcpMark(7, "bulk free", 4)]
    with pytest.raises(InvalidArgumentError):
        viz.pcp_marks([0, 1], ["alloc", "free"])
    with pytest.raises(InvalidArgumentError):
        viz.pcp_marks([0, 1], ["take"])


def test_pcp_marks_on_the_allocator_match_batch_and_high():
    k = Kernel(nr_cpus=1, pages_per_node=1024, memcg=False)
    pcp = k.zones[0].per_cpu_pageset._slots[0]
    A.pageset_update(pcp, 10, 10, 4)
    counts, ops, pages = [pcp.count], [], []
    for _ in range(9):
        pages.append(k.call(A.alloc_pages, GFP_KERNEL, 0))
        counts.append(pcp.count)
        ops.append("alloc")
    for page in pages:
        k.call(A.__free_pages, page, 0)
        counts.append(pcp.count)
        ops.append("free")
    marks = viz.pcp_marks(counts, ops)
    # nr_pcp_alloc: batch first, then doubled but kept to the room below high (high - batch on an empty list)
    assert [m.pages for m in marks if m.kind == "refill"] == [4, 6]
    bulk = [m for m in marks if m.kind == "bulk free"]
    assert bulk and all(counts[m.step - 1] + 1 >= pcp.high for m in bulk)  # only a free reaching high drains
    assert all(counts[m.step] == pcp.batch for m in bulk)  # a run of frees returns high - batch, keeps batch
    assert isinstance(viz.pcp_history(counts, ops, pcp.high, pcp.batch), Figure)


def _nmi_build():
    k = Kernel(nr_cpus=1, pages_per_node=256, max_order=8, pageblock_order=8, memcg=False, detectors={"lockdep": "off"})
    k.spawn(0, lambda: A.alloc_pages(GFP_KERNEL, 0))
    k.on_interrupt(0, "nmi", lambda: A.alloc_pages(GFP_ATOMIC, 0))
    return k


def test_injection_cells_place_an_nmi_allocating_at_each_scheduling_point_of_alloc_pages():
    found = explore(_nmi_build, preemption_bound=0, stop_on_failure=False,
                    outcome=lambda k, res: viz.injection_of(res.events, "completes"))
    cells = viz.injection_cells(list(found.outcomes) + [viz.injection_of(f.events, "deadlock")
                                                        for f in found.failures])
    assert found.complete and None in found.outcomes  # one execution never took the NMI
    assert [c.position for c in cells] == sorted({c.position for c in cells})
    assert cells[0].point == "(before the task)"
    deadlocks = [c for c in cells if c.outcome == "deadlock"]
    # the only point inside zone->lock is the announced unlock: the NMI there spins on the held lock
    assert [c.point for c in deadlocks] == ["spin_unlock_irqrestore zone->lock"]
    assert len(cells) == len(found.outcomes) - 1 + len(found.failures)
    fig = viz.injection_strip({"alloc_pages": cells})
    assert [t.get_text().replace("\n", " ") for t in fig.axes[0].texts] == [c.outcome for c in cells]


def test_injection_of_and_cells_on_synthetic_logs():
    events = [(0, 0, "task", "start", None), (1, 0, "task", "spin_lock", "L"),
              (2, 0, "task>nmi", "nmi-entry", "x"), (3, 0, "task>nmi", "nmi-exit", "x")]
    assert viz.injection_of(events, "completes") == viz.Injection(2, "spin_lock L", "completes")
    assert viz.injection_of(events, "completes", kind="hardirq") is None
    a, b = viz.Injection(1, "p", "completes"), viz.Injection(1, "p", "deadlock")
    with pytest.raises(InvalidArgumentError, match="two outcomes"):
        viz.injection_cells([a, b])
    assert viz.injection_cells([b, None, b]) == [b]

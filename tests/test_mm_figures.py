"""The page allocator's pictures: the data each one draws is computed first and checked here."""
from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from tryalloc import Kernel, explore
from tryalloc.book import injections, mm_figures
from tryalloc.errors import InvalidArgumentError
from tryalloc.include.gfp import GFP_ATOMIC, GFP_KERNEL
from tryalloc.mm import page_alloc as A
from tryalloc.mm.debug import PFN_ALLOCATED, PFN_BUDDY, PFN_PCP, pfn_states


def test_memory_map_grid_rows_are_consecutive_pfns_of_the_real_map():
    k = Kernel(nr_cpus=1, pages_per_node=256, max_order=8, pageblock_order=8, memcg=False)
    page = k.call(A.alloc_pages, GFP_KERNEL, 0)
    grid = mm_figures.memory_map_grid(pfn_states(k), 32)
    assert len(grid) == 8 and all(len(row) == 32 for row in grid)
    flat = [s for row in grid for s in row]
    assert flat[page.pfn] == PFN_ALLOCATED and flat.count(PFN_ALLOCATED) == 1
    assert flat.count(PFN_PCP) == k.zones[0].pcp(0).count
    assert flat.count(PFN_BUDDY) == 256 - 1 - flat.count(PFN_PCP)
    assert isinstance(mm_figures.memory_map(pfn_states(k), 32), Figure)
    with pytest.raises(InvalidArgumentError, match="rows of 30"):
        mm_figures.memory_map_grid(pfn_states(k), 30)


def test_buddyinfo_bars_draw_one_bar_per_order_and_snapshot_with_its_count():
    fig = mm_figures.buddyinfo_bars({"before": [0, 0, 0, 8], "after": [1, 1, 1, 7]})
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == [0, 0, 0, 8, 1, 1, 1, 7]
    with pytest.raises(InvalidArgumentError, match="one count per order"):
        mm_figures.buddyinfo_bars({"a": [1, 2], "b": [1]})


def test_pcp_marks_find_refills_and_bulk_frees():
    counts = [0, 2, 1, 0, 2, 3, 4, 1]
    ops = ["alloc", "alloc", "alloc", "alloc", "free", "free", "free"]
    assert mm_figures.pcp_marks(counts, ops) == [mm_figures.PcpMark(1, "refill", 3), mm_figures.PcpMark(4, "refill", 3),
                                                 mm_figures.PcpMark(7, "bulk free", 4)]
    with pytest.raises(InvalidArgumentError):
        mm_figures.pcp_marks([0, 1], ["alloc", "free"])
    with pytest.raises(InvalidArgumentError):
        mm_figures.pcp_marks([0, 1], ["take"])


def test_pcp_marks_on_the_allocator_match_batch_and_high():
    k = Kernel(nr_cpus=1, pages_per_node=1024, memcg=False)
    pcp = k.zones[0].pcp(0)
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
    marks = mm_figures.pcp_marks(counts, ops)
    # nr_pcp_alloc: batch first, then doubled but kept to the room below high (high - batch on an empty list)
    assert [m.pages for m in marks if m.kind == "refill"] == [4, 6]
    bulk = [m for m in marks if m.kind == "bulk free"]
    assert bulk and all(counts[m.step - 1] + 1 >= pcp.high for m in bulk)  # only a free reaching high drains
    assert all(counts[m.step] == pcp.batch for m in bulk)  # a run of frees returns high - batch, keeps batch
    assert isinstance(mm_figures.pcp_history(counts, ops, pcp.high, pcp.batch), Figure)


def _nmi_build():
    k = Kernel(nr_cpus=1, pages_per_node=256, max_order=8, pageblock_order=8, memcg=False, detectors={"lockdep": "off"})
    k.spawn(0, lambda: A.alloc_pages(GFP_KERNEL, 0))
    k.on_interrupt(0, "nmi", lambda: A.alloc_pages(GFP_ATOMIC, 0))
    return k


def test_injection_cells_place_an_nmi_allocating_at_each_scheduling_point_of_alloc_pages():
    found = explore(_nmi_build, preemption_bound=0, stop_on_failure=False,
                    outcome=lambda k, res: injections.injection_of(res.events, "completes"))
    cells = injections.injection_cells(list(found.outcomes) + [injections.injection_of(f.events, "deadlock")
                                                        for f in found.failures])
    assert found.complete and None in found.outcomes  # one execution never took the NMI
    assert [c.position for c in cells] == sorted({c.position for c in cells})
    assert cells[0].point == "(before the task)"
    deadlocks = [c for c in cells if c.outcome == "deadlock"]
    # the only point inside zone->lock is the announced unlock: the NMI there spins on the held lock
    assert [c.point for c in deadlocks] == ["spin_unlock_irqrestore zone->lock"]
    assert len(cells) == len(found.outcomes) - 1 + len(found.failures)
    fig = injections.injection_strip({"alloc_pages": cells})
    texts = [t.get_text().replace("\n", " ") for t in fig.axes[0].texts]
    assert texts[0] == "alloc_pages"
    assert [t.replace(" ", "") for t in texts[1::2]] == [c.outcome.replace(" ", "") for c in cells]
    assert [t.replace(" ", "") for t in texts[2::2]] == [c.description.replace(" ", "") for c in cells]
    # the strip says what the report's log says at that point (the log's words, its short form)
    assert next(c.description for c in deadlocks) == \
        "about to spin_unlock_irqrestore zone->lock, still holding it (and pcp->lock[cpu0])"
    first = cells[1]
    assert first.description == first.event.describe(short=True) and "holds no locks" not in first.description


def test_injection_of_and_cells_on_synthetic_logs():
    events = [(0, 0, "task", "start", None), (1, 0, "task", "spin_lock", "L"),
              (2, 0, "task>nmi", "nmi-entry", "x"), (3, 0, "task>nmi", "nmi-exit", "x")]
    assert injections.injection_of(events, "completes") == injections.Injection(2, "spin_lock L", "completes")
    assert injections.injection_of(events, "completes", kind="hardirq") is None
    a, b = injections.Injection(1, "p", "completes"), injections.Injection(1, "p", "deadlock")
    with pytest.raises(InvalidArgumentError, match="two outcomes"):
        injections.injection_cells([a, b])
    assert injections.injection_cells([b, None, b]) == [b]


def test_a_long_strip_wraps_into_rows_of_cells_of_one_size():
    cells = [injections.Injection(i, f"spin_lock L{i}", "completes") for i in range(14)]
    assert [len(r) for r in injections.strip_rows(cells)] == [6, 6, 2]
    short = injections.injection_strip({"short": cells[:3]})
    wrapped = injections.injection_strip({"long": cells})
    widths = {round(p.get_width(), 6) for f in (short, wrapped) for p in f.axes[0].patches}
    assert len(widths) == 1  # every cell the same size, however long its strip
    assert short.get_size_inches()[0] == wrapped.get_size_inches()[0]
    ys = sorted({round(p.get_y(), 6) for p in wrapped.axes[0].patches})
    assert len(ys) == 3  # three rows
    with pytest.raises(InvalidArgumentError, match="per_row"):
        injections.strip_rows(cells, 0)


def test_every_label_of_a_strip_fits_inside_its_cell_as_drawn():
    """The labels are wrapped to the cell's width: measured on the drawn figure (matplotlib's text
    extents against the cell's box), no outcome or description runs past its cell, and a description
    never reaches the next row's boxes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from tryalloc.kernel.events import Event

    long = Event(3, 0, "task", "local_unlock_irqrestore", "memcg_stock.stock_lock", True,
                 ("memcg_stock.stock_lock", "pcp->lock[cpu0]"))
    cells = [injections.Injection(0, "(before the task)", "completes"),
             injections.Injection(1, "p", "InvalidContextError"),
             injections.Injection(2, "p", "per-CPU corruption", long)]
    fig = injections.injection_strip({"a strip": cells}, per_row=6)
    renderer = FigureCanvasAgg(fig).get_renderer()
    ax = fig.axes[0]
    to_inches = fig.dpi_scale_trans.inverted()
    boxes = [p.get_window_extent(renderer).transformed(to_inches) for p in ax.patches]
    labels = [t for t in ax.texts[1:]]  # the strip's name stands above the cells
    assert len(labels) == 2 * len(boxes)
    for i, box in enumerate(boxes):
        for text in labels[2 * i: 2 * i + 2]:
            ext = text.get_window_extent(renderer).transformed(to_inches)
            assert box.x0 <= ext.x0 and ext.x1 <= box.x1, (text.get_text(), ext, box)
        below = labels[2 * i + 1].get_window_extent(renderer).transformed(to_inches)
        assert below.y0 >= 0  # inside the figure: the row is as tall as its longest description
    assert "\n" in labels[2].get_text() and labels[2].get_text().replace("\n", "") == "InvalidContextError"
    assert cells[2].description.startswith("about to local_unlock_irqrestore memcg_stock.stock_lock, still")


def test_memory_map_and_pcp_history_have_integer_ticks():
    from matplotlib.ticker import MaxNLocator

    fig = mm_figures.pcp_history([4, 3, 2, 3], ["alloc", "alloc", "free"], high=6, batch=2)
    (ax,) = fig.axes
    for axis in (ax.xaxis, ax.yaxis):
        assert isinstance(axis.get_major_locator(), MaxNLocator)
        assert all(float(t).is_integer() for t in axis.get_majorticklocs())

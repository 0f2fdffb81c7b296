"""The patch-6 chapter's scenarios and pictures (tryalloc.book.bpf_scenarios, bpf_figures)."""
import re

import pytest
from matplotlib.text import Text

import tryalloc
from tryalloc.book import bpf_figures as F
from tryalloc.book import bpf_scenarios as B
from tryalloc.book.style import as_svg
from tryalloc.errors import InvalidArgumentError

pytestmark = pytest.mark.skipif(not B.has_patch6(tryalloc), reason="the pictures are of patch 6's runs")


#: The column the figures must fit and the smallest text they may carry, in CSS pixels.
MAX_WIDTH_PX, MIN_FONT_PX = 760, 10


def widths_and_fonts(fig):
    """The SVG's width and the sizes of every text drawn, in CSS pixels (96 to the inch, a point
    being 4/3 of a pixel)."""
    svg = as_svg(fig).data
    width_pt = float(re.search(r'<svg[^>]* width="([\d.]+)pt"', svg).group(1))
    fonts = [t.get_fontsize() * 4 / 3 for t in fig.findobj(Text) if t.get_text() and t.get_visible()]
    return width_pt * 4 / 3, fonts


@pytest.fixture(scope="module")
def runs():
    return {name: B.sampler_workload(tryalloc, rt, nr_cpus=3, rounds=15) for name, rt in (("!RT", False), ("RT", True))}


@pytest.mark.parametrize("draw", [F.workload_over_time, F.usage_against_limit])
def test_workload_figures_fit_the_column_with_readable_labels(runs, draw):
    width, fonts = widths_and_fonts(draw(runs))
    assert width <= MAX_WIDTH_PX and fonts and min(fonts) >= MIN_FONT_PX


def test_the_workload_figure_draws_every_series_of_each_run(runs):
    fig = F.workload_over_time(runs)
    assert [ax.get_title() for ax in fig.axes] == ["!RT", "RT"]
    assert "<text" in as_svg(fig).data  # text kept as text
    for ax, run in zip(fig.axes, runs.values(), strict=True):
        ends = {line.get_label(): line.get_ydata()[-1] for line in ax.get_lines()}
        assert ends["pages allocated"] == run["allocated"] and ends["frees deferred"] == run["deferred"]
        assert ends["failed: zone->lock trylock"] == run["contention"]


def test_the_usage_figure_draws_the_limit(runs):
    fig = F.usage_against_limit(runs)
    for ax, run in zip(fig.axes, runs.values(), strict=True):
        assert f"memory.max = {run['limit']}" in [line.get_label() for line in ax.get_lines()]


def test_the_sigsegv_figure_has_one_bar_per_schedule():
    res = B.fault_contention(tryalloc, True, seeds=range(4))
    fig = F.sigsegv_per_run({"RT": res})
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == res["per_seed"]
    width, fonts = widths_and_fonts(fig)
    assert width <= MAX_WIDTH_PX and min(fonts) >= MIN_FONT_PX


def test_figures_refuse_empty_input():
    for draw in (F.workload_over_time, F.usage_against_limit, F.sigsegv_per_run):
        with pytest.raises(InvalidArgumentError, match="no"):
            draw({})
    with pytest.raises(InvalidArgumentError, match="no time series"):
        F.usage_against_limit({"x": {"series": []}})


def test_the_context_table_at_level_6():
    table = B.can_alloc_table(tryalloc)
    assert [label for label, row in table.items() if row["!RT"]["can_alloc_pages"]] == ["task"]
    assert not any(row["RT"]["can_alloc_pages"] for row in table.values())
    for label, row in table.items():
        for column, cell in row.items():
            assert cell["allocator"] == ("alloc_pages_node" if cell["can_alloc_pages"] else "try_alloc_pages")
            refused = column == "RT" and label in ("hardirq", "NMI")
            assert cell["ret"] == (-12 if refused else 0) and cell["zeroed"] != refused
            assert cell["charged"] == (0 if refused else 1)


def test_the_matrix_row_of_patch_6_is_measured():
    """The RT / !RT / UP matrix's BPF row, counted on the model: a plain task's bpf_map_alloc_pages
    calls alloc_pages_node except on RT, where patch 6 sends it to try_alloc_pages."""
    from tryalloc.book import matrix

    assert matrix.matrix_row(tryalloc, matrix.BPF_ROW) == [
        matrix.BPF_ROW, "`alloc_pages_node`", "`try_alloc_pages`", "`alloc_pages_node`"]


def test_one_map_page_is_one_cell_of_the_context_table_and_refuses_an_unknown_context():
    cell = B.one_map_page(tryalloc, "hardirq", preempt_rt=True)
    assert cell == B.can_alloc_table(tryalloc)["hardirq"]["RT"]
    assert cell["allocator"] == "try_alloc_pages" and cell["ret"] == -12
    with pytest.raises(InvalidArgumentError, match="label must be one of"):
        B.one_map_page(tryalloc, "hard-irq")

"""The helpers of the series' chapters: diffs, the source of a generated level, the deferred llist and
the RT / !RT / UP matrix -- their data checked against the model, not their pixels."""
from __future__ import annotations

import pytest
from matplotlib.figure import Figure

import tryalloc
from tryalloc import Kernel, Scripted, When, book, series
from tryalloc.book import injections, matrix, mm_figures
from tryalloc.book.events import lock_trail
from tryalloc.errors import InvalidArgumentError
from tryalloc.include import gfp as G
from tryalloc.mm import page_alloc as A

TWO_FILES = """\
--- a/tryalloc/a.py
+++ b/tryalloc/a.py
@@ -1,2 +1,2 @@
-x = 1
+x = 2
 y = 3
--- a/tryalloc/mm/b.py
+++ b/tryalloc/mm/b.py
@@ -1 +1,2 @@
 z = 1
+w = 2
"""

# a generated level has its markers stripped: there, patch 1 changes no module but series.py's LEVEL line
MARKED = "+++ b/tryalloc/mm/page_alloc.py" in series.patch_diff("0", "1")


def test_split_diff_cuts_a_diff_into_its_files_in_order():
    parts = book.split_diff(TWO_FILES)
    assert list(parts) == ["tryalloc/a.py", "tryalloc/mm/b.py"]
    assert parts["tryalloc/mm/b.py"].splitlines() == ["--- a/tryalloc/mm/b.py", "+++ b/tryalloc/mm/b.py",
                                                      "@@ -1 +1,2 @@", " z = 1", "+w = 2"]
    assert "".join(parts.values()) == TWO_FILES
    with pytest.raises(InvalidArgumentError, match="before any file header"):
        book.split_diff("@@ -1 +1 @@\n-x\n+y\n")


def test_show_diff_keeps_the_files_asked_for_in_that_order_and_highlights_lines():
    d = book.show_diff(TWO_FILES, ["mm/b.py", "tryalloc/a.py"])
    assert d.files == ["tryalloc/mm/b.py", "tryalloc/a.py"]
    assert str(d).startswith("--- a/tryalloc/mm/b.py") and "+x = 2" in str(d)
    html = d._repr_html_()
    assert "background" not in str(d) and "<span" in html and "w = 2" in html
    with pytest.raises(InvalidArgumentError, match="'c.py' names 0 files"):
        book.show_diff(TWO_FILES, ["c.py"])
    assert str(book.show_diff(TWO_FILES)) == TWO_FILES


@pytest.mark.skipif(not MARKED, reason="a generated level carries no level markers")
def test_show_diff_of_patch_1_adds_try_alloc_pages_to_page_alloc():
    d = book.show_diff(series.patch_diff("0", "1"), ["mm/page_alloc.py"])
    assert d.files == ["tryalloc/mm/page_alloc.py"]
    added = [line for line in str(d).splitlines() if line.startswith("+")]
    assert "+def try_alloc_pages(nid: int, order: int) -> Page | None:" in added


def test_show_source_of_a_generated_level_names_the_repository_path_the_level_and_its_line():
    L1 = series.load("1")
    src = book.show_source(L1.mm.page_alloc.rmqueue_buddy)
    assert (src.path, src.level) == ("tryalloc/mm/page_alloc.py", "1")
    assert src.where == f"tryalloc/mm/page_alloc.py at level 1, line {src.line} of that level's file"
    level_file = (series.package_at("1") / "tryalloc" / "mm" / "page_alloc.py").read_text().splitlines()
    assert level_file[src.line - 1].startswith("def rmqueue_buddy(")
    # the package itself keeps the plain form
    own = book.show_source(A.rmqueue_buddy)
    assert own.level is None and own.where == f"tryalloc/mm/page_alloc.py, line {own.line}"


def test_zone_llist_of_a_fresh_zone_is_empty():
    assert mm_figures.zone_llist(Kernel(nr_cpus=1, pages_per_node=256, max_order=5, pageblock_order=5).zones[0]) == []


@pytest.mark.levels(since="2")
def test_zone_llist_lists_a_deferred_page_with_its_order_and_the_picture_draws_one_box_per_page():
    k = Kernel(nr_cpus=1, pages_per_node=256, max_order=5, pageblock_order=5, memcg=False)
    A.setup_per_zone_wmarks(k, 0)
    victim = k.call(A.alloc_pages, G.GFP_KERNEL, 4)
    k.spawn(0, lambda: A.alloc_pages(G.GFP_KERNEL, 4))
    k.on_interrupt(0, "nmi", lambda: A.free_pages_nolock(victim, 4))
    k.run(Scripted(When(cpu=0, op="acquired", obj="zone->lock", inject="nmi")))
    assert mm_figures.zone_llist(k.zones[0]) == [(victim.pfn, 4)]
    fig = mm_figures.deferred_llist([(victim.pfn, 4), (8, 0)])
    assert isinstance(fig, Figure) and len(fig.axes[0].patches) == 3  # the head and two pages
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert f"pfn {victim.pfn:#x}\norder 4\n(16 pages)" in texts and "NULL" in texts


@pytest.mark.levels(since="2")
def test_rt_matrix_cells_are_what_the_model_does():
    rows = {row[0]: dict(zip(matrix.MATRIX_MACHINES, row[1:], strict=True)) for row in matrix.rt_matrix(tryalloc)}
    assert len(rows) == len(matrix.MATRIX_SITUATIONS) + len(matrix.MATRIX_LATER)
    nmi = rows["`try_alloc_pages` in NMI"]
    assert nmi["RT"] == "NULL; no lock" and nmi["!RT SMP"].startswith("a page; spin_trylock(pcp->lock[cpu0])")
    on_holder = rows["`try_alloc_pages` in an NMI on the holder of `zone->lock`"]
    assert on_holder["!RT SMP"].startswith("NULL;") and on_holder["!RT SMP"].count("(zone->lock) failed") == 2
    assert on_holder["!RT UP"].startswith("PerCpuCorruptionError")
    assert rows["`zone->lock` holder"]["RT"].startswith("sleeping rt lock; IRQs on")
    assert rows["pcp lock holder (fast path)"] == {"!RT SMP": "IRQs on, preemption off",
                                                  "RT": "IRQs on, migration off", "!RT UP": "IRQs off, preemption off"}
    free0 = rows["`free_pages_nolock` in NMI, pcp order, on the holder of both locks"]
    assert free0["!RT SMP"].endswith("failed → llist") and free0["RT"] == "freed; llist"
    free4 = rows["`free_pages_nolock` in NMI, order 4 (not pcp-allowed), on the `zone->lock` holder"]
    assert free4["RT"] == "InvalidContextError; spin_trylock_irqsave(zone->lock) in invalid context"
    assert set(rows["`local_trylock_irqsave` in NMI"].values()) == {"later (patch 3)"}
    assert rows[matrix.BPF_ROW]["!RT SMP"] == rows[matrix.BPF_ROW]["!RT UP"] == "`alloc_pages_node`"


def test_lock_trail_reads_a_contexts_lock_operations_from_the_log():
    events = [(0, 0, "task", "spin_lock_irqsave", "zone->lock"), (1, 0, "task>nmi", "spin_trylock", "pcp"),
              (2, 0, "task>nmi", "trylock-failed", "pcp"), (3, 0, "task>nmi", "deferred-free", "pfn 0x10 order 0")]
    assert lock_trail(events, "nmi") == "spin_trylock(pcp) failed → llist"
    assert lock_trail(events[:1], "nmi") == "no lock"


def test_search_injections_finds_the_baseline_deadlock_among_completed_runs():
    from tryalloc import explore

    def build():
        k = Kernel(nr_cpus=1, pages_per_node=256, max_order=5, pageblock_order=5, memcg=False,
                   detectors={"lockdep": "off"})
        k.spawn(0, lambda: A.alloc_pages(G.GFP_KERNEL, 4))
        k.on_interrupt(0, "nmi", lambda: A.alloc_pages(G.GFP_ATOMIC, 0))
        return k

    found, cells = injections.search_injections(explore, build, lambda k, res: "completes")
    assert found.complete and len(found.failures) == sum(c.outcome == "deadlock" for c in cells) >= 1
    assert [c.position for c in cells] == sorted({c.position for c in cells})
    assert {c.outcome for c in cells} == {"completes", "deadlock"}
    assert next(c for c in cells if c.outcome == "deadlock").point.endswith("zone->lock")

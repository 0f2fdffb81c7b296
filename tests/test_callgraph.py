"""The call map is recorded from the model: its edges are calls the source makes, its locks the ones the
machine's lock operations name, and it changes where a patch changes the calls."""
from __future__ import annotations

import ast
import inspect

import pytest

from tryalloc import series
from tryalloc.book.callgraph import call_map, call_paths, changed_functions
from tryalloc.errors import InvalidArgumentError

# a generated level has its markers stripped: there every level loads as that level (see test_book_patches)
MARKED = "+++ b/tryalloc/mm/page_alloc.py" in series.patch_diff("0", "1")
needs_markers = pytest.mark.skipif(not MARKED, reason="a generated level carries no level markers")


def _calls_in_source(level: str) -> dict[str, set[str]]:
    """For each top-level function of the level's page_alloc, the names it calls (read from the source)."""
    module = series.load(level).mm.page_alloc
    tree = ast.parse(inspect.getsource(module))
    return {fn.name: {c.func.id for c in ast.walk(fn) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
            for fn in tree.body if isinstance(fn, ast.FunctionDef)}


@pytest.mark.parametrize("level", ["0", "1", "2"])
def test_every_edge_of_the_map_is_a_call_the_source_makes(level):
    paths = call_paths(level)
    source = _calls_in_source(level)
    assert paths.edges
    for caller, callee in paths.edges:
        assert callee in source[caller], f"{caller} -> {callee} is not a call in {caller}'s source"


@needs_markers
def test_the_baseline_map_has_the_kernels_fast_path_and_its_locks():
    paths = call_paths("0")
    assert paths.roots == ["alloc_pages", "__free_pages"]
    assert {("rmqueue", "rmqueue_pcplist"), ("rmqueue", "rmqueue_buddy"), ("__rmqueue_pcplist", "rmqueue_bulk"),
            ("free_unref_page", "free_unref_page_commit"), ("free_unref_page_commit", "free_pcppages_bulk"),
            ("__free_pages_ok", "free_one_page")} <= paths.edges
    assert paths.locks["rmqueue_pcplist"] == {("pcp->lock", "trylock")}
    assert paths.locks["rmqueue_bulk"] == paths.locks["rmqueue_buddy"] == {("zone->lock", "lock")}
    assert paths.locks["free_one_page"] == {("zone->lock", "lock")}
    assert "pcp_spin_trylock" not in paths.functions  # the pcp lock macros are their caller's lock


@needs_markers
def test_patch_1_adds_an_entry_and_makes_buddy_try_zone_lock():
    before, after = call_paths("0"), call_paths("1")
    assert "try_alloc_pages" in after.roots and "try_alloc_pages" not in before.functions
    assert ("try_alloc_pages", "get_page_from_freelist") in after.edges
    assert ("zone->lock", "trylock") in after.locks["rmqueue_buddy"]
    assert ("zone->lock", "trylock") not in before.locks["rmqueue_buddy"]


@needs_markers
def test_patch_2_defers_a_free_onto_the_llist():
    paths = call_paths("2")
    assert ("free_one_page", "add_page_to_zone_llist") in paths.edges
    assert paths.locks["add_page_to_zone_llist"] == {("llist", "llist")}


@needs_markers
def test_changed_functions_come_from_the_diff():
    p1 = changed_functions("0", "1")
    assert {"try_alloc_pages", "rmqueue_bulk", "rmqueue_buddy"} <= p1
    assert "free_one_page" not in p1
    p2 = changed_functions("1", "2")
    assert {"free_pages_nolock", "free_one_page", "add_page_to_zone_llist"} <= p2
    assert "rmqueue_bulk" not in p2
    assert changed_functions("0", "1", path="tryalloc/no/such.py") == set()


def test_call_map_highlights_the_named_functions():
    paths = call_paths("1")
    fig = call_map("1", highlight={"rmqueue_bulk", "not_on_the_map"}, found=paths)
    bold = {t.get_text() for t in fig.axes[0].texts if t.get_fontweight() == "bold"}
    assert "rmqueue_bulk" in bold and "rmqueue_pcplist" not in bold
    names = {t.get_text() for t in fig.axes[0].texts}
    assert paths.functions <= names
    assert "changed by this patch" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_an_unknown_level_is_refused():
    with pytest.raises(InvalidArgumentError, match="unknown level"):
        call_paths("7")

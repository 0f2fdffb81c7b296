"""The look every figure shares: colours by lock name, the SVG text, the drawn width."""
from __future__ import annotations

import re

import pytest

from tryalloc.book import style
from tryalloc.book.history_figure import label_positions, series_timeline
from tryalloc.errors import InvalidArgumentError


def test_a_lock_is_coloured_by_its_name_without_node_prefix_or_cpu_suffix():
    assert style.lock_key("node0:zone->lock") == "zone->lock"
    assert style.lock_key("pcp->lock[cpu1]") == "pcp->lock"
    assert style.lock_colour("node1:zone->lock") == style.lock_colour("zone->lock") == style.LOCK_COLOURS["zone->lock"]
    assert len(set(style.LOCK_COLOURS.values())) == len(style.LOCK_COLOURS)  # one colour, one lock


def test_an_unknown_lock_gets_a_reserved_colour_that_does_not_depend_on_what_came_before():
    first = style.lock_colour("some_new_lock")
    for other in ("x", "y", "zone->lock", "another_lock"):
        style.lock_colour(other)
    assert style.lock_colour("some_new_lock") == first
    assert first in style.FALLBACK_COLOURS
    assert not set(style.FALLBACK_COLOURS) & set(style.LOCK_COLOURS.values())


def test_svg_keeps_text_as_text_at_the_books_width():
    svg = style.as_svg(series_timeline())._repr_svg_()
    width = float(re.search(r'<svg[^>]* width="([\d.]+)pt"', svg).group(1))
    assert width == style.FIGURE_WIDTH * 72
    assert "<text" in svg
    sizes = [float(s) for s in re.findall(r"font-(?:size: ?)?([\d.]+)px", svg)] or \
        [float(s) for s in re.findall(r"font: (?:[a-z]+ )*([\d.]+)px", svg)]
    assert sizes and min(sizes) >= style.SMALL_FONT
    assert style.as_svg(series_timeline())._repr_svg_() == svg  # no date, no random ids


def test_fit_lines_keeps_every_line_within_the_width_matplotlib_measures():
    width = 1.0  # inches
    for text in ("InvalidContextError", "about to local_lock_irqsave memcg_stock.stock_lock",
                 "about to spin_unlock_irqrestore zone->lock, still holding it", "x" * 40):
        lines = style.fit_lines(text, width, style.SMALL_FONT, "bold")
        assert all(style.text_width(line, style.SMALL_FONT, "bold") <= width for line in lines), lines
        assert "".join(lines).replace(" ", "") == text.replace(" ", "")  # nothing lost, nothing added
    camel = style.fit_lines("InvalidContextError", 1.0, style.SMALL_FONT, "bold")
    assert len(camel) == 2 and all(line[0].isupper() for line in camel)  # cut between its words
    assert style.fit_lines("about to take memcg_stock.stock_lock", 1.1, style.SMALL_FONT)[-1] == "stock_lock"
    assert style.fit_lines("short", 1.0, style.SMALL_FONT) == ["short"]
    with pytest.raises(InvalidArgumentError, match="width"):
        style.fit_lines("x", 0, style.SMALL_FONT)


def test_history_labels_keep_their_spacing():
    assert label_positions([0.0, 0.1, 0.2, 2.0], 0.4) == [0.0, 0.4, 0.8, 2.0]

"""The SVG pictures of the chapters after v6."""
import re
from html import escape

import pytest

from tryalloc.book.after_figures import FATES, MAX_WIDTH, page_fates, wrong_order_frees
from tryalloc.errors import InvalidArgumentError


def test_page_fates_follow_the_order_freed():
    assert page_fates(None) == ["kept"] * 8
    assert page_fates(2) == ["freed"] * 4 + ["kept"] * 4
    assert page_fates(3) == ["freed"] * 4 + ["stolen"] * 4
    assert page_fates(1) == ["freed"] * 2 + ["left"] * 2 + ["kept"] * 4


def test_the_picture_has_a_box_per_page_and_row_fits_the_book_and_labels_are_legible():
    svg = wrong_order_frees([("stopped", None), ("one too large", 3)])
    boxes = re.findall(r'<rect [^>]*height="(\d+)" fill="([^"]+)"><title>(\w+)</title>', svg)
    assert len(boxes) == 16 and [b[2] for b in boxes[8:]] == page_fates(3)
    assert {b[1] for b in boxes} <= {colour for colour, _ in FATES.values()}
    assert int(re.search(r'width="(\d+)"', svg).group(1)) <= MAX_WIDTH
    assert int(re.search(r'font-size="(\d+)"', svg).group(1)) >= 10
    assert "the other block" in svg and all(escape(text) in svg for _, text in FATES.values())


@pytest.mark.parametrize("rows, order", [([], 2), ([("x", 5)], 2), ([("x", "3")], 2), ([("x", 1)], 5)])
def test_bad_rows_or_an_order_too_large_to_draw_are_refused(rows, order):
    with pytest.raises(InvalidArgumentError):
        wrong_order_frees(rows, order)

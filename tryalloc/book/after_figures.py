"""Pictures for the chapters after v6, drawn as SVG text (no plotting library needed).

:func:`wrong_order_frees` draws what a set of wrong-order frees gave back: one row per free, one box
per page of the two-block layout of :mod:`tryalloc.book.gfp_comp` (the victim block, then the block in
use by somebody else), coloured by what became of the page.
"""
from __future__ import annotations

from html import escape

from ..errors import InvalidArgumentError
from .gfp_comp import ORDER

#: Colours and legend of a page's fate.
FATES = {"freed": ("#8fd19e", "freed, as it should be"), "stolen": ("#e4572e", "the other block's, freed"),
         "left": ("#f3c969", "the victim's, left behind"), "kept": ("#d9d9d9", "not freed")}
_BOX, _GAP, _ROW, _FONT = 36, 4, 26, 14
#: Wide enough for the longest row label at _FONT.
_MIN_WIDTH = 340
#: The widest picture the book takes.
MAX_WIDTH = 760


def page_fates(freed_order: int | None, order: int = ORDER) -> list[str]:
    """The fate of each page of the two blocks (``2 * 2**order`` pages) after a free with ``freed_order``
    (``None``: the free was stopped, nothing changed)."""
    n = 1 << order
    if freed_order is None:
        return ["kept"] * (2 * n)
    if isinstance(freed_order, bool) or not isinstance(freed_order, int) or not 0 <= freed_order <= order + 1:
        raise InvalidArgumentError(f"freed_order must be None or an int 0..{order + 1}, got {freed_order!r}")
    upto = 1 << freed_order
    return [("freed" if pfn < upto else "left") if pfn < n else ("stolen" if pfn < upto else "kept")
            for pfn in range(2 * n)]


def wrong_order_frees(rows: list[tuple[str, int | None]], order: int = ORDER) -> str:
    """An SVG picture: for each ``(label, freed_order)`` a row of page boxes coloured by
    :func:`page_fates`, the victim's pages first, and a legend below."""
    if not rows:
        raise InvalidArgumentError("wrong_order_frees needs at least one row")
    n = 2 << order
    width = max(n * (_BOX + _GAP), _MIN_WIDTH)
    if width > MAX_WIDTH:
        raise InvalidArgumentError(f"order {order}: {n} pages do not fit in {MAX_WIDTH} px")
    # each row: its label on a line of its own, the boxes under it, so the picture stays narrow
    # and its labels stay large where a phone shows every figure at 520 px (_static/figures.css)
    row = _FONT + 6 + _ROW + _GAP
    top = _FONT + 8
    legend = top + len(rows) * row + _GAP
    height = legend + len(FATES) * (_FONT + 8)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="{_FONT}" '
             f'style="font-size: {_FONT}px">']
    parts.append(f'<text x="0" y="{_FONT}">victim block</text>')
    parts.append(f'<text x="{(n // 2) * (_BOX + _GAP)}" y="{_FONT}">the other block</text>')
    for r, (label, freed_order) in enumerate(rows):
        y = top + r * row
        parts.append(f'<text x="0" y="{y + _FONT}">{escape(label)}</text>')
        for i, fate in enumerate(page_fates(freed_order, order)):
            parts.append(f'<rect x="{i * (_BOX + _GAP)}" y="{y + _FONT + 6}" width="{_BOX}" '
                         f'height="{_ROW}" fill="{FATES[fate][0]}"><title>{fate}</title></rect>')
    for i, (colour, text) in enumerate(FATES.values()):
        yy = legend + i * (_FONT + 8)
        parts.append(f'<rect x="0" y="{yy}" width="{_FONT}" height="{_FONT}" fill="{colour}"/>')
        parts.append(f'<text x="{_FONT + 6}" y="{yy + _FONT - 1}">{escape(text)}</text>')
    parts.append("</svg>")
    return "".join(parts)

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
_BOX, _GAP, _LABEL, _ROW, _FONT = 36, 4, 300, 30, 12
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
    width = _LABEL + n * (_BOX + _GAP)
    if width > MAX_WIDTH:
        raise InvalidArgumentError(f"order {order}: {n} pages do not fit in {MAX_WIDTH} px")
    height = (len(rows) + 1) * _ROW + _ROW * len(FATES) // 2 + _GAP
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="{_FONT}">']
    parts.append(f'<text x="{_LABEL}" y="{_ROW - 10}">victim block</text>')
    parts.append(f'<text x="{_LABEL + (n // 2) * (_BOX + _GAP)}" y="{_ROW - 10}">the other block</text>')
    for r, (label, freed_order) in enumerate(rows, start=1):
        y = r * _ROW
        parts.append(f'<text x="0" y="{y + _BOX // 2}">{escape(label)}</text>')
        for i, fate in enumerate(page_fates(freed_order, order)):
            parts.append(f'<rect x="{_LABEL + i * (_BOX + _GAP)}" y="{y}" width="{_BOX}" '
                         f'height="{_ROW - _GAP}" fill="{FATES[fate][0]}"><title>{fate}</title></rect>')
    y = (len(rows) + 1) * _ROW + _GAP
    for i, (colour, text) in enumerate(FATES.values()):
        x, yy = (i % 2) * (width // 2), y + (i // 2) * _ROW
        parts.append(f'<rect x="{x}" y="{yy}" width="{_FONT}" height="{_FONT}" fill="{colour}"/>')
        parts.append(f'<text x="{x + _FONT + 6}" y="{yy + _FONT - 1}">{escape(text)}</text>')
    parts.append("</svg>")
    return "".join(parts)

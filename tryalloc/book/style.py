"""The look every figure of the book shares: one drawn width, fonts, one colour per lock, SVG output.

Every figure is drawn :data:`FIGURE_WIDTH` inches wide, which is narrower than the book's content column
in a 1400 px window, so the page never shrinks it below its drawn size; text is at least
:data:`SMALL_FONT` points (12 px at that size).  :func:`as_svg` turns a figure into the SVG a notebook
shows as its cell's output, with text kept as text (``svg.fonttype: none``).

Colours are keyed by *name*, never by order of appearance, so a lock has the same colour on every page:
:func:`lock_colour` looks the lock up in :data:`LOCK_COLOURS` by :func:`lock_key` (the name without a
node prefix or a per-CPU suffix), and a name the table lacks gets a colour of
:data:`FALLBACK_COLOURS` chosen by a CRC-32 of the name, the same one in every run.
"""
from __future__ import annotations

import functools
import io
import re
import zlib

import matplotlib
from matplotlib.figure import Figure

from ..errors import InvalidArgumentError

#: The drawn width of every figure, in inches (672 CSS px: the content column at 1400 px is wider).
FIGURE_WIDTH = 7.0
#: Font sizes in points (1 pt = 4/3 CSS px at the drawn size): body text and the smallest labels.
FONT = 10.0
SMALL_FONT = 9.0
MONO = "DejaVu Sans Mono"

#: matplotlib settings every figure is drawn and saved with (:func:`styled`, :func:`as_svg`).
RC = {
    "font.size": FONT,
    "axes.titlesize": FONT + 1,
    "axes.labelsize": FONT,
    "xtick.labelsize": SMALL_FONT,
    "ytick.labelsize": FONT,
    "legend.fontsize": SMALL_FONT,
    "svg.fonttype": "none",  # text stays text: sharp at any zoom, searchable, selectable
    "svg.hashsalt": "tryalloc",  # the same figure gives the same file (no random ids)
}

#: Fill colour of each context kind (task at the bottom of the stack).
CONTEXT_COLOURS = {"task": "#d9d9d9", "softirq": "#a6d96a", "hardirq": "#fdae61", "nmi": "#d7191c"}

#: The colour of each lock of the model and the book's examples, by :func:`lock_key`.
LOCK_COLOURS = {
    "zone->lock": "#2166ac",
    "pcp->lock": "#e08214",
    "memcg_stock.stock_lock": "#1b7837",
    "obj_hash[].lock": "#8c510a",
    "pool_lock": "#01665e",
    "stack_list_lock": "#c51b7d",
    "A": "#542788",
    "B": "#35978f",
}
#: Colours for locks :data:`LOCK_COLOURS` does not name, none of them used there.
FALLBACK_COLOURS = ("#4d4d4d", "#9e0142", "#5aae61", "#3288bd", "#bf812d", "#762a83")

#: Colour of each outcome of a run an interrupt was injected into (others are grey).
OUTCOME_COLOURS = {"completes": "#1a9641", "returns NULL": "#878787", "deferred": "#878787",
                   "lockdep warns": "#fdae61", "deadlock": "#d7191c", "per-CPU corruption": "#7b3294"}

#: How a timeline marks the attempt a run stopped in, by how the run ended: (marker, colour, words).
#: ``None``: the log alone, the ending unknown.
ENDING_MARKS = {
    "deadlock": ("X", "#b2182b", "never returns"),
    "per-CPU corruption": ("D", "#7b3294", "second entry: per-CPU data corrupted"),
    None: ("s", "#4d4d4d", "the run stopped here"),
}

_NODE_PREFIX = re.compile(r"^node\d+:")
_PER_CPU_SUFFIX = re.compile(r"\[cpu\d+\]$")


def lock_key(name: str) -> str:
    """The name a lock is coloured by: ``"node0:zone->lock"`` and ``"zone->lock"`` alike, and one
    colour for every CPU's copy of a per-CPU lock (``"pcp->lock[cpu1]"`` is ``"pcp->lock"``)."""
    return _PER_CPU_SUFFIX.sub("", _NODE_PREFIX.sub("", name))


def lock_colour(name: str) -> str:
    """The colour of lock ``name`` on every page of the book (see the module's docstring)."""
    key = lock_key(name)
    if key in LOCK_COLOURS:
        return LOCK_COLOURS[key]
    return FALLBACK_COLOURS[zlib.crc32(key.encode()) % len(FALLBACK_COLOURS)]


def styled(draw):
    """Run a drawing function under :data:`RC`, so its text gets the book's sizes."""
    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(RC):
            return draw(*args, **kwargs)
    return wrapper


def new_axes(ax, height: float):
    """``(figure, axes)``: those of ``ax`` when one is given, else a new figure of the book's width."""
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=(FIGURE_WIDTH, height), layout="constrained")
    return fig, fig.add_subplot()


#: Where a name too wide for its line may break: after ``.``, ``>``, ``_``, ``,`` or ``(``, and inside a
#: CamelCase word (``InvalidContext`` / ``Error``).
_BREAK = re.compile(r"(?<=[._>,(])(?=.)|(?<=[a-z])(?=[A-Z])")


def text_width(text: str, fontsize: float, weight: str = "normal") -> float:
    """The width in inches of ``text`` on one line at ``fontsize`` points, as matplotlib lays it out
    with the book's font (:data:`RC`)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import text_to_path

    with matplotlib.rc_context(RC):
        prop = FontProperties(size=fontsize, weight=weight)
    width, _, _ = text_to_path.get_text_width_height_descent(text, prop, ismath=False)
    return width / 72


def line_height(fontsize: float, linespacing: float = 1.2) -> float:
    """The height in inches one line of text takes at ``fontsize`` points and ``linespacing``."""
    return fontsize * linespacing * 1.2 / 72


def _pieces(word: str, width: float, fontsize: float, weight: str) -> list[str]:
    """``word`` cut where :data:`_BREAK` allows, and, where a piece is still wider than ``width``,
    between characters."""
    pieces = []
    for piece in _BREAK.split(word):
        while text_width(piece, fontsize, weight) > width and len(piece) > 1:
            cut = max([1] + [n for n in range(2, len(piece)) if text_width(piece[:n], fontsize, weight) <= width])
            pieces.append(piece[:cut])
            piece = piece[cut:]
        pieces.append(piece)
    return pieces


def fit_lines(text: str, width: float, fontsize: float, weight: str = "normal") -> list[str]:
    """``text`` wrapped into lines no wider than ``width`` inches at ``fontsize`` (measured by
    :func:`text_width`): at spaces first; a word too wide for a line breaks where :data:`_BREAK` allows
    (``memcg_stock.`` / ``stock_lock``, ``InvalidContext`` / ``Error``), and between characters only
    if a piece is still too wide."""
    if width <= 0:
        raise InvalidArgumentError(f"fit_lines: width must be positive, not {width!r}")
    lines: list[str] = []
    line = ""
    for word in text.split():
        joined = f"{line} {word}" if line else word
        if text_width(joined, fontsize, weight) <= width:
            line = joined
            continue
        if line:
            lines.append(line)
            line = ""
        for piece in _pieces(word, width, fontsize, weight):
            if line and text_width(line + piece, fontsize, weight) > width:
                lines.append(line)
                line = ""
            line += piece
    if line or not lines:
        lines.append(line)
    return lines


def integer_ticks(axis) -> None:
    """Ticks at whole numbers only (event indices, steps, counts)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


class SvgFigure:
    """A figure as SVG: Jupyter (and myst-nb) show it as an ``image/svg+xml`` output.  ``figure`` is the
    matplotlib figure it was drawn from, for tests and for readers who want to change it."""

    def __init__(self, figure: Figure):
        self.figure = figure
        buf = io.StringIO()
        with matplotlib.rc_context(RC):
            figure.savefig(buf, format="svg", metadata={"Date": None})
        self.data = buf.getvalue()

    def _repr_svg_(self) -> str:
        return self.data

    def __repr__(self) -> str:
        return f"<figure {self.figure.get_size_inches()[0]:.1f} x {self.figure.get_size_inches()[1]:.1f} in>"


def as_svg(fig: Figure) -> SvgFigure:
    """The figure as the displayable SVG a chapter's figure cell ends with."""
    return SvgFigure(fig)

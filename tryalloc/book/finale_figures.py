"""Pictures of the finale, drawn from what :mod:`tryalloc.book.finale_scenarios` returns.

* :func:`sample_fates`: what became of the profiler's NMI samples (recorded, or lost and why), one bar
  per ``memory.max``.

Plain matplotlib at the book's width and sizes (:mod:`tryalloc.book.style`); a chapter's figure cell
ends with :func:`~tryalloc.book.style.as_svg`.
"""
from __future__ import annotations

from matplotlib.figure import Figure

from ..errors import InvalidArgumentError
from .finale_scenarios import LOSS_CAUSES
from .style import integer_ticks, new_axes, styled

#: The segments of a bar, in order: what they count and their colour.
_FATES = {"recorded": "#1a9641", LOSS_CAUSES[0]: "#fdae61", LOSS_CAUSES[1]: "#d7191c",
          LOSS_CAUSES[2]: "#2c7bb6"}


@styled
def sample_fates(sweep: dict[int, dict], ax=None) -> Figure:
    """Stacked bars of the NMI samples of :func:`~tryalloc.book.finale_scenarios.limit_sweep`, one bar
    per ``memory.max`` (the keys): recorded, lost to the limit, to the arena's lock, to an allocator lock."""
    if not sweep:
        raise InvalidArgumentError("sample_fates: no run to draw")
    fig, ax = new_axes(ax, 3.4)
    labels = [str(limit) for limit in sweep]
    left = [0] * len(sweep)
    for fate, colour in _FATES.items():
        counts = [t["samples"] if fate == "recorded" else t["lost"].get(fate, 0) for t in sweep.values()]
        ax.barh(labels, counts, left=left, color=colour, label=fate)
        left = [a + b for a, b in zip(left, counts, strict=True)]
    ax.set_xlabel("NMI samples (all runs)")
    ax.set_ylabel("memory.max (pages)")
    ax.set_title("What became of each sample")
    integer_ticks(ax.xaxis)
    ax.invert_yaxis()
    fig.legend(frameon=False, ncols=len(_FATES), loc="outside lower center")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig

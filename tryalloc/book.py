"""Helpers the book's notebooks call so that they show the package, never a copy of it.

* :func:`show_source` displays the real source of a function or class, highlighted in HTML and as
  plain text elsewhere, with the file and line it comes from;
* :func:`as_image` turns a :class:`matplotlib.figure.Figure` into a PNG that ``myst_nb.glue`` and
  Jupyter display without pyplot;
* :func:`markdown_table` and :func:`patch_table` build tables from the package's data.
"""
from __future__ import annotations

import inspect
import io
from pathlib import Path

from .errors import InvalidArgumentError
from .history import PATCHES, lore

_ROOT = Path(__file__).resolve().parent.parent


class Source:
    """A piece of the package's source: ``text``, the ``path`` it lives in and its first ``line``.

    Jupyter shows it through ``_repr_html_`` (pygments, inline styles, so no stylesheet is
    needed); anything else gets the plain text from ``str``.
    """

    def __init__(self, text: str, path: str, line: int):
        self.text = text
        self.path = path
        self.line = line

    @property
    def where(self) -> str:
        return f"{self.path}, line {self.line}"

    def __str__(self) -> str:
        return f"# {self.where}\n{self.text}"

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer

        body = highlight(self.text, PythonLexer(), HtmlFormatter(noclasses=True, linenos="inline",
                                                                   linenostart=self.line))
        return f'<div class="tryalloc-source"><p><code>{self.where}</code></p>{body}</div>'


def show_source(obj) -> Source:
    """The source of ``obj`` (a function, method or class of the package) as a displayable object.

    Raises :class:`~tryalloc.errors.InvalidArgumentError` if ``obj`` has no Python source (a
    builtin, a number...).
    """
    try:
        lines, start = inspect.getsourcelines(obj)
        path = Path(inspect.getsourcefile(obj)).resolve()
    except (TypeError, OSError) as exc:
        raise InvalidArgumentError(f"show_source: no Python source for {obj!r} ({exc})") from None
    shown = path.relative_to(_ROOT) if path.is_relative_to(_ROOT) else path.name
    return Source("".join(lines), shown.as_posix() if isinstance(shown, Path) else shown, start)


def as_image(fig, dpi: int = 120):
    """A PNG :class:`IPython.display.Image` of ``fig`` (for ``glue`` and notebook output)."""
    from IPython.display import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return Image(data=buf.getvalue(), format="png")


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown pipe table; ``|`` inside a cell is escaped."""
    if any(len(r) != len(headers) for r in rows):
        raise InvalidArgumentError(f"markdown_table: every row needs {len(headers)} cells")

    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(headers), line(["---"] * len(headers))] + [line(r) for r in rows])


def patch_table() -> str:
    """The six v6 patches as a Markdown table: subject, what it does, posting and bpf-next commit."""
    rows = [[str(p.number), f"`{p.subject}`", p.effect, f"[{p.message_id.split('-')[0]}-{p.number + 1}]"
             f"({lore(p.message_id)})", f"`{p.commit[:12]}`"] for p in PATCHES]
    return markdown_table(["#", "subject", "what it does", "v6 posting", "bpf-next commit"], rows)

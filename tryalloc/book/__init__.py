"""Helpers the book's notebooks call so that they show the package, never a copy of it.

* :func:`show_source` displays the real source of a function or class, highlighted in HTML and as
  plain text elsewhere, with the file and line it comes from (for a generated level of the series,
  the repository path, the level and the line in that level's file);
* :func:`show_diff` displays a unified diff (a patch of the series, :func:`tryalloc.series.patch_diff`),
  highlighted in HTML and as plain text elsewhere; :func:`split_diff` cuts one into its files;
* :func:`markdown_table` and :func:`patch_table` build tables from the package's data.

The figures are in modules of their own: :mod:`~tryalloc.book.timeline`, :mod:`~tryalloc.book.injections`,
:mod:`~tryalloc.book.mm_figures`, :mod:`~tryalloc.book.history_figure` and :mod:`~tryalloc.book.callgraph`
draw, :mod:`~tryalloc.book.style` gives them one look and turns them into SVG
(:func:`~tryalloc.book.style.as_svg`), :mod:`~tryalloc.book.events` reads event logs for them, and
:mod:`~tryalloc.book.matrix` measures the RT / !RT / UP matrix.
"""
from __future__ import annotations

import inspect
import sys
from pathlib import Path

from ..errors import InvalidArgumentError
from ..series.history import PATCHES, lore

_ROOT = Path(__file__).resolve().parents[2]


class Source:
    """A piece of the package's source: ``text``, the ``path`` it lives in and its first ``line``.

    Jupyter shows it through ``_repr_html_`` (pygments, inline styles, so no stylesheet is
    needed); anything else gets the plain text from ``str``.
    """

    def __init__(self, text: str, path: str, line: int, level: str | None = None):
        self.text = text
        self.path = path
        self.line = line
        self.level = level  # a generated level of the series (``series.load``), None for the package itself

    @property
    def where(self) -> str:
        if self.level is not None:
            return f"{self.path} at level {self.level}, line {self.line} of that level's file"
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
    generated = _generated_level(obj)
    if generated is not None:
        level, root = generated
        return Source("".join(lines), "tryalloc/" + path.relative_to(root).as_posix(), start, level)
    shown = path.relative_to(_ROOT) if path.is_relative_to(_ROOT) else path.name
    return Source("".join(lines), shown.as_posix() if isinstance(shown, Path) else shown, start)


def _generated_level(obj) -> tuple[str, Path] | None:
    """``(level, package folder)`` when ``obj`` comes from a level of the series imported by
    :func:`tryalloc.series.load` (module ``tryalloc_L1...``), else ``None``."""
    from ..series import module_name
    from ..series.rules import LEVELS

    top = (getattr(inspect.getmodule(obj), "__name__", None) or "").split(".")[0]
    for level in LEVELS:
        if top == module_name(level) and top in sys.modules:
            return level, Path(sys.modules[top].__file__).resolve().parent
    return None


class Diff:
    """A unified diff, shown with diff highlighting in HTML (pygments, inline styles) and as plain text
    elsewhere.  ``files`` are the paths it changes (the ``+++`` side, without the ``b/`` prefix)."""

    def __init__(self, text: str):
        self.text = text
        self.files = list(split_diff(text))

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import DiffLexer

        return f'<div class="tryalloc-diff">{highlight(self.text, DiffLexer(), HtmlFormatter(noclasses=True))}</div>'


def split_diff(text: str) -> dict[str, str]:
    """Cut a unified diff into its files: a dict from each path (``"tryalloc/mm/page_alloc.py"``) to that
    file's part of the diff, from its ``---``/``+++`` header on, in the diff's order.  Text before the
    first header raises
    :class:`~tryalloc.errors.InvalidArgumentError` (it is not a diff this module made)."""
    files: dict[str, list[str]] = {}
    current: list[str] | None = None
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            name = lines[i + 1][4:].strip()
            name = name[2:] if name.startswith("b/") else name
            current = files.setdefault(name, [])
        elif current is None:
            raise InvalidArgumentError(f"split_diff: line {i + 1} comes before any file header: {line!r}")
        current.append(line)
    return {name: "".join(body) for name, body in files.items()}


def show_diff(text: str, files=None) -> Diff:
    """A displayable unified diff; with ``files`` (paths as :func:`split_diff` names them, or their
    endings such as ``"mm/page_alloc.py"``) only those files, in the order given.  A name that matches
    no file of the diff raises :class:`~tryalloc.errors.InvalidArgumentError`."""
    if files is None:
        return Diff(text)
    parts = split_diff(text)
    chosen = []
    for wanted in files:
        match = [name for name in parts if name == wanted or name.endswith("/" + wanted)]
        if len(match) != 1:
            raise InvalidArgumentError(f"show_diff: {wanted!r} names {len(match)} files of the diff "
                                       f"({', '.join(parts) or 'none'})")
        chosen.append(parts[match[0]])
    return Diff("".join(chosen))


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

"""Rule traceability: for every rule of the registry, the tests and the book chapters that name it.

A test checks a rule when its id appears, as a whole word, anywhere in a ``tests/*.py`` file; a chapter
discusses a rule when its id appears in one of the book's pages (``book/**/*.md``, the appendix left out:
it lists every id by construction).  This is the same reading an external coverage tool makes, so the
appendix's table and that tool agree.

* :func:`trace` builds one :class:`Trace` per rule from a source tree;
* :func:`check` raises :class:`~tryalloc.errors.TraceabilityError` for a rule a chapter names but no test
  does (the book's build calls it, so such a rule fails the build);
* :func:`table` renders the traces as the appendix's Markdown table, untested rules marked plainly.

The module reads the repository's files, never the specification: the rules come from
:mod:`tryalloc.series.rules`.
"""
from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..book import markdown_table
from ..errors import InvalidArgumentError, TraceabilityError
from .history import lore
from .rules import RULES, Rule

ROOT = Path(__file__).resolve().parents[2]
#: The book folder that lists every id by construction, so it is not scanned for mentions.
APPENDIX = "book/appendix"

_TOC_ENTRY = re.compile(r"^\s*-?\s*(?:root|file):\s*(\S+)\s*$", re.M)
_MESSAGE_ID = re.compile(r"^[^\s:]+@[^\s:]+$")
_COMMIT = re.compile(r"^[0-9a-f]{12,40}$")
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]<>$])")


@dataclass(frozen=True)
class Trace:
    """One rule with the test files (``tests/x.py``) and book pages (docnames like ``book/patch1/index``)
    that name its id."""

    rule: Rule
    tests: tuple[str, ...]
    chapters: tuple[str, ...]

    @property
    def tested(self) -> bool:
        return bool(self.tests)


def _id_pattern(rule_id: str) -> re.Pattern[str]:
    # \b on both sides: R1.1 is not found inside R1.10, nor I1 inside I10
    return re.compile(rf"\b{re.escape(rule_id)}\b")


def mentions(rule_ids: Iterable[str], files: dict[str, str]) -> dict[str, tuple[str, ...]]:
    """For each id, the names (keys of ``files``, a name -> text mapping) whose text names it, sorted."""
    return {rid: tuple(sorted(name for name, text in files.items() if _id_pattern(rid).search(text)))
            for rid in rule_ids}


def _read(root: Path, pattern: str, skip: str | None = None) -> dict[str, str]:
    out = {}
    for path in sorted(root.glob(pattern)):
        name = path.relative_to(root).as_posix()
        if skip is None or not name.startswith(skip + "/"):
            out[name] = path.read_text(encoding="utf-8")
    return out


def trace(root: Path | str | None = None, rules: Iterable[Rule] = RULES) -> tuple[Trace, ...]:
    """One :class:`Trace` per rule, in registry order, from the ``tests/`` and ``book/`` of ``root``
    (the repository this package lives in by default).

    Raises :class:`~tryalloc.errors.InvalidArgumentError` if ``root`` lacks either folder (an installed
    copy of the package without its repository, for example).
    """
    root = ROOT if root is None else Path(root)
    missing = [d for d in ("tests", "book") if not (root / d).is_dir()]
    if missing:
        raise InvalidArgumentError(f"trace: {root} has no {' or '.join(d + '/' for d in missing)} folder to scan")
    rules = tuple(rules)
    ids = [r.id for r in rules]
    tests = mentions(ids, _read(root, "tests/*.py"))
    pages = mentions(ids, _read(root, "book/**/*.md", skip=APPENDIX))
    return tuple(Trace(r, tests[r.id], tuple(p.removesuffix(".md") for p in pages[r.id])) for r in rules)


def toc_pages(root: Path | str | None = None) -> frozenset[str]:
    """The docnames ``_toc.yml`` lists (``root:`` and every ``file:``): the pages the book builds.

    Read with a pattern rather than a YAML parser, which the package does not depend on.
    """
    root = ROOT if root is None else Path(root)
    toc = root / "_toc.yml"
    if not toc.is_file():
        raise InvalidArgumentError(f"toc_pages: {root} has no _toc.yml")
    return frozenset(m.removesuffix(".md") for m in _TOC_ENTRY.findall(toc.read_text(encoding="utf-8")))


def untested_in_chapters(traces: Iterable[Trace]) -> tuple[Trace, ...]:
    """The traces of rules some chapter names but no test does."""
    return tuple(t for t in traces if t.chapters and not t.tested)


def check(traces: Iterable[Trace]) -> None:
    """Raise :class:`~tryalloc.errors.TraceabilityError` if a chapter names a rule that no test names.

    The message lists each such id with the pages naming it.  Rules named by no chapter may stay
    untested (their chapter is not written yet); the table shows them.
    """
    bad = untested_in_chapters(traces)
    if bad:
        lines = "; ".join(f"{t.rule.id} (named in {', '.join(t.chapters)})" for t in bad)
        raise TraceabilityError(f"{len(bad)} rule(s) discussed in the book but named by no test: {lines}")


def _escape(text: str) -> str:
    """Plain text for a Markdown cell: a statement's ``__GFP_ZERO`` must not turn bold, nor ``$`` into math."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", text)


def _cite(ref: str) -> str:
    if _MESSAGE_ID.match(ref):
        return f"[{_escape(ref)}]({lore(ref)})"
    if _COMMIT.match(ref):
        return f"commit `{ref[:12]}`"
    return f"`{ref}`"


def table(traces: Iterable[Trace], pages: Collection[str] = ()) -> str:
    """The traceability table in Markdown: id, statement, tests, chapter, citation.

    A rule no test names reads **untested**.  A chapter among ``pages`` (docnames the book builds, see
    :func:`toc_pages`) links to its page with ``{doc}``; a page the book does not build yet (a draft) is
    shown as its file name.
    """
    rows = []
    for t in traces:
        tests = ", ".join(f"`{Path(name).name}`" for name in t.tests) or "**untested**"
        chapters = ", ".join(f"{{doc}}`/{page}`" if page in pages else f"`{page}.md` (draft)"
                             for page in t.chapters) or "-"
        cites = "; ".join(_cite(c) for c in t.rule.cites)
        rows.append([f"**{t.rule.id}**", _escape(t.rule.statement), tests, chapters, cites])
    return markdown_table(["id", "statement", "tests", "chapter", "citation"], rows)


def summary(traces: Iterable[Trace]) -> dict[str, int]:
    """Counts for the appendix's prose: rules, tested rules, rules named by a chapter, and untested rules."""
    traces = tuple(traces)
    return {
        "rules": len(traces),
        "tested": sum(t.tested for t in traces),
        "in_chapters": sum(bool(t.chapters) for t in traces),
        "untested": sum(not t.tested for t in traces),
    }

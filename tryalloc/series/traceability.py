"""Rule traceability: for every rule of the registry, the tests and the book chapters that name it.

A test checks a rule when its id appears, as a whole word, anywhere in a ``tests/*.py`` file (the table
names the test functions whose source, decorators included, carries the id); a chapter
discusses a rule when its id appears in one of the book's pages (``book/**/*.md``, the appendix left out:
it lists every id by construction).  This is the same reading an external coverage tool makes, so the
appendix's table and that tool agree.

* :func:`trace` builds one :class:`Trace` per rule from a source tree;
* :func:`check` raises :class:`~tryalloc.errors.TraceabilityError` for a rule a chapter names but no test
  does (the book's build calls it, so such a rule fails the build);
* :func:`table` renders the traces as the appendix's Markdown table, untested rules marked plainly, one
  row per rule with the anchor :func:`anchor` names (the book's ``{rule}`` role links there).

The module reads the repository's files, never the specification: the rules come from
:mod:`tryalloc.series.rules`.
"""
from __future__ import annotations

import ast
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..book import markdown_table
from ..errors import InvalidArgumentError, TraceabilityError
from .history import lore
from .rules import LATER, LEVELS, RULES, Rule

ROOT = Path(__file__).resolve().parents[2]
#: The appendix page that holds the table (a Sphinx docname).
TRACEABILITY_DOC = "book/appendix/traceability"
#: The book folder that lists every id by construction, so it is not scanned for mentions.
APPENDIX = "book/appendix"

_TOC_ENTRY = re.compile(r"^\s*-?\s*(?:root|file):\s*(\S+)\s*$", re.M)
_MESSAGE_ID = re.compile(r"^[^\s:]+@[^\s:]+$")
_COMMIT = re.compile(r"^[0-9a-f]{12,40}$")
_KERNEL_FILE = re.compile(r"^(?:[\w.-]+/)+[\w.-]+\.[ch]$")
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]<>$])")


@dataclass(frozen=True)
class Trace:
    """One rule with the test files (``tests/x.py``) and book pages (docnames like ``book/patch1/index``)
    that name its id, and the test functions (``test_x.py::test_y``) whose source names it (empty when
    only a file's module docstring or comments do)."""

    rule: Rule
    tests: tuple[str, ...]
    chapters: tuple[str, ...]
    functions: tuple[str, ...] = ()

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


def anchor(rule_id: str) -> str:
    """The HTML id of a rule's row in the appendix: ``R1.2`` -> ``rule-r1-2``."""
    return "rule-" + re.sub(r"[^a-z0-9]+", "-", rule_id.lower()).strip("-")


def test_functions(rule_ids: Iterable[str], files: dict[str, str]) -> dict[str, tuple[str, ...]]:
    """For each id, the test functions (``test_file.py::test_name``, ``::Class::test_name`` for methods)
    of ``files`` (``tests/*.py`` name -> text) whose source, from the first decorator on, names it."""
    found: dict[str, list[str]] = {rid: [] for rid in rule_ids}
    patterns = {rid: _id_pattern(rid) for rid in found}
    for name, text in files.items():
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        lines = text.splitlines()
        for owner, node in _test_defs(tree):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            source = "\n".join(lines[first - 1:node.end_lineno])
            qual = f"{Path(name).name}::{owner + '::' if owner else ''}{node.name}"
            for rid, pattern in patterns.items():
                if pattern.search(source):
                    found[rid].append(qual)
    return {rid: tuple(names) for rid, names in found.items()}


def _test_defs(tree: ast.Module):
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            yield "", node
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for member in node.body:
                if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)) and member.name.startswith("test"):
                    yield node.name, member


def holds_at(rule: Rule) -> str:
    """Where ``rule`` holds, compactly: ``"from 1"`` (and still in the latest kernel the registry knows),
    ``"1-6"``, ``"0, 6.15"``, or the versions note of a rule that holds at no modelled level."""
    if rule.since is None:
        modelled = f"; modelled as release {rule.release} of level {LEVELS[-1]}" if rule.release else ""
        return (rule.versions or "-") + modelled
    order = LEVELS + LATER
    runs: list[list[str]] = []
    previous = False
    for level in order:
        now = rule.holds_at(level)
        if now and previous:
            runs[-1].append(level)
        elif now:
            runs.append([level])
        previous = now
    last = order[-1]
    return ", ".join(f"from {run[0]}" if run[-1] == last and len(run) > 1 else
                     run[0] if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs)


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
    test_files = _read(root, "tests/*.py")
    tests = mentions(ids, test_files)
    functions = test_functions(ids, test_files)
    pages = mentions(ids, _read(root, "book/**/*.md", skip=APPENDIX))
    return tuple(Trace(r, tests[r.id], tuple(p.removesuffix(".md") for p in pages[r.id]), functions[r.id])
                 for r in rules)


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


def _cite(ref: str, version: str) -> str:
    if _MESSAGE_ID.match(ref):  # the link text is short (the full id would not wrap): git's date.pid-n
        local = ref.split("@")[0]
        short = re.match(r"^\d{14}\.\d+-\d+", local)
        return f"[{_escape(short.group(0) if short else local[:24])}]({lore(ref)})"
    if _COMMIT.match(ref):
        return f"commit `{ref[:12]}`"
    path, _, function = ref.partition(": ")
    if _KERNEL_FILE.match(path):
        return f"{{kernel}}`{function or path} <{path}@{version}>`"
    return f"`{ref}`"


def _version(rule: Rule) -> str:
    """The kernel tag a rule's source citations link to: the baseline's for a rule of level 0, else the
    merged series'."""
    return "v6.13" if rule.holds_at("0") else "v6.15"


def table(traces: Iterable[Trace], pages: Collection[str] = ()) -> str:
    """The traceability table in Markdown: the rule (its id, which carries the row's anchor, and the
    levels where it holds), its statement and where it comes from (lore mails, commits, and kernel files
    at v6.13 or v6.15), the tests that check it, and the chapters that show it.

    A rule no test names reads **untested**; a test file that names a rule outside any test function is
    listed by its file name.  A chapter among ``pages`` (docnames the book builds, see :func:`toc_pages`)
    links to its page with ``{doc}``; a page the book does not build yet (a draft) is shown as its file
    name.
    """
    rows = []
    for t in traces:
        checks = _checks(t)
        chapters = ", ".join(f"{{doc}}`/{page}`" if page in pages else f"`{page}.md` (draft)"
                             for page in t.chapters) or "-"
        cites = "; ".join(_cite(c, _version(t.rule)) for c in t.rule.cites)
        rule = f'<span id="{anchor(t.rule.id)}"></span>**{t.rule.id}**<br>holds at {_escape(holds_at(t.rule))}'
        statement = f"{_escape(t.rule.statement)}<br>Source: {cites}"
        rows.append([rule, statement, "<br>".join(checks) or "**untested**", chapters])
    return markdown_table(["rule", "statement and source", "checked by", "shown in"], rows)


def _checks(t: Trace) -> list[str]:
    """Per test file, its file name and the test functions naming the rule (the file alone when only
    its docstring or comments do), one file per line of the cell."""
    by_file: dict[str, list[str]] = {Path(f).name: [] for f in t.tests}
    for name in t.functions:
        file, _, function = name.partition("::")
        by_file.setdefault(file, []).append(function)
    return [_breakable(file) + (": " + ", ".join(_breakable(fn) for fn in fns) if fns else "")
            for file, fns in by_file.items()]


def _breakable(name: str) -> str:
    """A code literal the browser may break after each underscore: long test names would otherwise make
    their column as wide as the longest name."""
    return "<code>" + _escape(name).replace("\\_", "\\_<wbr>") + "</code>"


def summary(traces: Iterable[Trace]) -> dict[str, int]:
    """Counts for the appendix's prose: rules, tested rules, rules named by a chapter, and untested rules."""
    traces = tuple(traces)
    return {
        "rules": len(traces),
        "tested": sum(t.tested for t in traces),
        "in_chapters": sum(bool(t.chapters) for t in traces),
        "untested": sum(not t.tested for t in traces),
    }

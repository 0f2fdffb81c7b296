"""The series as levels: the package as of any step of the patch series, generated from one source.

Level ``0`` is the baseline kernel (about v6.13), levels ``1``..``6`` apply the v6 patches in order, and
``6.15`` is the series as merged with its early fixes (:data:`tryalloc.series.rules.LEVELS`).  The model
carries the whole v6 series (``try_alloc_pages``, ``free_pages_nolock``, ``local_trylock_t``, the memcg
stock under a trylock, memcg in ``try_alloc_pages``, ``bpf_map_alloc_pages`` through
``try_alloc_pages``) and the 6.15 fixes to its code (the polarity fix, no second trylock,
``consume_stock`` trying only when it may not spin); 6.15 merged patch 6 as v6 had it.  The package you
import is the last level; code that a patch added or replaced carries *level markers* (after the
craftinginterpreters tool chain, which keeps every snapshot of the book's interpreters in one annotated
source):

``# @since 2`` ... ``# @end``
    the lines between exist from level 2 on;
``# @until 6.15`` ... ``# @end``
    the lines exist only before 6.15; since they are not live in the package you import, each is
    written commented out behind ``#~`` and a space, so the package stays plain Python;
``# @since 1 @until 6.15`` ... ``# @end``
    both bounds; blocks nest;
``code  # @since 1``
    one line (a trailing marker).

:func:`source_at` strips the markers for a level; :func:`package_at` writes that level's package;
:func:`load` imports it under its own name (``tryalloc_L2``), so a notebook can hold two levels side by
side; :func:`patch_diff` is the unified diff between two levels — the patch, as the model sees it.

One module is shared instead of copied: a loaded level's ``errors`` *is* the loading package's
``tryalloc.errors`` (:func:`load` puts it in ``sys.modules`` as ``tryalloc_L2.errors`` before the level
runs), so ``except tryalloc.DeadlockError`` catches a level's report and a report is the same class at
every level.  That is why ``errors.py`` carries no level markers (:func:`load` refuses a level whose
``errors.py`` differs).  A level written with :func:`package_at` and put first on ``PYTHONPATH`` (as
``make test-levels`` does) is still a whole package on its own: there its ``errors`` is simply
``tryalloc.errors``.
Malformed markers raise :class:`LevelMarkerError` naming the file and line.
"""
from __future__ import annotations

import difflib
import hashlib
import importlib.util
import os
import re
import sys
import tempfile
from pathlib import Path

from .. import errors
from .rules import LEVELS

#: The level of this copy of the package (rewritten in every generated copy).
LEVEL = "6.15"
FINAL = LEVELS[-1]
PACKAGE = Path(__file__).resolve().parent.parent

_BLOCK = re.compile(r"^\s*# @(since|until)\s+([\w.]+)(?:\s+@until\s+([\w.]+))?\s*$")
_END = re.compile(r"^\s*# @end\s*$")
_TRAIL = re.compile(r"\s+# @(since|until)\s+([\w.]+)(?:\s+@until\s+([\w.]+))?\s*$")
_LEVEL_LINE = re.compile(r'^LEVEL = "[^"]*"$')
_COMMENTED = re.compile(r"^(\s*)#~ ?")


class LevelMarkerError(ValueError):
    """A level marker is malformed: an unknown level, an unclosed or unopened block, or dead code
    that is not commented out (or live code that is)."""


def _rank(level: str, where: str) -> int:
    try:
        return LEVELS.index(level)
    except ValueError:
        raise LevelMarkerError(f"{where}: unknown level {level!r}; levels are {', '.join(LEVELS)}") from None


def _bounds(kind: str, first: str, second: str | None, where: str) -> tuple[int, int]:
    if kind == "since":
        lo = _rank(first, where)
        hi = _rank(second, where) if second else len(LEVELS)
    else:
        if second:
            raise LevelMarkerError(f"{where}: write '@since A @until B', not '@until' first")
        lo, hi = 0, _rank(first, where)
    if lo >= hi:
        raise LevelMarkerError(f"{where}: the block exists at no level ({first}..{second or ''})")
    return lo, hi


def source_at(text: str, level: str, name: str = "<source>") -> str:
    """The text of one source file as of ``level``: markers dropped, absent blocks removed, present
    superseded lines uncommented."""
    rank = _rank(level, name)
    final = len(LEVELS) - 1
    out: list[str] = []
    stack: list[tuple[int, int, int]] = []  # (lo, hi, line number) of open blocks
    for no, line in enumerate(text.splitlines(keepends=True), 1):
        where = f"{name}:{no}"
        m = _BLOCK.match(line)
        if m:
            lo, hi = _bounds(m.group(1), m.group(2), m.group(3), where)
            stack.append((lo, hi, no))
            continue
        if _END.match(line):
            if not stack:
                raise LevelMarkerError(f"{where}: '# @end' without an open block")
            stack.pop()
            continue
        lo, hi = 0, len(LEVELS)
        for b_lo, b_hi, _ in stack:
            lo, hi = max(lo, b_lo), min(hi, b_hi)
        t = _TRAIL.search(line)
        if t:
            t_lo, t_hi = _bounds(t.group(1), t.group(2), t.group(3), where)
            lo, hi = max(lo, t_lo), min(hi, t_hi)
            line = line[: t.start()] + "\n"
        live_in_final = lo <= final < hi
        commented = bool(_COMMENTED.match(line))
        if line.strip():
            if not live_in_final and not commented:
                raise LevelMarkerError(f"{where}: this line is gone by level {FINAL}; write it as '#~ ...'")
            if live_in_final and commented:
                raise LevelMarkerError(f"{where}: '#~' marks superseded code, but this line is live at {FINAL}")
        if lo <= rank < hi:
            if commented:
                line = _COMMENTED.sub(r"\1", line, count=1)
            if _LEVEL_LINE.match(line.rstrip("\n")):
                line = f'LEVEL = "{level}"\n'
            out.append(line)
    if stack:
        raise LevelMarkerError(f"{name}:{stack[-1][2]}: block opened here is never closed with '# @end'")
    return "".join(out)


def sources() -> dict[str, str]:
    """Every module of the package as written (the last level), keyed by path relative to it."""
    return {p.relative_to(PACKAGE).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}


def package_at(level: str, dest: Path | None = None) -> Path:
    """Write the package as of ``level`` (into a cache folder keyed by the sources' hash unless ``dest``
    is given) and return the folder holding the ``tryalloc`` directory."""
    files = sources()
    if dest is None:
        digest = hashlib.sha256("".join(files.values()).encode()).hexdigest()[:12]
        base = Path(os.environ.get("TRYALLOC_GEN", Path(tempfile.gettempdir()) / "tryalloc-levels"))
        dest = base / digest / f"level_{level}"
    root = dest / "tryalloc"
    stamp = root / ".complete"
    if not stamp.exists():
        for rel, text in files.items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(source_at(text, level, rel), encoding="utf-8")
        stamp.write_text(level)
    return dest


def module_name(level: str) -> str:
    """The import name of a generated level: ``tryalloc_L6_15`` for ``6.15``."""
    _rank(level, "module_name")
    return "tryalloc_L" + level.replace(".", "_")


def load(level: str):
    """Import the package as of ``level`` under :func:`module_name` (once; later calls reuse it)."""
    name = module_name(level)
    if name in sys.modules:
        return sys.modules[name]
    root = package_at(level) / "tryalloc"
    if (root / "errors.py").read_text(encoding="utf-8") != (PACKAGE / "errors.py").read_text(encoding="utf-8"):
        raise LevelMarkerError(f"errors.py differs at level {level}: the exception classes are shared by every "
                               "level, so errors.py may carry no level markers")
    spec = importlib.util.spec_from_file_location(name, root / "__init__.py", submodule_search_locations=[str(root)])
    module = importlib.util.module_from_spec(spec)
    shared = {name: module, f"{name}.errors": errors}
    sys.modules.update(shared)
    module.errors = errors
    try:
        spec.loader.exec_module(module)
    except BaseException:
        for key in shared:
            del sys.modules[key]
        raise
    return module


def patch_diff(old: str, new: str, context: int = 3) -> str:
    """The unified diff of the package from level ``old`` to level ``new``, file by file."""
    chunks = []
    for rel, text in sources().items():
        a = source_at(text, old, rel).splitlines(keepends=True)
        b = source_at(text, new, rel).splitlines(keepends=True)
        if a != b:
            chunks.extend(difflib.unified_diff(a, b, f"a/tryalloc/{rel}", f"b/tryalloc/{rel}", n=context))
    return "".join(chunks)


def main(argv: list[str] | None = None) -> int:
    """``python -m tryalloc.series write LEVEL DEST`` writes a level's package under DEST;
    ``python -m tryalloc.series diff OLD NEW`` prints the patch between two levels."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 3 and args[0] == "write":
        print(package_at(args[1], Path(args[2])))
        return 0
    if len(args) == 3 and args[0] == "diff":
        sys.stdout.write(patch_diff(args[1], args[2]))
        return 0
    print(main.__doc__, file=sys.stderr)
    return 2


"""The chapters' source keeps the book's writing rules (``book/run-it-yourself.md``, "How this book is
written"), so that a sentence cannot drift from the run:

* in-text values are ``{eval}`name``` of a name the chapter's code assigns once (myst-nb evaluates it
  during the inline execution, jupyterlab-myst when the reader runs the notebook; a name assigned twice
  would show different values in the two);
* no cell is tagged ``remove-cell`` (inline execution skips such cells: a hidden assertion would never run);
* rule ids in prose are ``{rule}`` roles, and nothing sends the reader to the specification;
* ``{kernel}`` and ``{rule}`` targets exist, code cells stay within 88 columns.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from test_book import toc_pages

from tryalloc.errors import InvalidArgumentError
from tryalloc.series import kernel_source
from tryalloc.series.rules import RULES

ROOT = Path(__file__).resolve().parent.parent
PAGES = toc_pages()
IDS = {p: p.relative_to(ROOT).as_posix() for p in PAGES}
# a cell's options are ``:key: value`` lines or a YAML block between ``---`` lines (figure cells)
CELL = re.compile(r"```\{code-cell\}[^\n]*\n(---\n.*?\n---\n|(?::[^\n]*\n)*)(.*?)\n```", re.S)
RULE_ID = re.compile(r"(?<![\w.`])(R\d+\.\d+|S9\.\d+[a-z]?(?:\.\d+)?|I[1-9])(?![\w`])")
ROLE = re.compile(r"\{(\w+(?::\w+)?)\}`([^`]*)`")


def _text(page: Path) -> str:
    """The page without its literals, ``double`` or single-backtick ones that are not a role's target
    (where the writing rules show a role)."""
    text = re.sub(r"``.*?``", "", page.read_text(), flags=re.S)
    return re.sub(r"(\{[\w:]+\}`[^`]*`)|`[^`\n]+`", lambda m: m.group(1) or "", text)


def _cells(page: Path) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in CELL.finditer(page.read_text())]


def _prose(page: Path) -> str:
    """The page without its front matter, code cells, fenced code, literals and roles' targets."""
    text = re.sub(r"^---\n.*?\n---\n", "", _text(page), flags=re.S)
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return text


def _assigned(code: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in ast.walk(ast.parse(code)):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For)):
            targets = [node.target]
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)):
            names = [node.name] if hasattr(node, "name") else [a.asname or a.name.split(".")[0] for a in node.names]
            for name in names:
                counts[name] = counts.get(name, 0) + 1
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name):
                    counts[sub.id] = counts.get(sub.id, 0) + 1
    return counts


def _module_level(code: str) -> set[str]:
    """Names bound at the top level of a cell (not inside a function)."""
    names = set()
    for node in ast.parse(code).body:
        for sub in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) else [node]:
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                names.add(sub.id)
            elif isinstance(sub, (ast.FunctionDef, ast.ClassDef)):
                names.add(sub.name)
    return names


@pytest.mark.parametrize("page", PAGES, ids=IDS.get)
def test_in_text_values_are_eval_roles_of_names_assigned_once(page):
    text = _text(page)
    assert "{glue:text}" not in text and "{glue}`" not in text, "use {eval}`name` for in-text values"
    names = [target for role, target in ROLE.findall(text) if role == "eval"]
    code = "\n".join(src for _, src in _cells(page))
    bound = _assigned(code)
    top = set().union(*(_module_level(src) for _, src in _cells(page))) if _cells(page) else set()
    for name in names:
        assert re.fullmatch(r"[A-Za-z_]\w*", name), f"{{eval}}`{name}`: a plain name (myst-nb's default pattern)"
        assert name in top, f"{{eval}}`{name}`: no cell of {page.name} assigns {name} at its top level"
        assert bound.get(name) == 1, f"{{eval}}`{name}` is bound {bound.get(name)} times in {page.name}"


@pytest.mark.parametrize("page", PAGES, ids=IDS.get)
def test_no_cell_is_tagged_remove_cell(page):
    for head, _ in _cells(page):
        assert "remove-cell" not in head and "remove_cell" not in head, \
            f"{page.name}: inline execution skips remove-cell cells; tag [remove-input, remove-output]"


@pytest.mark.parametrize("page", [p for p in PAGES if "appendix" not in p.parts], ids=IDS.get)
def test_prose_links_rules_and_never_cites_the_specification(page):
    prose = _prose(page)
    assert not re.search(r"\bspec(ification)?('s)? (section|§)|\bsection \d+(\.\d+)*\b", prose, re.I), \
        f"{page.name} sends the reader to the specification"
    without_roles = ROLE.sub(lambda m: "" if m.group(1) == "rule" else m.group(0), prose)
    bare = sorted(set(RULE_ID.findall(re.sub(r"`[^`]*`", "", without_roles))))
    assert bare == [], f"{page.name}: write rule ids as {{rule}}`id`: {bare}"


def test_role_targets_exist():
    ids = {r.id for r in RULES}
    bad = []
    for page in PAGES:
        for role, target in ROLE.findall(_text(page)):
            target = re.sub(r"^.*<(.*)>$", r"\1", target)
            if role == "rule" and target not in ids:
                bad.append(f"{page.name}: rule {target}")
            if role == "kernel":
                try:
                    kernel_source.parse(target)
                except InvalidArgumentError as exc:
                    bad.append(f"{page.name}: {exc}")
    assert bad == []


@pytest.mark.parametrize("page", PAGES, ids=IDS.get)
def test_code_cells_fit_88_columns(page):
    long = [f"{page.name}: {line[:60]}..." for _, src in _cells(page)
            for line in src.splitlines() if len(line) > 88]
    assert long == []


def test_no_part_opens_with_a_chapter_of_its_own_name():
    """The sidebar would read "The machine > The machine"."""
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    for part in toc["parts"]:
        first = ROOT / f"{part['chapters'][0]['file']}.md"
        title = re.search(r"^# (.+)$", first.read_text(), re.M).group(1)
        assert title.strip().lower() != part["caption"].strip().lower(), first.name


@pytest.mark.parametrize("page", [p for p in PAGES if "## Exercises" in p.read_text()], ids=IDS.get)
def test_exercises_end_the_page_and_hide_their_answers(page):
    """Two to four exercises, last on the page; the reader's cells hide their output in the book and
    the answers sit in collapsed admonitions whose values the run computed."""
    section = page.read_text().split("## Exercises", 1)[1]
    assert "\n## " not in section, f"{page.name}: the exercises are not the last section"
    assert 2 <= len(re.findall(r"^\*\*\d\. ", section, re.M)) <= 4
    answers = re.findall(r":::\{admonition\} Answers?\n:class: dropdown\n(.*?)\n:::", section, re.S)
    assert answers and all("{eval}" in a or "{kernel}" in a or "{rule}" in a for a in answers)
    for head, _ in CELL.findall(section):
        if head:
            assert "remove-output" in head, f"{page.name}: an exercise cell shows its answer"


@pytest.mark.parametrize("page", PAGES, ids=IDS.get)
def test_figure_captions_carry_no_roles(page):
    """A caption is cell metadata: JupyterLab shows it as written, so a role there would read as
    source.  Values belong in the prose next to the figure."""
    for head, _ in _cells(page):
        caption = re.search(r"caption: \|?\n?((?:[ \t]+.*\n?)+)", head)
        assert not (caption and ROLE.search(caption.group(1))), f"{page.name}: a role in a caption"


#: A code cell that runs the model: boots a machine, searches or replays schedules, or runs a shared scenario.
RUNS_MODEL = re.compile(r"\bKernel\(|\bexplore\(|\breplay\(|\bscenarios\b|\brt_matrix\(|\bsearch_injections\(|\.run\(")
#: Pages that run the model and have no exercises, each with the reason.
NO_EXERCISES = {
    "book/run-it-yourself.md": "the how-to appendix: its one cell checks the installation, it is no experiment",
}


def _runs_model(page: Path) -> bool:
    return any(RUNS_MODEL.search(src) for _, src in _cells(page))


@pytest.mark.parametrize("page", [p for p in PAGES if _runs_model(p) and IDS[p] not in NO_EXERCISES],
                         ids=IDS.get)
def test_every_chapter_that_runs_the_model_ends_with_exercises(page):
    """A page that runs the model gives the reader two to four exercises to change and rerun it
    (the format is checked by test_exercises_end_the_page_and_hide_their_answers); the pages that
    may skip them are listed in NO_EXERCISES with the reason."""
    text = page.read_text()
    assert "\n## Exercises\n" in text, f"{page.name} runs the model but has no exercises"
    assert 2 <= len(re.findall(r"^\*\*\d\. ", text.split("\n## Exercises\n", 1)[1], re.M)) <= 4


def test_the_exercise_exemptions_name_pages_of_the_book():
    assert set(NO_EXERCISES) <= set(IDS.values())

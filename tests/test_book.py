"""The book's frame: every page in the table of contents is a runnable MyST notebook, the helpers the
notebooks call show the package's real code, and the history the preface draws is well formed."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import yaml

from tryalloc import book
from tryalloc.errors import InvalidArgumentError
from tryalloc.kernel.locking import spinlock
from tryalloc.series import history

ROOT = Path(__file__).resolve().parent.parent


def _toc_files(entries):
    for entry in entries:
        if "file" in entry:
            yield entry["file"]
        for key in ("chapters", "sections", "parts"):
            yield from _toc_files(entry.get(key, []))


def toc_pages() -> list[Path]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    names = [toc["root"], *_toc_files(toc.get("parts", []) + toc.get("chapters", []))]
    return [ROOT / f"{name}.md" for name in names]


def front_matter(path: Path) -> dict:
    m = re.match(r"---\n(.*?)\n---\n", path.read_text(), re.S)
    assert m, f"{path} has no front matter"
    return yaml.safe_load(m.group(1))


def test_toc_lists_the_preface_and_the_machine_chapter():
    pages = [p.relative_to(ROOT).as_posix() for p in toc_pages()]
    assert pages[0] == "book/intro.md"
    assert "book/machine/index.md" in pages and len(pages) == len(set(pages))


@pytest.mark.parametrize("page", toc_pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_page_is_a_myst_notebook_with_a_python3_kernel(page):
    assert page.exists(), f"{page} is listed in _toc.yml but missing"
    meta = front_matter(page)
    assert meta["jupytext"]["text_representation"]["format_name"] == "myst"
    assert meta["kernelspec"]["name"] == "python3"
    assert meta["kernelspec"]["language"] == "python"


@pytest.mark.parametrize("page", toc_pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_code_cells_import_the_package_instead_of_defining_model_classes(page):
    cells = re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", page.read_text(), re.S)
    assert cells, f"{page} has no code cell"
    code = "\n".join(cells)
    assert "import tryalloc" in code or "from tryalloc" in code
    assert not re.search(r"^class ", code, re.M), f"{page} defines a class: model code belongs in tryalloc/"


def test_no_ipynb_under_book():
    assert list((ROOT / "book").rglob("*.ipynb")) == []


def test_config_is_strict_and_points_at_the_repository():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cfg["only_build_toc_files"] is True
    # inline: every build runs every cell (no cache), and {eval} roles read the running kernel
    assert cfg["execute"]["execute_notebooks"] == "inline"
    assert cfg["execute"]["allow_errors"] is False
    assert cfg["sphinx"]["config"]["nb_execution_raise_on_error"] is True
    assert cfg["repository"]["branch"] == "main"
    assert cfg["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    for excluded in ("_build", ".venv", "tests", "tryalloc"):
        assert excluded in cfg["exclude_patterns"]


def test_show_source_returns_the_real_source():
    src = book.show_source(spinlock._lock)
    assert src.text == inspect.getsource(spinlock._lock)
    assert src.text.startswith("def _lock(")
    assert src.path == "tryalloc/kernel/locking/spinlock.py"
    assert src.line == inspect.getsourcelines(spinlock._lock)[1]
    assert str(src).startswith(f"# {src.path}, line {src.line}\n")
    html = src._repr_html_()
    assert "_lock" in html and "<span" in html and src.path in html


def test_show_source_refuses_what_has_no_source():
    with pytest.raises(InvalidArgumentError, match="no Python source"):
        book.show_source(len)


def test_markdown_table_escapes_pipes_and_checks_row_width():
    table = book.markdown_table(["a", "b"], [["x|y", "z"]])
    assert table.splitlines() == ["| a | b |", "| --- | --- |", "| x\\|y | z |"]
    # a repr that looks like an HTML tag is escaped, code spans, roles and the two kept tags are not
    cell = book.markdown_table(["a"], [["gets <page pfn:0x0>; `<code>` {rule}`x <y>`<br>"]]).splitlines()[2]
    assert cell == "| gets &lt;page pfn:0x0&gt;; `<code>` {rule}`x <y>`<br> |"
    with pytest.raises(InvalidArgumentError, match="2 cells"):
        book.markdown_table(["a", "b"], [["only one"]])


def test_patch_table_has_one_row_per_v6_patch_with_its_lore_link():
    lines = book.patch_table().splitlines()
    assert len(lines) == 2 + len(history.PATCHES) == 8
    for patch, line in zip(history.PATCHES, lines[2:], strict=True):
        assert history.lore(patch.message_id) in line and patch.commit[:12] in line


def test_history_is_dated_in_order_and_every_entry_cites_an_id():
    whens = [m.when for m in history.HISTORY]
    assert whens == sorted(whens)
    versions = [m.label.split()[0] for m in history.HISTORY if m.kind == "version"]
    assert versions == [f"v{i}" for i in range(1, 10)]
    assert history.MERGE.commit.startswith("aa918db707fb")
    for m in history.HISTORY:
        assert m.message_id or m.commit
        if m.commit:
            assert re.fullmatch(r"[0-9a-f]{12,40}", m.commit), m.label


def test_milestone_without_an_id_or_with_an_unknown_kind_is_refused():
    from datetime import date

    with pytest.raises(ValueError, match="cites a message-id or a commit"):
        history.Milestone(date(2025, 1, 1), "x", "fix")
    with pytest.raises(ValueError, match="unknown milestone kind"):
        history.Milestone(date(2025, 1, 1), "x", "rumour", commit="aa918db707fb")

"""Every chapter runs as a notebook outside the book, the way a Binder or Jupyter reader runs it.

Each page the table of contents lists is converted from its MyST Markdown to a notebook with jupytext and
executed by nbclient on the ``python3`` kernel, in the chapter's own folder (where Jupyter starts a
notebook's kernel).  No cell may leave an error output, except a cell tagged ``raises-exception`` (the
Jupyter convention for a cell meant to fail).  A notebook gets 60 s in all: each cell's timeout is what is
left of that budget.  Select with ``pytest -m notebooks``.

The Binder environment itself is checked here too, as far as it can be without building its image: its
pins agree with the project's and its postBuild makes ``.md`` open as a notebook.
"""
from __future__ import annotations

import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jupytext
import pytest
from nbclient import NotebookClient
from test_book import toc_pages

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / ".binder"
BUDGET_S = 60


def _errors(nb) -> list[str]:
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or "raises-exception" in cell.metadata.get("tags", []):
            continue
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                found.append(f"cell {i}: {out.ename}: {out.evalue}")
    return found


def _run(page: Path):
    """Execute one chapter as a notebook; return it with its outputs, or the exception that stopped it."""
    nb = jupytext.read(page)
    begin = time.monotonic()
    client = NotebookClient(
        nb,
        kernel_name="python3",
        resources={"metadata": {"path": str(page.parent)}},
        timeout=BUDGET_S,
        timeout_func=lambda cell: max(1, int(BUDGET_S - (time.monotonic() - begin))),
        allow_errors=True,  # collect every error, then report them all
    )
    try:
        client.execute()
    except Exception as exc:  # a timeout or a dead kernel: reported by the chapter's own test
        return nb, exc
    return nb, None


@pytest.fixture(scope="module")
def executed():
    """Every chapter, run two or more at a time (each in its own kernel): the suite waits for the slowest
    chapters rather than for the sum of all of them."""
    pages = toc_pages()
    with ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 2))) as pool:
        return dict(zip(pages, pool.map(_run, pages), strict=True))


@pytest.mark.notebooks
@pytest.mark.parametrize("page", toc_pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_chapter_runs_as_a_notebook(page, executed):
    nb, stopped = executed[page]
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert stopped is None, f"{page.name} did not finish within {BUDGET_S} s or its kernel died: {stopped!r}"
    assert _errors(nb) == []



@pytest.mark.notebooks
@pytest.mark.parametrize("page", toc_pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_figure_is_an_output_jupyterlab_shows(page, executed):
    """A figure is its cell's SVG output, captioned and named by the cell's ``mystnb.figure`` metadata, so
    JupyterLab shows the very picture the site does (a ``{glue:figure}`` is a red box there)."""
    nb, _ = executed[page]
    assert not any("{glue:figure}" in cell.source for cell in nb.cells if cell.cell_type == "markdown")
    for i, cell in enumerate(nb.cells):
        figure = cell.metadata.get("mystnb", {}).get("figure")
        if cell.cell_type != "code" or figure is None:
            continue
        assert figure.get("name") and figure.get("caption"), f"cell {i}: a figure needs a name and a caption"
        kinds = [set(out.get("data", {})) for out in cell.get("outputs", [])]
        assert any("image/svg+xml" in k for k in kinds), f"cell {i} ({figure['name']}) shows no SVG: {kinds}"

def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line.strip())
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def test_binder_pins_agree_with_the_project_and_install_the_package():
    binder, project = _pins(BINDER / "requirements.txt"), _pins(ROOT / "requirements.txt")
    shared = binder.keys() & project.keys()
    assert {"greenlet", "matplotlib", "myst-nb", "jupytext", "ipykernel"} <= shared
    assert {name: binder[name] for name in shared} == {name: project[name] for name in shared}
    assert {"jupyterlab", "jupyterlab-myst"} <= binder.keys()
    lines = [line.strip() for line in (BINDER / "requirements.txt").read_text().splitlines()]
    assert "-e ." in lines  # a local requirement: repo2docker installs it after copying the repository
    assert re.fullmatch(r"python-3\.(1[1-9])", (BINDER / "runtime.txt").read_text().strip())


def test_binder_opens_markdown_as_notebooks():
    post = BINDER / "postBuild"
    assert post.stat().st_mode & 0o111, "postBuild must be executable"
    assert post.read_text().startswith("#!")
    assert "overrides.json" in post.read_text() and "share/jupyter/lab/settings" in post.read_text()
    viewers = json.loads((BINDER / "overrides.json").read_text())["@jupyterlab/docmanager-extension:plugin"]
    assert viewers["defaultViewers"] == {"markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"}

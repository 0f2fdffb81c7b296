"""The Binder environment, as a reader meets it: JupyterLab with the chapters opening as notebooks, every
cell running, and the in-text values (``{eval}``) and the figures visible.

Binder builds its image from ``.binder/`` with repo2docker.  This test does the same steps by hand on
this machine: a fresh virtual environment, ``pip install -r .binder/requirements.txt`` from the
repository (which installs the package, as ``-e .`` does on Binder), ``.binder/postBuild``, then
JupyterLab on 127.0.0.1 with a random token, serving a copy of ``book/`` (JupyterLab autosaves, and must
not rewrite the chapters).  Headless Chromium (Debian's package, driven by Playwright) opens one chapter
of each part of the book, runs all its cells from the Run menu and checks what the reader sees.

It takes minutes (the install), so it runs only when asked: ``make binder-test`` (and ``.ci/run``) sets
``TRYALLOC_BINDER=required``; otherwise it is skipped with that message.  Every step has a time limit,
and the test stops the server it started.  Screenshots land in ``_build/screenshots/binder__*.png``.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright
except ImportError:  # reported by the fixture, when the test is asked for
    sync_playwright = None

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "_build" / "screenshots"
INSTALL_S, START_S, RUN_S = 900, 90, 240


def _chapters() -> list[str]:
    """One page per part of the table of contents: the part's first section (or its first chapter)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = []
    for part in toc["parts"]:
        first = part["chapters"][0]
        pages.append(first["sections"][0]["file"] if first.get("sections") else first["file"])
    return pages


def _evals(docname: str) -> list[str]:
    """The names the page's prose evaluates (a ``literal`` that shows the role's syntax left out)."""
    text = re.sub(r"``.*?``", "", (ROOT / f"{docname}.md").read_text(), flags=re.S)
    return re.findall(r"\{eval\}`([^`]+)`", text)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd, **kw):
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if os.environ.get("TRYALLOC_BINDER") != "required":
        pytest.skip("the Binder environment test installs .binder/requirements.txt into a fresh venv and "
                    "runs JupyterLab (minutes): run it with `make binder-test`")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    tmp = tmp_path_factory.mktemp("binder")
    venv = Path(os.environ.get("TRYALLOC_BINDER_VENV") or tmp / "venv")
    if not (venv / "bin" / "jupyter").exists():  # TRYALLOC_BINDER_VENV: reuse one, while developing
        _run([sys.executable, "-m", "venv", str(venv)], timeout=120)
        _run([str(venv / "bin" / "pip"), "install", "-q", "-r", ".binder/requirements.txt"], cwd=ROOT,
             timeout=INSTALL_S)
    _run([str(ROOT / ".binder" / "postBuild")], env=dict(os.environ, NB_PYTHON_PREFIX=str(venv)), timeout=60)
    root = tmp / "root"
    shutil.copytree(ROOT / "book", root / "book")
    token, port = secrets.token_hex(16), _free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_DATA_DIR=str(tmp / "data"),
               JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), PATH=f"{venv / 'bin'}:{os.environ['PATH']}")
    cmd = [str(venv / "bin" / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = (tmp / "lab.log").open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_S
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).close()
                break
            except OSError:
                assert proc.poll() is None, f"JupyterLab exited: {(tmp / 'lab.log').read_text()[-2000:]}"
                assert time.monotonic() < deadline, f"JupyterLab did not answer within {START_S} s"
                time.sleep(0.5)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


@pytest.fixture(scope="module")
def browser(lab):
    assert sync_playwright is not None, "playwright is not installed (pip install -r requirements.txt)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM),
                              args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
        yield b
        b.close()


@pytest.mark.binder
@pytest.mark.parametrize("docname", _chapters())
def test_chapter_runs_in_jupyterlab_with_its_values_and_figures_visible(lab, browser, docname):
    base, token = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        # ?reset: a fresh workspace, so the previous test's notebook is not restored beside this one
        page.goto(f"{base}/lab/tree/{docname}.md?reset&token={token}")
        # postBuild's setting makes the .md open as a notebook, not in the text editor
        panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
        panel.locator(".jp-Cell").first.wait_for(timeout=60_000)
        # a fresh workspace asks once which kernel to start: the notebook's own, python3
        select = page.locator(".jp-Dialog").get_by_role("button", name="Select", exact=True)
        try:
            select.wait_for(timeout=5_000)
            select.click()
        except PlaywrightTimeout:
            pass
        idle = panel.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
        idle.wait_for(timeout=60_000)
        panel.locator(".jp-Notebook").click()
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        # done when every code cell shows an execution count and the kernel is idle again
        page.wait_for_function(
            "() => { const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');"
            " const ps = [...nb.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];"
            " return ps.length > 0 && ps.every(p => /\\[\\d+\\]/.test(p.textContent)); }",
            timeout=RUN_S * 1000)
        idle.wait_for(timeout=RUN_S * 1000)
        page.wait_for_timeout(1500)  # inline expressions are evaluated after their cell's turn

        # textContent, not innerText: JupyterLab does not lay out cells scrolled out of view
        def texts(selector):
            return panel.locator(selector).evaluate_all("els => els.map(e => e.textContent)")

        counts = texts(".jp-CodeCell .jp-InputPrompt")
        assert counts and all(re.fullmatch(r"\[\d+\]:", c.strip()) for c in counts), counts
        stderr = texts(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        errors = [e for e in stderr if re.search(r"Traceback|Error:|-{20}", e)]
        assert errors == [], f"{docname}: cells failed in JupyterLab:\n" + "\n".join(e[:500] for e in errors)
        rendered = ".jp-MarkdownCell .jp-RenderedHTMLCommon, .jp-MarkdownCell .myst"
        text = "\n".join(texts(rendered))
        assert text.strip(), f"{docname}: no rendered Markdown"
        # a role JupyterLab does not know is shown as its source; code literals may show one on purpose
        prose = "\n".join(panel.locator(rendered).evaluate_all(
            "els => els.map(e => { const c = e.cloneNode(true);"
            " c.querySelectorAll('code, pre').forEach(x => x.remove()); return c.textContent; })"))
        assert "{eval}" not in prose and "{glue" not in prose, f"{docname}: roles shown as source"
        # an expression not evaluated shows its source, as code; names with an underscore are not prose
        unshown = [name for name in _evals(docname) if "_" in name and re.search(rf"\b{name}\b", text)]
        assert unshown == [], f"{docname}: values not shown in JupyterLab: {unshown}"
        broken = panel.locator("img").evaluate_all("imgs => imgs.filter(i => !(i.naturalWidth > 0))"
                                                   ".map(i => i.src.slice(0, 80))")
        assert broken == []
    finally:
        SHOTS.mkdir(parents=True, exist_ok=True)  # also when a step timed out: the picture says where
        page.screenshot(path=str(SHOTS / f"binder__{docname.replace('/', '__')}.png"))
        page.close()

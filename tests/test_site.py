"""The published book, checked as a reader's browser sees it.

The tests marked ``site`` need the built book (``make book`` writes ``_build/html``) and Debian's
``chromium``; Playwright drives it headless against the site served by ``python -m http.server`` on
localhost.  Where the book or the browser is missing, or the build is older than the book's sources, they
are skipped with the reason, unless ``TRYALLOC_SITE=required`` (``make site-test``, CI) turns that into a
failure.  Every page is screenshotted whole in a 1400 px and a 390 px wide window, into
``_build/screenshots/<page>@<width>.png`` (CI keeps them as an artifact).

The figures are measured as a reader sees them: every figure has an alt text and is vector (SVG), or a
raster shown at no less than 90 % of its size; an SVG is never shrunk in a 1400 px window, and its smallest
text (the font size in the SVG times the scale it is shown at) is at least :data:`MIN_LABEL_PX` for the
window's width; in the wide window no figure or table runs past the content column.

The link check reads the HTML files directly: every local ``href`` must name a file of the site, and every
``#fragment`` an ``id`` in it.  No test here goes on the network.
"""
from __future__ import annotations

import os
import pkgutil
import re
import socket
import subprocess
import sys
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from test_book import toc_pages

import tryalloc
from tryalloc.series import kernel_source

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
# as root Chromium needs --no-sandbox; the rest keep it off the network (closed here) and quiet
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
BINDER = "https://mybinder.org/v2/gh/tryalloc/tryalloc/main?urlpath=lab/tree/{page}.md"
#: Console messages and uncaught errors of the theme that are not the book's fault, each with why it is
#: harmless.  Matched against the message text.
CONSOLE_ALLOWED = (
    # jupyter-book 1.x and sphinx-book-theme both add sphinx-thebe's settings script, so its `const` is
    # declared twice and the second copy throws; the first copy stands, and Thebe (live code) is not
    # enabled in this book anyway.
    re.compile(r"Identifier 'THEBE_JS_URL' has already been declared"),
    # pydata-sphinx-theme on a first visit: no light/dark choice stored yet, so it logs and uses "auto".
    re.compile(r"^Got invalid theme mode: \. Resetting to auto\.$"),
)

DOCNAMES = [p.relative_to(ROOT).with_suffix("").as_posix() for p in toc_pages()]
#: The smallest text a figure may show, in CSS px, by window width: a desktop window and a phone.
MIN_LABEL_PX = {1400: 10.0, 390: 9.0}


def _unavailable(reason: str):
    if os.environ.get("TRYALLOC_SITE") == "required":
        pytest.fail(reason)
    pytest.skip(reason)


def _check_built() -> None:
    if not (SITE / "searchindex.js").exists():
        _unavailable("the built book is missing: run `make book` first (or `make site-test`)")
    built = (SITE / "searchindex.js").stat().st_mtime  # rewritten by every build
    sources = [ROOT / "_toc.yml", ROOT / "_config.yml", *toc_pages()]
    newest = max(sources, key=lambda p: p.stat().st_mtime if p.exists() else 0)
    if newest.exists() and newest.stat().st_mtime > built:
        _unavailable(f"the built book is older than {newest.relative_to(ROOT)}: run `make book` again")


def _is_chapter(page: Path) -> bool:
    """A page with a code cell whose output the reader sees (not removed by its tags)."""
    heads = re.findall(r"```\{code-cell\}[^\n]*\n((?::[^\n]*\n)*)", page.read_text())
    return any("remove-cell" not in h and "remove-output" not in h for h in heads)


# --- offline link check ------------------------------------------------------------------------------


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key):
                self.ids.add(attrs[key])
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser


@pytest.mark.site
def test_internal_links_and_anchors_resolve():
    _check_built()
    pages = {p: _parse(p) for p in SITE.rglob("*.html")}
    broken = []
    for path, links in pages.items():
        for href in links.hrefs:
            url = urlsplit(href)
            if url.scheme or href.startswith("//"):
                continue  # external (and mailto:, javascript:): not checked offline
            target = (path.parent / unquote(url.path)).resolve() if url.path else path
            if target.is_dir():
                target = target / "index.html"
            where = f"{path.relative_to(SITE)} -> {href}"
            if not target.exists():
                broken.append(f"{where}: no such file")
            elif url.fragment and target.suffix == ".html":
                ids = (pages.get(target) or _parse(target)).ids
                if unquote(url.fragment) not in ids:
                    broken.append(f"{where}: no anchor #{url.fragment}")
    assert broken == []
    assert len(pages) >= len(DOCNAMES)


def test_api_reference_documents_every_module_of_the_package():
    api = (ROOT / "book" / "appendix" / "api.md").read_text()
    documented = set(re.findall(r"^\.\. automodule:: (\S+)$", api, re.M))
    modules = {"tryalloc"} | {m.name for m in pkgutil.walk_packages(tryalloc.__path__, "tryalloc.")
                              if not m.name.endswith(".__main__")}
    assert modules - documented == set(), "add `.. automodule::` blocks for these to book/appendix/api.md"
    assert documented - modules == set(), "book/appendix/api.md documents modules the package lacks"


def _docstrings():
    """(where, docstring) for every module of the package and the functions and classes it defines."""
    import importlib
    import inspect

    for name in sorted({"tryalloc"} | {m.name for m in pkgutil.walk_packages(tryalloc.__path__, "tryalloc.")}):
        module = importlib.import_module(name)
        yield name, module.__doc__
        for attr, obj in vars(module).items():
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == name:
                yield f"{name}.{attr}", obj.__doc__
                if inspect.isclass(obj):
                    for meth, member in vars(obj).items():
                        if inspect.isfunction(member) or isinstance(member, property):
                            yield f"{name}.{attr}.{meth}", member.__doc__


def test_docstrings_are_restructuredtext_the_api_reference_can_build():
    """The strict book build renders every docstring; this finds a broken one (an unclosed ``literal``, a
    stray indent) in seconds instead, naming it.  Sphinx roles are read as plain interpreted text."""
    import inspect
    import io

    from docutils.core import publish_doctree
    from docutils.utils import SystemMessage

    bad = []
    for where, doc in _docstrings():
        if not doc:
            continue
        text = re.sub(r":[\w:.-]+:`", "`", inspect.cleandoc(doc))
        try:
            publish_doctree(text, settings_overrides={"halt_level": 2, "warning_stream": io.StringIO()})
        except SystemMessage as exc:
            bad.append(f"{where}: {exc}")
    assert bad == []


def test_workflow_tests_builds_strictly_and_publishes_the_site():
    import yaml

    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    build, deploy = flow["jobs"]["build"], flow["jobs"]["deploy"]
    runs = [step.get("run") for step in build["steps"]]
    assert runs.index("make test") < runs.index("make book") < runs.index("make site-test")
    upload = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "_build/html"
    assert deploy["needs"] == "build" and deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert any(s.get("uses", "").startswith("actions/deploy-pages@") for s in deploy["steps"])
    assert "refs/heads/main" in deploy["if"]
    shots = next(s for s in build["steps"] if s.get("with", {}).get("path") == "_build/screenshots/")
    assert shots["uses"].startswith("actions/upload-artifact@") and shots["if"] == "always()"


# --- the site in a browser ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    """The built site on http://127.0.0.1:<free port>/, for the module's tests; stopped afterwards."""
    _check_built()
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(SITE)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base, timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(f"http.server did not answer on port {port}")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -r requirements.txt)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def _visit(page, site, path):
    """Load ``path`` of the site served at base URL ``site``.  Return the response and the console errors
    not on the allow-list; a failed request to the site itself (a missing image, script or stylesheet)
    counts as an error."""
    errors = []

    def note(text):
        if not any(allowed.search(text) for allowed in CONSOLE_ALLOWED):
            errors.append(text)

    page.on("console", lambda m: m.type == "error" and note(m.text))
    page.on("pageerror", lambda exc: note(f"uncaught: {exc}"))
    page.on("requestfailed", lambda r: r.url.startswith(site) and errors.append(f"failed: {r.url}"))
    page.on("response", lambda r: r.url.startswith(site) and r.status >= 400
            and errors.append(f"{r.status}: {r.url}"))
    response = page.goto(site + path, wait_until="load")
    return response, errors


@pytest.mark.site
@pytest.mark.parametrize("docname", DOCNAMES)
def test_page_loads_with_its_images_outputs_and_binder_link(server, page, docname):
    response, errors = _visit(page, server, f"{docname}.html")
    assert response.status == 200
    assert errors == []
    broken = page.eval_on_selector_all("img", "imgs => imgs.filter(i => !(i.naturalWidth > 0)).map(i => i.src)")
    assert broken == []
    text = page.inner_text("main")
    assert "Traceback" not in text
    if _is_chapter(ROOT / f"{docname}.md"):
        assert page.locator("div.cell_output").count() > 0, f"{docname} shows no executed output"
    # the launch button opens this very page as a notebook on Binder
    hrefs = page.eval_on_selector_all('a[href^="https://mybinder.org/"]', "as => as.map(a => a.href)")
    assert hrefs == [BINDER.format(page=docname)]


#: What a page's figures and tables measure in the browser: for each figure its image (natural and shown
#: width, whether it is SVG, the smallest font size the SVG declares and its viewBox width), and for each
#: figure and table whether it runs past the content column or scrolls sideways.
_MEASURE = """async () => {
  const article = document.querySelector('article.bd-article') || document.querySelector('main');
  const column = article.getBoundingClientRect().right;
  const figures = [];
  for (const figure of article.querySelectorAll('figure')) {
    const img = figure.querySelector('img');
    const entry = {id: figure.id, right: figure.getBoundingClientRect().right, column,
                   scrolls: figure.scrollWidth > figure.clientWidth + 1};
    if (img) {
      entry.src = img.getAttribute('src');
      entry.alt = img.getAttribute('alt') || '';
      entry.natural = img.naturalWidth;
      entry.shown = img.getBoundingClientRect().width;
      entry.svg = entry.src.endsWith('.svg');
      if (entry.svg) {
        const text = await (await fetch(img.src)).text();
        entry.viewBox = parseFloat(text.match(/viewBox="[\\d.]+ [\\d.]+ ([\\d.]+)/)[1]);
        const sizes = [...text.matchAll(/font-size: ?([\\d.]+)px/g)].map(m => parseFloat(m[1]));
        entry.texts = (text.match(/<text/g) || []).length;
        entry.smallest = sizes.length ? Math.min(...sizes) : null;
      }
    }
    figures.push(entry);
  }
  const tables = [...article.querySelectorAll('table')].map(t => ({
    right: t.getBoundingClientRect().right, column, scrolls: t.scrollWidth > t.clientWidth + 1,
    boxScrolls: t.parentElement.scrollWidth > t.parentElement.clientWidth + 1}));
  return {figures, tables, page: document.documentElement.scrollWidth};
}"""


@pytest.mark.site
@pytest.mark.parametrize("width", sorted(MIN_LABEL_PX, reverse=True))
@pytest.mark.parametrize("docname", DOCNAMES)
def test_figures_are_vector_legible_and_inside_the_column(server, browser, docname, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        response, errors = _visit(page, server, f"{docname}.html")
        assert response.status == 200 and errors == []
        SHOTS.mkdir(parents=True, exist_ok=True)
        tall = page.evaluate("document.documentElement.scrollHeight")  # Chromium captures up to 16384 px
        page.screenshot(path=str(SHOTS / f"{docname.replace('/', '__')}@{width}.png"), full_page=True,
                        clip={"x": 0, "y": 0, "width": width, "height": min(tall, 16000)})
        measured = page.evaluate(_MEASURE)
    finally:
        context.close()
    for fig in measured["figures"]:
        where = f"figure {fig['id'] or fig.get('src')} at {width} px"
        assert fig.get("natural"), f"{where}: no image"
        assert fig["alt"] and not fig["alt"].endswith(fig["src"].rsplit("/", 1)[-1]), f"{where}: no alt text"
        if not fig["svg"]:
            assert fig["shown"] >= 0.9 * fig["natural"], f"{where}: a raster shown at {fig['shown']:.0f} px of " \
                                                         f"{fig['natural']} px"
            continue
        assert fig["texts"] and fig["smallest"], f"{where}: its text is not text (svg.fonttype none)"
        label = fig["smallest"] * fig["shown"] / fig["viewBox"]
        assert label >= MIN_LABEL_PX[width], f"{where}: its smallest text is {label:.1f} px"
        if width >= 1400:
            assert fig["shown"] >= fig["natural"] - 0.5, f"{where}: shrunk to {fig['shown']:.0f} px"
    if width >= 1400:
        for kind in ("figures", "tables"):
            for item in measured[kind]:
                assert item["right"] <= item["column"] + 1 and not item["scrolls"], \
                    f"a {kind[:-1]} overflows the column at {width} px: {item}"
        assert not any(t["boxScrolls"] for t in measured["tables"]), "a table scrolls sideways at 1400 px"
        assert measured["page"] <= width


@pytest.mark.site
def test_search_finds_try_alloc_pages(server, page):
    _, errors = _visit(page, server, "search.html?q=try_alloc_pages")
    page.wait_for_selector("#search-results p.search-summary", timeout=15_000)
    hits = page.locator("#search-results ul.search li")
    assert hits.count() >= 1
    assert "intro" in " ".join(hits.evaluate_all("lis => lis.map(li => li.querySelector('a').href)"))
    assert errors == []


@pytest.mark.site
def test_next_and_previous_links_walk_the_table_of_contents(server, page):
    def walk(start, selector):
        seen = [start]
        page.goto(f"{server}{start}.html")
        while page.locator(selector).count():
            page.locator(selector).first.click()
            page.wait_for_load_state("load")
            seen.append(page.url.removeprefix(server).removesuffix(".html"))
            assert len(seen) <= len(DOCNAMES), f"the {selector} links loop: {seen}"
        return seen

    assert walk(DOCNAMES[0], "a.right-next") == DOCNAMES
    assert walk(DOCNAMES[-1], "a.left-prev") == DOCNAMES[::-1]


@pytest.mark.site
def test_rule_kernel_and_glossary_links_of_the_chapters_resolve():
    """The {rule} role links a rule's row (an anchor of the traceability page), {term} a glossary entry,
    {kernel} the source browser at a tag; every chapter that uses them gets working links."""
    _check_built()
    traceability = _parse(SITE / "book" / "appendix" / "traceability.html").ids
    glossary = _parse(SITE / "book" / "appendix" / "glossary.html").ids
    kinds = {"rule": 0, "term": 0, "kernel": 0}
    for path in (SITE / "book").rglob("*.html"):
        text = path.read_text(encoding="utf-8", errors="replace")
        for anchor in re.findall(r'class="rule reference external" href="[^"#]*traceability\.html#([^"]+)"', text):
            assert anchor in traceability, f"{path.name}: no rule row #{anchor}"
            kinds["rule"] += 1
        for anchor in re.findall(r'href="[^"#]*glossary\.html#(term-[^"]+)"', text):
            assert unquote(anchor) in glossary, f"{path.name}: no glossary entry #{anchor}"
            kinds["term"] += 1
        for url in re.findall(r'class="kernel-source reference external" href="([^"]+)"', text):
            tags = "|".join(re.escape(v) for v in kernel_source.VERSIONS)
            assert re.fullmatch(rf"https://elixir\.bootlin\.com/linux/({tags})/(C/ident/\w+|source/[\w./-]+(#L\d+)?)",
                                url), url
            kinds["kernel"] += 1
    assert all(kinds.values()), kinds

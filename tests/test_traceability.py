"""The rule traceability table (tryalloc.series.traceability): which tests and chapters name which rule.

These tests check the scanner, not the rules: on purpose they name no rule id literally (an id in this
file would count as a test of that rule).  Ids are taken from the registry by computation and written
into small source trees under tmp_path.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tryalloc.errors import InvalidArgumentError, TraceabilityError
from tryalloc.series import traceability
from tryalloc.series.history import lore
from tryalloc.series.rules import RULES

REPO = Path(__file__).resolve().parent.parent


def _prefix_pair():
    """Two registry ids where one is a prefix of the other followed by a digit (like x.1 and x.10)."""
    ids = [r.id for r in RULES]
    for short in ids:
        for long in ids:
            if long != short and long.startswith(short) and long[len(short)].isdigit():
                return short, long
    pytest.skip("the registry has no id that prefixes another")


def _tree(tmp_path, tests: dict[str, str], book: dict[str, str]):
    for folder, files in (("tests", tests), ("book", book)):
        (tmp_path / folder).mkdir()
        for name, text in files.items():
            path = tmp_path / folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return tmp_path


def test_ids_are_matched_as_whole_words_only():
    short, long = _prefix_pair()
    found = traceability.mentions([short, long], {"a.py": f"# checks {long}.", "b.py": f"x{short} {short}y"})
    assert found == {short: (), long: ("a.py",)}


def test_trace_reads_tests_and_chapters_but_not_the_appendix(tmp_path):
    a, b, c = (r.id for r in RULES[:3])
    root = _tree(
        tmp_path,
        tests={"test_x.py": f'"""{a}"""', "helper.txt": b},  # only *.py files count as tests
        book={"ch/one.md": f"see {b}", "appendix/table.md": f"{c} {a}"},
    )
    traces = {t.rule.id: t for t in traceability.trace(root, RULES[:3])}
    assert traces[a].tests == ("tests/test_x.py",) and traces[a].chapters == ()
    assert traces[b].tests == () and traces[b].chapters == ("book/ch/one",)
    assert traces[c].tests == () and traces[c].chapters == ()
    assert [t.tested for t in traces.values()] == [True, False, False]


def test_check_fails_for_a_rule_a_chapter_names_and_no_test_does(tmp_path):
    a, b = (r.id for r in RULES[:2])
    root = _tree(tmp_path, tests={"test_x.py": a}, book={"ch/one.md": f"{a} and {b}"})
    traces = traceability.trace(root, RULES[:2])
    with pytest.raises(TraceabilityError) as exc:
        traceability.check(traces)
    assert f"{b} (named in book/ch/one)" in str(exc.value) and f"{a} " not in str(exc.value)
    (root / "tests" / "test_y.py").write_text(f"# {b}")
    traceability.check(traceability.trace(root, RULES[:2]))  # now every rule a chapter names is tested


def test_check_accepts_untested_rules_no_chapter_names(tmp_path):
    root = _tree(tmp_path, tests={"test_x.py": ""}, book={"ch/one.md": "no ids here"})
    traces = traceability.trace(root, RULES[:5])
    traceability.check(traces)
    assert traceability.summary(traces) == {"rules": 5, "tested": 0, "in_chapters": 0, "untested": 5}


@pytest.mark.parametrize("missing", ["tests", "book"])
def test_trace_refuses_a_root_without_its_folders(tmp_path, missing):
    (tmp_path / ({"tests", "book"} - {missing}).pop()).mkdir()
    with pytest.raises(InvalidArgumentError, match=f"no {missing}/ folder"):
        traceability.trace(tmp_path)


def test_table_marks_untested_rules_and_escapes_markdown(tmp_path):
    r = dataclasses.replace(RULES[0], statement="__GFP_ZERO costs $1 | [sic] *x*.",
                            cites=("1234@example.org", "97769a53f117e2f33864c587d85992ee35194ecf", "mm/x.c: f()"))
    untested = traceability.Trace(r, (), ("book/ch/one",))
    tested = traceability.Trace(r, ("tests/test_a.py", "tests/test_b.py"), (), ("test_a.py::test_one",))
    draft = traceability.Trace(r, (), ("book/ch/two",))
    lines = traceability.table([untested, tested, draft], pages={"book/ch/one"}).splitlines()
    assert lines[0] == "| rule | statement and source | checked by | shown in |" and len(lines) == 5
    assert f'<span id="{traceability.anchor(r.id)}"></span>**{r.id}**' in lines[2]
    assert f"holds at {traceability.holds_at(r)}" in lines[2]
    assert "\\_\\_GFP\\_ZERO costs \\$1 \\| \\[sic\\] \\*x\\*." in lines[2]
    assert "**untested**" in lines[2] and "{doc}`/book/ch/one`" in lines[2]
    assert f"[1234]({lore('1234@example.org')})" in lines[2]
    mail = "20250124035655.78899-2-alexei.starovoitov@gmail.com"
    assert traceability._cite(mail, "v6.15") == f"[20250124035655.78899-2]({lore(mail)})"
    version = "v6.13" if r.holds_at("0") else "v6.15"
    assert "commit `97769a53f117`" in lines[2] and f"{{kernel}}`f() <mm/x.c@{version}>`" in lines[2]
    # a file named only outside a test function is listed by its name, after the functions
    assert "<code>test\\_<wbr>a.py</code>: <code>test\\_<wbr>one</code><br><code>test\\_<wbr>b.py</code>" in lines[3]
    assert "untested" not in lines[3]
    assert "`book/ch/two.md` (draft)" in lines[4] and "{doc}" not in lines[4]


def test_test_functions_name_the_functions_whose_source_or_decorator_names_an_id():
    a, b = (r.id for r in RULES[:2])
    source = (f'"""{b} in the module docstring only."""\n\n@mark({a!r})\ndef test_x():\n    pass\n\n\n'
              f"class TestY:\n    def test_z(self):\n        # checks {b}\n        pass\n\n\n"
              f"def helper():\n    return {a!r}\n")
    found = traceability.test_functions([a, b], {"tests/test_q.py": source})
    assert found == {a: ("test_q.py::test_x",), b: ("test_q.py::TestY::test_z",)}


def test_anchors_are_html_ids_and_levels_are_compact_runs():
    assert traceability.anchor("S9.13a.2") == "rule-s9-13a-2"
    always = dataclasses.replace(RULES[0], since="0", until=None)
    assert traceability.holds_at(always) == "from 0"
    bounded = dataclasses.replace(RULES[0], since="1", until="6.15")
    assert traceability.holds_at(bounded) == "1-6"
    gap = dataclasses.replace(RULES[0], since="1", until="2")
    assert traceability.holds_at(gap) == "1"


def test_toc_pages_are_the_root_and_every_file_entry(tmp_path):
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nparts:\n  - caption: A\n"
                                       "    chapters:\n      - file: book/a/index\n        sections:\n"
                                       "          - file: book/a/one.md\n  # - file: book/commented\n")
    assert traceability.toc_pages(tmp_path) == {"book/intro", "book/a/index", "book/a/one"}
    with pytest.raises(InvalidArgumentError, match="no _toc.yml"):
        traceability.toc_pages(tmp_path / "elsewhere")


def test_the_repository_traces_every_rule_once_and_passes_the_check():
    traces = traceability.trace(REPO)  # explicit: make test-levels imports a generated copy of the package
    assert [t.rule for t in traces] == list(RULES)
    for t in traces:
        assert all(name.startswith("tests/") and name.endswith(".py") for name in t.tests)
        assert not any(page.startswith(traceability.APPENDIX) for page in t.chapters)
    traceability.check(traces)  # what the appendix's build does
    assert {"book/intro", "book/appendix/traceability"} <= traceability.toc_pages(REPO)
    s = traceability.summary(traces)
    assert s["tested"] + s["untested"] == s["rules"] == len(RULES)

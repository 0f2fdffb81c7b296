"""The package's docstrings and comments never send a reader to the specification by section.

The specification is not in the repository, yet the book shows the package's docstrings (the API
reference) and its source (``tryalloc.book.show_source``).  So a comment or a string in ``tryalloc/``
states the fact and cites a commit, a lore message-id, the kernel source at a version or a rule id of
:mod:`tryalloc.series.rules`, never "spec 1.5" or "(spec section 10)".  Saying that the rule registry
restates the specification is fine; pointing at one of its sections is not.
"""
from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

import tryalloc

PACKAGE = Path(tryalloc.__file__).parent

#: A citation of the specification by section: "spec 1.5", "spec section 10", "specification 2.4",
#: "(spec 0.1)", "(spec, R1.3)", and a bare "section 9.5" or "sections 0.3, 0.4" (the package has no
#: numbered sections of its own to point at).
SECTION_CITATION = re.compile(
    r"\bspec(?:ification)?(?:['\u2019]s)?\s+(?:sections?\s*)?\d"
    r"|\bspec(?:ification)?(?:['\u2019]s)?\s+sections?\b"
    r"|\(spec\b"
    r"|\bsections?\s+\d",
    re.IGNORECASE,
)


def prose(source: str):
    """The comments and string literals of Python ``source`` (docstrings, rule statements, messages), with
    the line each starts on: the text a reader of the book can see.  Code is left out, so a name such as
    ``importlib.util.module_from_spec(spec)`` is not prose."""
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (tokenize.COMMENT, tokenize.STRING):
            yield tok.start[0], tok.string


def section_citations(source: str) -> list[tuple[int, str]]:
    """(line, matched text) of every citation of the specification by section in ``source``'s prose."""
    return [(line, m.group(0)) for line, text in prose(source) for m in SECTION_CITATION.finditer(text)]


@pytest.mark.parametrize("text", [
    '"""Stack depot (spec 1.5)."""',
    "x = 1  # the latent hazard of spec 9.11",
    '"""Spec section 10\'s RT / !RT / UP matrix."""',
    "# the hazard of spec sections 2.6 and 9.11",
    "# Sources: the spec's sections 0.3, 0.4 and 9.",
    "# a rule of the specification 2.4",
    '"""(spec, R1.3)"""',
    "#~     return not allowed  # as posted (spec 9.5)",
    "# Sources: its source table and its sections 0.3, 0.4 and 9.",
    '"""What the series touches (and section 5 for where patch 4 takes it)."""',
])
def test_a_section_citation_is_found(text: str) -> None:
    assert section_citations(text + "\n"), text


@pytest.mark.parametrize("text", [
    "module = importlib.util.module_from_spec(spec)",
    '"""The specification\'s rules, restated in this project\'s own words."""',
    "# the project never reads the specification at run time",
    '"""Patch 1 (97769a53f117; R1.9, S9.5.1)."""',
    '"""Spectrum 2 of the figure."""',
])
def test_other_text_is_not_a_section_citation(text: str) -> None:
    assert not section_citations(text + "\n"), text


def test_no_docstring_or_comment_cites_the_specification_by_section() -> None:
    found = [f"{path.relative_to(PACKAGE.parent)}:{line}: {text!r}"
             for path in sorted(PACKAGE.rglob("*.py"))
             for line, text in section_citations(path.read_text(encoding="utf-8"))]
    assert not found, "cite a commit, a message-id, the kernel source or a rule id instead:\n" + "\n".join(found)

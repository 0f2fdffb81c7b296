"""Sphinx roles the book's chapters and the package's docstrings share (``book/run-it-yourself.md`` shows
how to write them):

* ``{kernel}`rmqueue_pcplist``` (``:kernel:`` in a docstring): the kernel's definition at an exact tag,
  from :mod:`tryalloc.series.kernel_source` (``name@v6.15`` for another tag, ``mm/page_alloc.c#L12`` for a
  file and line).  A name the table lacks fails the build.
* ``{rule}`R1.2```: the rule's row in the traceability appendix, with its statement as the hover text.
  An id the registry lacks fails the build.
* ``{lore}`<message-id>```: the mail on lore.kernel.org.

The API reference also names each modelled function's kernel counterpart: a docstring of a function whose
name the table lists gets a last line "Kernel: ..." with the links at every tag that defines it.
"""
from __future__ import annotations

from docutils import nodes
from sphinx.util.docutils import ReferenceRole

from tryalloc.errors import InvalidArgumentError
from tryalloc.series import kernel_source
from tryalloc.series.history import lore
from tryalloc.series.rules import RULES
from tryalloc.series.traceability import TRACEABILITY_DOC, anchor

_RULES = {r.id: r for r in RULES}


class _Role(ReferenceRole):
    def fail(self, message: str):
        msg = self.inliner.reporter.error(message, line=self.lineno)
        return [self.inliner.problematic(self.rawtext, self.rawtext, msg)], [msg]


class KernelRole(_Role):
    def run(self):
        try:
            uri, hover = kernel_source.url(self.target), kernel_source.title(self.target)
        except InvalidArgumentError as exc:
            return self.fail(str(exc))
        shown = self.title if self.has_explicit_title else self.target.partition("@")[0]
        link = nodes.reference(self.rawtext, "", nodes.literal(shown, shown), refuri=uri, reftitle=hover,
                               classes=["kernel-source"])
        return [link], []


class RuleRole(_Role):
    def run(self):
        rule = _RULES.get(self.target)
        if rule is None:
            return self.fail(f"rule: {self.target!r} is not a rule id of tryalloc.series.rules")
        shown = self.title if self.has_explicit_title else rule.id
        node = rule_ref(self.rawtext, shown, rule.id, reftitle=rule.statement)
        return [node], []


class LoreRole(_Role):
    def run(self):
        if "@" not in self.target or " " in self.target:
            return self.fail(f"lore: {self.target!r} is not a message-id")
        shown = self.title if self.has_explicit_title else self.target
        return [nodes.reference(self.rawtext, shown, refuri=lore(self.target), classes=["lore"])], []


class rule_ref(nodes.Inline, nodes.TextElement):
    """A link to a rule's row, resolved once the writer knows where the pages go."""

    def __init__(self, rawtext, text, rule_id, **attrs):
        super().__init__(rawtext, text, **attrs)
        self["rule_id"] = rule_id


def resolve_rule_refs(app, doctree, docname):
    for node in list(doctree.findall(rule_ref)):
        uri = app.builder.get_relative_uri(docname, TRACEABILITY_DOC) + "#" + anchor(node["rule_id"])
        ref = nodes.reference(node.rawsource, "", *node.children, refuri=uri, reftitle=node.get("reftitle", ""),
                              classes=["rule"])
        node.replace_self(ref)


def add_kernel_line(app, what, name, obj, options, lines):
    short = name.rsplit(".", 1)[-1]
    if what in ("function", "method") and kernel_source.versions_of(short):
        links = ", ".join(f":kernel:`{short} ({v}) <{short}@{v}>`" for v in kernel_source.versions_of(short))
        lines.extend(["", f"Kernel: {links}."])


def setup(app):
    app.add_role("kernel", KernelRole())
    app.add_role("rule", RuleRole())
    app.add_role("lore", LoreRole())
    app.connect("doctree-resolved", resolve_rule_refs)
    app.connect("autodoc-process-docstring", add_kernel_line, priority=700)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

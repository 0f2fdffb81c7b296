"""Sphinx extension for the appendix's API reference: docstrings written for readers of the model, checked
strictly (``-n -W``) without demanding that every name they mention be documented.

* Napoleon reads ``text: more`` on the first line of an attribute's docstring as a type followed by its
  description (Google style).  This package writes prose there ("A digest of the event log: ..."), so
  such a docstring is kept as written.
* A cross-reference by a short name (``:class:`InvalidArgumentError```) resolves to the one documented
  object of that name.  A reference to an object that exists but that the reference pages do not
  document (a private helper such as ``__refill_stock``, a matplotlib class) is shown as code without a
  link.  Anything else, a name that does not exist, still fails the build.
"""
from __future__ import annotations

import dataclasses
import importlib

from sphinx.util.nodes import make_refnode

_PROSE: dict[str, list[str]] = {}


def save_attribute_prose(app, what, name, obj, options, lines):
    # before napoleon (priority 400 < 500): remember an attribute docstring whose first line has a colon
    if what in ("attribute", "data", "property") and lines and ":" in lines[0]:
        _PROSE[name] = list(lines)


def restore_attribute_prose(app, what, name, obj, options, lines):
    # after napoleon (600 > 500): put the prose back as written
    if name in _PROSE:
        lines[:] = _PROSE.pop(name)


def _has_member(obj, name: str) -> bool:
    if hasattr(obj, name):
        return True
    if isinstance(obj, type):  # instance fields: dataclass fields, annotations, slots
        fields = {f.name for f in dataclasses.fields(obj)} if dataclasses.is_dataclass(obj) else set()
        return name in fields or name in getattr(obj, "__annotations__", {}) or name in getattr(obj, "__slots__", ())
    return False


def exists(dotted: str) -> bool:
    """True if ``dotted`` names an importable module or an attribute reachable from one."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            if not _has_member(obj, attr):
                return False
            obj = getattr(obj, attr, None)
        return True
    return False


def resolve_short_names(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip("~.")
    domain = env.get_domain("py")
    matches = [name for name in domain.objects if name == target or name.endswith("." + target)]
    if len(matches) == 1:
        entry = domain.objects[matches[0]]
        return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, matches[0])
    scopes = [node.get("py:module"), ".".join(filter(None, (node.get("py:module"), node.get("py:class"))))]
    if any(exists(f"{scope}.{target}" if scope else target) for scope in (None, *scopes)):
        return contnode
    return None


def setup(app):
    app.connect("autodoc-process-docstring", save_attribute_prose, priority=400)
    app.connect("autodoc-process-docstring", restore_attribute_prose, priority=600)
    app.connect("missing-reference", resolve_short_names)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

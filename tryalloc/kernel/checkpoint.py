"""Saving a search's frontier to JSON, and resuming from it (as loom's checkpoint file does).

The file holds the path the search was on (:meth:`~tryalloc.kernel.frontier.Tree.state`), the
bounds it ran under, and what it had counted: executions, outcomes, and each failure's replay
string.  Resuming reruns those replay strings to rebuild the reports, so the resumed result holds
the same objects as an uninterrupted one would.  Outcomes must therefore be JSON values (numbers,
strings, None, tuples and lists of them); a tuple comes back as a tuple.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from ..errors import InvalidArgumentError, KernelReport, ReplayError
from .sched import Replay

FORMAT = "tryalloc-frontier/2"  # 2: sleep-set entries carry a preemption cost or debt


def rerun(build: Callable, replay_string: str, check: Callable | None) -> KernelReport:
    """Rebuild the report of a failing execution by replaying it (then ``check``, whose report it
    may have been)."""
    kernel = build()
    try:
        res = kernel.run(Replay(replay_string))
        if check is not None:
            check(kernel, res)
    except KernelReport as report:
        if report.replay is None:
            report.with_replay(kernel.last_replay)
        return report
    raise ReplayError(f"the failure {replay_string!r} no longer happens: the scenario changed since it was found")


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def save_frontier(path: str | os.PathLike, tree, result, bound: int | None, reduce: bool) -> None:
    """Save a serial search: the path ``tree`` is on."""
    _save(path, {"tree": tree.state()}, result, bound, reduce, tree.skipped)


def save_subtrees(path: str | os.PathLike, subtrees: list, result, bound: int | None, reduce: bool) -> None:
    """Save a parallel search: the subtrees left, each ``(prefix, sleep, state)`` with ``state`` the
    path its search stopped on (or ``None``: not started)."""
    left = [[prefix, entries_out(sleep), state] for prefix, sleep, state in subtrees]
    _save(path, {"subtrees": left}, result, bound, reduce, result.skipped)


def settle(path: str | os.PathLike | None, result, save: Callable[[], None], progress: bool):
    """End a search: with a frontier file, a complete search removes it and an unfinished one calls
    ``save`` to write where it stopped; with ``progress`` the summary is printed.  Returns ``result``."""
    if path is not None:
        if result.complete:
            Path(path).unlink(missing_ok=True)
        else:
            save()
    if progress:
        print(result.summary())
    return result


def _save(path, where: dict, result, bound, reduce, skipped: int) -> None:
    data = {"format": FORMAT, "preemption_bound": bound, "reduce": reduce, **where,
            "executions": result.executions, "pruned": result.pruned, "skipped": skipped,
            "seconds": result.seconds, "failures": [f.replay for f in result.failures],
            "outcomes": [[k, n] for k, n in result.outcomes.items()]}
    try:
        text = json.dumps(data)
    except TypeError as e:
        raise InvalidArgumentError(f"cannot save the frontier to {os.fspath(path)!r}: outcomes must be JSON "
                                   f"values (numbers, strings, None, tuples), {e}") from None
    tmp = Path(f"{os.fspath(path)}.tmp")
    tmp.write_text(text)
    tmp.replace(path)  # a search killed while saving leaves the previous frontier intact


def load_frontier(path: str | os.PathLike, build: Callable, check: Callable | None, tree, result) -> bool:
    """Fill ``tree`` and ``result`` from ``path`` (saved by a serial search); False if there is no
    such file yet."""
    data = _load(path, build, check, tree.bound, tree.reduce, result, "tree")
    if data is None:
        return False
    tree.restore(data["tree"])
    tree.skipped = data["skipped"]
    return True


def load_subtrees(path: str | os.PathLike, build: Callable, check: Callable | None, bound: int | None,
                  reduce: bool, result) -> list | None:
    """The subtrees a parallel search left in ``path`` (filling ``result``), or ``None`` if there
    is no such file yet."""
    data = _load(path, build, check, bound, reduce, result, "subtrees")
    if data is None:
        return None
    result.skipped = data["skipped"]
    return [(prefix, entries_in(sleep), state) for prefix, sleep, state in data["subtrees"]]


def _load(path, build, check, bound, reduce, result, kind: str) -> dict | None:
    p = Path(path)
    if not p.exists():
        return None
    try:
        data = json.loads(p.read_text())
        ok = data.get("format") == FORMAT
    except (ValueError, AttributeError):
        ok = False
    if not ok:
        raise InvalidArgumentError(f"{os.fspath(path)!r} is not a tryalloc frontier file ({FORMAT})")
    if data["preemption_bound"] != bound or data["reduce"] != reduce:
        raise InvalidArgumentError(
            f"{os.fspath(path)!r} was saved by a search with preemption_bound={data['preemption_bound']}, "
            f"reduce={data['reduce']}; this one has preemption_bound={bound}, reduce={reduce}")
    if kind not in data:
        saved, this = ("parallel", "serial") if kind == "tree" else ("serial", "parallel")
        raise InvalidArgumentError(f"{os.fspath(path)!r} was saved by a {saved} search; resume it as one, not "
                                   f"with a {this} search")
    result.executions, result.pruned, result.seconds = data["executions"], data["pruned"], data["seconds"]
    for key, n in data["outcomes"]:
        result.outcomes[_tuples(key)] += n
    result.failures.extend(rerun(build, s, check) for s in data["failures"])
    return data


def entries_out(entries: list) -> list:
    """Sleep-set entries ``(action, footprint, n)`` as JSON."""
    return [[list(a), None if f is None else sorted(f), n] for a, f, n in entries]


def entries_in(entries: list) -> list:
    return [(tuple(a), None if f is None else frozenset(f), n) for a, f, n in entries]

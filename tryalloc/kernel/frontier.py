"""The schedule tree a depth-first search walks, and its frontier.

A search is stateless (every execution rebuilds the scenario and replays a prefix of choices), so
all it has to remember between executions is the path to the execution it is on: for each decision
the options still to try and, when reducing, the sleep set (:mod:`tryalloc.kernel.por`).  That path
is the *frontier*: written to JSON it lets a stopped search resume, and cut at a depth it splits the
tree into subtrees that run anywhere (:mod:`tryalloc.kernel.parallel`).

``Tree`` is the :class:`~tryalloc.kernel.sched.Strategy` of every execution of one search.  Choices
above ``root`` are fixed (a subtree of a split search); below, it takes the first option it has not
tried, within the preemption bound and outside the sleep set.
"""
from __future__ import annotations

from .por import footprint, independent
from .sched import RUN, Strategy


class SleepBlocked(Exception):
    """Every option left at a decision is asleep: whatever follows was explored in another order.
    The search drops the execution (it is counted as ``pruned``)."""


class Cut(Exception):
    """The execution reached the depth where a split search hands the subtree to a worker."""


class Node:
    """One decision on the current path: ``options`` to try there, in order, and which one
    (``pos``) is being explored; with reduction, the sleep set on arrival and the options explored
    before, each an ``(action, footprint)`` pair."""

    __slots__ = ("options", "pos", "sleep", "done", "action", "fp", "mark")

    def __init__(self, options: list[int], sleep: list, pos: int = 0, done: list | None = None):
        self.options = options
        self.pos = pos
        self.sleep = sleep
        self.done = done if done is not None else []
        self.action = self.fp = None
        self.mark = 0


class Tree(Strategy):
    """The search's state across executions; see the module docstring."""

    def __init__(self, bound: int | None, reduce: bool, root: list[int] | None = None,
                 root_sleep: list | None = None, cut: int | None = None):
        self.bound = bound
        self.reduce = reduce
        self.root = list(root or [])
        self.root_sleep = list(root_sleep or [])
        self.cut = cut
        self.nodes: list[Node] = []
        self.skipped = 0  # options never tried because they were asleep
        self.subtrees: list[tuple[list[int], list]] = []  # filled when cut

    # -- one execution --------------------------------------------------------------------------
    def choose(self, run, options):
        k = run.nchoices
        base = len(self.root)
        if k < base:
            return self.root[k]
        i = k - base
        if i < len(self.nodes):
            node = self.nodes[i]
        else:
            sleep = self._sleep(run, i) if self.reduce else []
            if self.cut is not None and k == self.cut:
                self.subtrees.append((list(run.choices), sleep))
                raise Cut
            node = self._new_node(run, options, sleep)
        choice = node.options[node.pos]
        if self.reduce:
            node.action = options[choice]
            node.fp = footprint(run, node.action)
            node.mark = run.decisions
        return choice

    def _allowed(self, run, options) -> list[int]:
        allowed = list(range(len(options)))
        if self.bound is not None and run.preemptions >= self.bound and run.last is not None:
            last = (RUN, run.last.id)
            if last in options:  # the last CPU can go on: switching to another would preempt it
                allowed = [i for i, o in enumerate(options) if o[0] != RUN or o == last]
        return allowed

    def _sleep(self, run, i: int) -> list:
        """The sleep set on arriving at the decision ``i`` levels below the root."""
        if i == 0:
            return self.root_sleep
        parent = self.nodes[i - 1]
        if run.decisions - parent.mark != 1:
            return []  # forced steps ran since the parent's choice: assume they touched everything
        a, fa = parent.action, parent.fp
        return [(u, fu) for u, fu in parent.sleep + parent.done if independent(u, fu, a, fa)]

    def _new_node(self, run, options, sleep: list) -> Node:
        allowed = self._allowed(run, options)
        if sleep:
            asleep = {u for u, _ in sleep}
            tried = [j for j in allowed if options[j] not in asleep]
            self.skipped += len(allowed) - len(tried)
            if not tried:
                raise SleepBlocked
            allowed = tried
        node = Node(allowed, sleep)
        self.nodes.append(node)
        return node

    # -- between executions ---------------------------------------------------------------------
    def next_prefix(self) -> list[int] | None:
        """Advance to the next execution; ``None`` when the (sub)tree is exhausted."""
        nodes = self.nodes
        while nodes:
            node = nodes[-1]
            if self.reduce:
                node.done.append((node.action, node.fp))
            node.pos += 1
            if node.pos < len(node.options):
                return self.prefix()
            nodes.pop()
        return None

    def prefix(self) -> list[int]:
        return self.root + [n.options[n.pos] for n in self.nodes]

    # -- the frontier as JSON-ready data ----------------------------------------------------------
    def state(self) -> dict:
        return {"root": self.root, "root_sleep": _pairs_out(self.root_sleep),
                "nodes": [{"options": n.options, "pos": n.pos, "sleep": _pairs_out(n.sleep),
                           "done": _pairs_out(n.done)} for n in self.nodes]}

    def restore(self, state: dict) -> None:
        self.root = list(state["root"])
        self.root_sleep = _pairs_in(state["root_sleep"])
        self.nodes = [Node(list(n["options"]), _pairs_in(n["sleep"]), n["pos"], _pairs_in(n["done"]))
                      for n in state["nodes"]]


def _pairs_out(pairs: list) -> list:
    return [[list(a), None if f is None else sorted(f)] for a, f in pairs]


def _pairs_in(pairs: list) -> list:
    return [(tuple(a), None if f is None else frozenset(f)) for a, f in pairs]

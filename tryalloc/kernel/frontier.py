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

from .checkpoint import entries_in, entries_out
from .por import NEVER, debt, footprint, independent, releases, switch_cost
from .sched import RUN, Strategy


class SleepBlocked(Exception):
    """Every option left at a decision is asleep: whatever follows was explored in another order.
    The search drops the execution (it is counted as ``pruned``)."""


class Cut(Exception):
    """The execution reached the depth where a split search hands the subtree to a worker."""


class Node:
    """One decision on the current path: ``options`` to try there, in order, and which one
    (``pos``) is being explored; with reduction, the sleep set on arrival and the options explored
    before; with a preemption bound, what the option being explored costs (``cost``, in
    preemptions) and what that decision's switches cost (``last``: the CPU that ran before it,
    ``last_on``: whether it could have gone on).  A sleep-set entry is ``(action, footprint,
    debt)``, an option explored is ``(action, footprint, cost)`` (:mod:`tryalloc.kernel.por`)."""

    __slots__ = ("options", "pos", "sleep", "done", "action", "fp", "mark", "cost", "last", "last_on")

    def __init__(self, options: list[int], sleep: list, pos: int = 0, done: list | None = None):
        self.options = options
        self.pos = pos
        self.sleep = sleep
        self.done = done if done is not None else []
        self.action = self.fp = self.last = None
        self.mark = self.cost = 0
        self.last_on = False


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
            if self.bound is not None:
                last = run.last
                node.last = None if last is None else last.id
                node.last_on = last is not None and options[0] == (RUN, last.id)
                node.cost = NEVER if releases(run, node.action) else switch_cost(run, node.last, node.last_on,
                                                                                  node.action)
        return choice

    def _allowed(self, run, options) -> list[int]:
        allowed = list(range(len(options)))
        if self.bound is not None and run.preemptions >= self.bound and run.last is not None:
            last = (RUN, run.last.id)
            if last in options:  # the last CPU can go on: switching to another would preempt it
                allowed = [i for i, o in enumerate(options) if o[0] != RUN or o == last]
        return allowed

    def _sleep(self, run, i: int) -> list:
        """The sleep set on arriving at the decision ``i`` levels below the root: what slept or was
        explored at the parent and commutes with the step the parent took.  With a preemption bound
        an option explored at the parent enters with its debt (:func:`~tryalloc.kernel.por.debt`)."""
        if i == 0:
            return self.root_sleep
        parent = self.nodes[i - 1]
        if run.decisions - parent.mark != 1:
            return []  # forced steps ran since the parent's choice: assume they touched everything
        a, fa = parent.action, parent.fp
        sleep = [e for e in parent.sleep if independent(run, e[0], e[1], a, fa)]
        if self.bound is None:
            return sleep + [e for e in parent.done if independent(run, e[0], e[1], a, fa)]
        w_cost = switch_cost(run, parent.last, parent.last_on, a)
        return sleep + [(u, fu, debt(c, a, w_cost)) for u, fu, c in parent.done if independent(run, u, fu, a, fa)]

    def _new_node(self, run, options, sleep: list) -> Node:
        """The decision reached: the options the bound allows that are not asleep.  Under a bound an
        option asleep is skipped only if what it costs here pays its debt: then the order that
        covered it spent no more preemptions than this one would."""
        allowed = self._allowed(run, options)
        if sleep:
            if self.bound is None:
                asleep = {u for u, _, _ in sleep}
            else:
                last = run.last
                cpu, on = (None, False) if last is None else (last.id, options[0] == (RUN, last.id))
                asleep = {u for u, _, d in sleep if d <= switch_cost(run, cpu, on, u)}
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
                node.done.append((node.action, node.fp, node.cost))
            node.pos += 1
            if node.pos < len(node.options):
                return self.prefix()
            nodes.pop()
        return None

    def prefix(self) -> list[int]:
        return self.root + [n.options[n.pos] for n in self.nodes]

    # -- the frontier as JSON-ready data ----------------------------------------------------------
    def state(self) -> dict:
        return {"root": self.root, "root_sleep": entries_out(self.root_sleep),
                "nodes": [{"options": n.options, "pos": n.pos, "sleep": entries_out(n.sleep),
                           "done": entries_out(n.done)} for n in self.nodes]}

    def restore(self, state: dict) -> None:
        self.root = list(state["root"])
        self.root_sleep = entries_in(state["root_sleep"])
        self.nodes = [Node(list(n["options"]), entries_in(n["sleep"]), n["pos"], entries_in(n["done"]))
                      for n in state["nodes"]]


"""A search that scales out: the schedule tree cut into subtrees, explored by an executor.

:func:`split` walks the tree only down to ``split_depth`` choices; every execution that gets that
deep is stopped there and its prefix (with the sleep set it would arrive with, when reducing)
becomes a subtree.  Each subtree is then searched by :func:`explore_subtree`, anywhere: anything
with ``submit(fn, *args)`` returning futures with ``.result()`` will do, so a
:class:`concurrent.futures.ProcessPoolExecutor` uses the local cores and a
``dask.distributed.Client`` runs the same search on a cluster.  The subtrees partition the tree, so
a complete parallel search counts the same executions and outcomes as the serial one.

**Resuming.**  With ``frontier=`` a parallel search that stops early (``max_executions`` reached in a
subtree, a failure with ``stop_on_failure``) saves the subtrees it has not finished, each with the
path its search stopped on, and the totals of the ones it has; the next call with the same file
runs only those (:func:`~tryalloc.kernel.checkpoint.save_subtrees`).  The totals come out as an
uninterrupted search's.  Ctrl-C saves nothing here: the subtrees running in the workers have not
handed back the paths they were on.

The scenario travels to the workers by pickling: ``build``, ``check`` and ``outcome`` must be
module-level functions (or :func:`functools.partial` of them), not lambdas or closures.  Runs
share module state in one process (one run at a time, greenlets bound to a thread), so a thread
pool would gain nothing and is refused; so are in-process (thread) Dask workers by the same token,
which is why the tests start a LocalCluster of processes.
"""
from __future__ import annotations

import pickle
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from ..errors import InvalidArgumentError
from .checkpoint import load_subtrees, rerun, save_subtrees, settle
from .frontier import Cut, Tree


def check_picklable(**callables) -> None:
    """Refuse, with a message naming it, a callable that cannot travel to another process."""
    for name, fn in callables.items():
        if fn is None:
            continue
        try:
            pickle.dumps(fn)
        except (pickle.PicklingError, AttributeError, TypeError) as e:
            raise InvalidArgumentError(
                f"a parallel search sends {name} to other processes, so it must be picklable: a module-level "
                f"function or a functools.partial of one, not a lambda or a nested function ({fn!r}: {e})"
            ) from None


def split(build: Callable, bound: int | None, reduce: bool, depth: int, check, outcome):
    """The subtrees at ``depth`` choices, in depth-first order, as ``(prefix, sleep)`` pairs, and
    the result of the executions that ended above that depth."""
    from .explore import ExploreResult, _execute

    tree = Tree(bound, reduce, cut=depth)
    result = ExploreResult()
    prefix: list[int] | None = []
    while prefix is not None:
        try:
            _execute(build, tree, check, outcome, result)
        except Cut:
            pass
        prefix = tree.next_prefix()
    result.skipped = tree.skipped
    return tree.subtrees, result


def explore_subtree(build: Callable, prefix: list[int], sleep: list, bound: int | None, reduce: bool,
                    check, outcome, stop_on_failure: bool, max_executions: int, state: dict | None = None) -> dict:
    """Search one subtree (in a worker), from its start or from the path ``state`` a previous search
    of it stopped on; returns plain data: counts, outcomes, failures' replays, and the path it
    stopped on (``None`` once exhausted)."""
    from .explore import ExploreResult, search_tree

    tree = Tree(bound, reduce, root=prefix, root_sleep=sleep)
    start = list(prefix)
    if state is not None:
        tree.restore(state)
        start = tree.prefix()
    result = ExploreResult()
    rest = search_tree(build, tree, start, result, max_executions, stop_on_failure, check, outcome)
    return {"executions": result.executions, "pruned": result.pruned, "skipped": tree.skipped,
            "outcomes": result.outcomes, "failures": [f.replay for f in result.failures],
            "state": None if rest is None else tree.state()}


def explore_parallel(build: Callable, *, executor, workers: int | None, split_depth: int,
                     preemption_bound: int | None, max_executions: int, stop_on_failure: bool,
                     check, outcome, reduce: bool, progress: bool, frontier=None):
    """:func:`~tryalloc.kernel.explore.explore` with an executor; see the module docstring.

    ``max_executions`` bounds each subtree.  With ``stop_on_failure`` the subtrees after the first
    one that failed (in depth-first order) are dropped.
    """
    if isinstance(executor, ThreadPoolExecutor):
        raise InvalidArgumentError("runs cannot share a process: use a ProcessPoolExecutor, not a ThreadPoolExecutor")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InvalidArgumentError(f"workers must be an int >= 1, got {workers!r}")
    if isinstance(split_depth, bool) or not isinstance(split_depth, int) or split_depth < 1:
        raise InvalidArgumentError(f"split_depth must be an int >= 1, got {split_depth!r}")
    check_picklable(build=build, check=check, outcome=outcome)
    from .explore import ExploreResult

    result = ExploreResult()
    subtrees = load_subtrees(frontier, build, check, preemption_bound, reduce, result) if frontier else None
    start = time.perf_counter() - result.seconds
    if subtrees is None:
        cut, result = split(build, preemption_bound, reduce, split_depth, check, outcome)
        subtrees = [(prefix, sleep, None) for prefix, sleep in cut]
        if stop_on_failure and result.failures:  # a failure above the split depth already ends the search
            subtrees = []  # (and, like a serial search stopped at a failure, cannot be resumed past it)
    if subtrees:
        subtrees = _run_subtrees(executor, workers, subtrees, result, progress, build, preemption_bound,
                                 reduce, check, outcome, stop_on_failure, max_executions)
    result.complete = not subtrees
    result.seconds = time.perf_counter() - start
    return settle(frontier, result, lambda: save_subtrees(frontier, subtrees, result, preemption_bound, reduce),
                  progress)


def _run_subtrees(executor, workers, subtrees, result, progress, build, bound, reduce, check, outcome,
                  stop_on_failure, max_executions) -> list:
    """Submit every subtree, merge the answers in depth-first order; returns the subtrees left (each
    ``(prefix, sleep, state)``): those stopped early, and with ``stop_on_failure`` every one after
    the first that failed, whose answers are dropped so that a resumed search counts them once."""
    from .progress import Progress

    own = executor is None
    if own:
        executor = ProcessPoolExecutor(max_workers=workers)
    bar = Progress(progress, result, total=len(subtrees), unit="subtree")
    left, replays = [], []
    try:
        futures = [executor.submit(explore_subtree, build, prefix, sleep, bound, reduce, check, outcome,
                                   stop_on_failure, max_executions, state) for prefix, sleep, state in subtrees]
        for i, fut in enumerate(futures):
            part = fut.result()
            result.executions += part["executions"]
            result.pruned += part["pruned"]
            result.skipped += part["skipped"]
            result.outcomes += Counter(part["outcomes"])
            replays += part["failures"]
            prefix, sleep, _ = subtrees[i]
            if part["state"] is not None:
                left.append((prefix, sleep, part["state"]))
            bar.update()
            if stop_on_failure and replays:
                left += subtrees[i + 1:]
                for rest in futures[i + 1:]:
                    rest.cancel()
                break
    finally:
        bar.close()
        if own:
            executor.shutdown(cancel_futures=True)
    result.failures += [rerun(build, s, check) for s in replays]
    return left

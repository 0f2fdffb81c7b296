"""A search that scales out: the schedule tree cut into subtrees, explored by an executor.

:func:`split` walks the tree only down to ``split_depth`` choices; every execution that gets that
deep is stopped there and its prefix (with the sleep set it would arrive with, when reducing)
becomes a subtree.  Each subtree is then searched by :func:`explore_subtree`, anywhere: anything
with ``submit(fn, *args)`` returning futures with ``.result()`` will do, so a
:class:`concurrent.futures.ProcessPoolExecutor` uses the local cores and a
``dask.distributed.Client`` runs the same search on a cluster.  The subtrees partition the tree, so
a complete parallel search counts the same executions and outcomes as the serial one.

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
from .checkpoint import rerun
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
                    check, outcome, stop_on_failure: bool, max_executions: int) -> dict:
    """Search one subtree (in a worker); returns plain data: counts, outcomes, failures' replays."""
    from .explore import ExploreResult, search_tree

    tree = Tree(bound, reduce, root=prefix, root_sleep=sleep)
    result = ExploreResult()
    rest = search_tree(build, tree, list(prefix), result, max_executions, stop_on_failure, check, outcome)
    return {"executions": result.executions, "pruned": result.pruned, "skipped": tree.skipped,
            "outcomes": result.outcomes, "failures": [f.replay for f in result.failures],
            "complete": rest is None}


def explore_parallel(build: Callable, *, executor, workers: int | None, split_depth: int,
                     preemption_bound: int | None, max_executions: int, stop_on_failure: bool,
                     check, outcome, reduce: bool, progress: bool):
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
    start = time.perf_counter()
    subtrees, result = split(build, preemption_bound, reduce, split_depth, check, outcome)
    if stop_on_failure and result.failures:  # a failure above the split depth already ends the search
        result.complete = not subtrees
    else:
        result.complete = _run_subtrees(executor, workers, subtrees, result, progress, build, preemption_bound,
                                        reduce, check, outcome, stop_on_failure, max_executions)
    result.seconds = time.perf_counter() - start
    if progress:
        print(result.summary())
    return result


def _run_subtrees(executor, workers, subtrees, result, progress, build, bound, reduce, check, outcome,
                  stop_on_failure, max_executions) -> bool:
    """Submit every subtree, merge the answers in depth-first order; True if all were exhausted."""
    from .progress import Progress

    own = executor is None
    if own:
        executor = ProcessPoolExecutor(max_workers=workers)
    bar = Progress(progress, result, total=len(subtrees), unit="subtree")
    complete, replays = True, []
    try:
        futures = [executor.submit(explore_subtree, build, prefix, sleep, bound, reduce, check, outcome,
                                   stop_on_failure, max_executions) for prefix, sleep in subtrees]
        for i, fut in enumerate(futures):
            part = fut.result()
            result.executions += part["executions"]
            result.pruned += part["pruned"]
            result.skipped += part["skipped"]
            result.outcomes += Counter(part["outcomes"])
            replays += part["failures"]
            complete = complete and part["complete"]
            bar.update()
            if stop_on_failure and replays:
                complete = complete and i == len(futures) - 1
                for rest in futures[i + 1:]:
                    rest.cancel()
                break
    finally:
        bar.close()
        if own:
            executor.shutdown(cancel_futures=True)
    result.failures += [rerun(build, s, check) for s in replays]
    return complete

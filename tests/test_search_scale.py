"""Long and wide searches: resuming from a saved frontier, the shortest counterexample, a progress bar,
and the same search split over a process pool or a Dask cluster."""
import json
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial

import pytest
from test_por import abba, shared_inner

from tryalloc import explore
from tryalloc.errors import InvalidArgumentError
from tryalloc.kernel.sched import decode
from tryalloc.mm import scenarios

SEARCHES = [  # (builder, outcome, preemption bound, reduce)
    (partial(scenarios.alloc_free, nmis=1), scenarios.alloc_free_outcome, 0, False),
    (partial(scenarios.alloc_free, nmis=0), scenarios.alloc_free_outcome, None, True),
    (partial(scenarios.alloc_free, nmis=1), scenarios.alloc_free_outcome, 0, True),
]


def _same(a, b):
    assert (a.executions, a.pruned, a.skipped, a.complete) == (b.executions, b.pruned, b.skipped, b.complete)
    assert a.outcomes == b.outcomes
    assert [f.replay for f in a.failures] == [f.replay for f in b.failures]


@pytest.mark.parametrize("build, outcome, bound, reduce", SEARCHES)
def test_a_stopped_search_resumes_from_its_frontier_to_the_same_totals(tmp_path, build, outcome, bound, reduce):
    whole = explore(build, preemption_bound=bound, reduce=reduce, outcome=outcome, stop_on_failure=False)
    path = tmp_path / "frontier.json"
    first = explore(build, preemption_bound=bound, reduce=reduce, outcome=outcome, stop_on_failure=False,
                    max_executions=whole.executions // 3, frontier=path)
    assert not first.complete and first.executions == whole.executions // 3 and path.exists()
    second = explore(build, preemption_bound=bound, reduce=reduce, outcome=outcome, stop_on_failure=False,
                     max_executions=2 * whole.executions // 3, frontier=path)
    assert not second.complete
    rest = explore(build, preemption_bound=bound, reduce=reduce, outcome=outcome, stop_on_failure=False,
                   frontier=path)
    _same(rest, whole)
    assert not path.exists()  # a finished search leaves no frontier behind


def test_failures_survive_a_resume_as_the_same_reports(tmp_path):
    whole = explore(abba, preemption_bound=None, stop_on_failure=False)
    path = tmp_path / "f.json"
    explore(abba, preemption_bound=None, stop_on_failure=False, max_executions=whole.executions // 2, frontier=path)
    rest = explore(abba, preemption_bound=None, stop_on_failure=False, frontier=path)
    _same(rest, whole)
    assert [type(f) for f in rest.failures] == [type(f) for f in whole.failures]
    assert [f.report for f in rest.failures] == [f.report for f in whole.failures]


def test_a_search_stopped_at_its_first_failure_resumes_after_it(tmp_path):
    path = tmp_path / "f.json"
    first = explore(abba, preemption_bound=2, frontier=path)
    assert len(first.failures) == 1 and path.exists()
    second = explore(abba, preemption_bound=2, frontier=path)
    assert len(second.failures) == 2 and second.failures[0].replay == first.failures[0].replay
    assert second.executions > first.executions


def test_a_frontier_from_another_search_is_refused(tmp_path):
    path = tmp_path / "f.json"
    explore(abba, preemption_bound=2, frontier=path)
    before = path.read_text()
    with pytest.raises(InvalidArgumentError, match="preemption_bound=2"):
        explore(abba, preemption_bound=1, frontier=path)
    path.write_text("{not json")
    with pytest.raises(InvalidArgumentError, match="not a tryalloc frontier"):
        explore(abba, preemption_bound=2, frontier=path)
    assert json.loads(before)["format"].startswith("tryalloc-frontier")


def test_outcomes_that_json_cannot_hold_are_refused_when_saving(tmp_path):
    with pytest.raises(InvalidArgumentError, match="JSON"):
        explore(shared_inner, preemption_bound=2, outcome=lambda k, r: frozenset(k.log),
                max_executions=3, frontier=tmp_path / "f.json")


def test_the_shortest_counterexample_is_kept_and_printed():
    found = explore(abba, preemption_bound=None, stop_on_failure=False)
    lengths = [len(decode(f.replay)[1]) for f in found.failures]
    assert len(decode(found.shortest.replay)[1]) == min(lengths) < max(lengths)
    text = found.summary()
    assert found.shortest.replay in text and found.shortest.title in text
    assert explore(shared_inner, preemption_bound=2).shortest is None


def test_the_progress_bar_counts_executions(capsys):
    found = explore(shared_inner, preemption_bound=None, reduce=True, progress=True)
    err = capsys.readouterr()
    assert f"{found.executions + found.pruned}" in err.err and "skipped" in err.err
    assert f"{found.executions} executions (complete)" in err.out


# --- in parallel ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("build, outcome, bound, reduce", SEARCHES)
def test_a_process_pool_search_sees_what_the_serial_search_sees(build, outcome, bound, reduce):
    serial = explore(build, preemption_bound=bound, reduce=reduce, outcome=outcome, stop_on_failure=False)
    with ProcessPoolExecutor(max_workers=2) as pool:
        parallel = explore(build, preemption_bound=bound, reduce=reduce, outcome=outcome, stop_on_failure=False,
                           executor=pool, split_depth=3)
    _same(parallel, serial)


def _resume_until_complete(search, path, calls: int = 100):
    """Call ``search(frontier=path)`` until it completes; the last result and how many calls it took."""
    for n in range(1, calls + 1):
        last = search(frontier=path)
        if last.complete:
            return last, n
    raise AssertionError(f"not complete after {calls} resumptions")


NO_NMI = partial(scenarios.alloc_free, nmis=0)  # the same at every level (the NMIs come with patch 2)


@pytest.mark.parametrize("bound, reduce", [(None, False), (None, True), (2, True)])
def test_a_stopped_parallel_search_resumes_from_its_frontier_to_the_same_totals(tmp_path, bound, reduce):
    build, outcome = NO_NMI, scenarios.alloc_free_outcome
    whole = explore(build, preemption_bound=bound, reduce=reduce, outcome=outcome, stop_on_failure=False)
    path = tmp_path / "frontier.json"
    with ProcessPoolExecutor(max_workers=2) as pool:
        search = partial(explore, build, preemption_bound=bound, reduce=reduce, outcome=outcome,
                         stop_on_failure=False, executor=pool, split_depth=2,
                         max_executions=max(1, whole.executions // 30))
        rest, calls = _resume_until_complete(search, path)
    assert calls > 1  # it did stop midway, and resumed
    _same(rest, whole)
    assert not path.exists()


def test_a_parallel_search_stopped_at_each_failure_resumes_past_it(tmp_path):
    whole = explore(abba, preemption_bound=2, stop_on_failure=False)
    path = tmp_path / "frontier.json"
    with ProcessPoolExecutor(max_workers=2) as pool:
        search = partial(explore, abba, preemption_bound=2, executor=pool, split_depth=2)
        rest, calls = _resume_until_complete(search, path)
    assert calls == len(whole.failures) + 1 >= 2  # one stop per failure, then the rest
    _same(rest, whole)


def test_a_frontier_is_resumed_by_the_kind_of_search_that_saved_it(tmp_path):
    path = tmp_path / "frontier.json"
    explore(abba, preemption_bound=2, frontier=path)  # serial: stops at a failure
    with pytest.raises(InvalidArgumentError, match="saved by a serial search"):
        explore(abba, preemption_bound=2, workers=1, frontier=path)
    path.unlink()
    explore(abba, preemption_bound=2, workers=1, split_depth=2, frontier=path)
    with pytest.raises(InvalidArgumentError, match="saved by a parallel search"):
        explore(abba, preemption_bound=2, frontier=path)


def test_a_parallel_search_stops_at_the_first_failing_subtree():
    found = explore(abba, preemption_bound=2, workers=2, split_depth=2)
    assert len(found.failures) >= 1 and not found.complete
    assert found.failures[0].replay in {f.replay for f in explore(abba, preemption_bound=2,
                                                                   stop_on_failure=False).failures}


def test_a_dask_cluster_search_sees_what_the_serial_search_sees():
    distributed = pytest.importorskip("distributed")
    build, outcome, bound, reduce = SEARCHES[0]
    serial = explore(build, preemption_bound=bound, reduce=reduce, outcome=outcome, stop_on_failure=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        parallel = explore(build, preemption_bound=bound, reduce=reduce, outcome=outcome, stop_on_failure=False,
                           executor=client, split_depth=3)
    _same(parallel, serial)


def _closure_builder():
    return lambda: scenarios.alloc_free()


@pytest.mark.parametrize("bad", [lambda: scenarios.alloc_free(), _closure_builder()])
def test_a_builder_that_cannot_be_pickled_is_refused_with_a_reason(bad):
    with pytest.raises(InvalidArgumentError, match="picklable.*module-level function or a functools.partial"):
        explore(bad, workers=2)


def test_a_thread_pool_is_refused():
    with ThreadPoolExecutor(1) as pool, pytest.raises(InvalidArgumentError, match="ProcessPoolExecutor"):
        explore(abba, executor=pool)


@pytest.mark.parametrize("kwargs", [{"workers": 0}, {"workers": 2, "split_depth": 0}])
def test_bad_parallel_arguments_are_refused(kwargs):
    with pytest.raises(InvalidArgumentError):
        explore(abba, **kwargs)

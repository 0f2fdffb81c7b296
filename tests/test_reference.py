"""The reference scenarios (tryalloc.mm.reference) with I1-I5 checked at every scheduling point
(tryalloc.mm.invariants): at each level where a scenario applies the bounded search completes with no
report and the reduced search sees the same outcomes; at the level before its patch the search finds
the counterexample, and its replay string reproduces it."""
import pytest

import tryalloc
from tryalloc import series
from tryalloc.errors import InvalidArgumentError, InvariantError
from tryalloc.mm import invariants as I
from tryalloc.mm import reference as R
from tryalloc.series import FINAL, LEVEL

# a generated level has its markers stripped, so series.load gives that level whatever is asked for
levelled = pytest.mark.skipif("+++ b/tryalloc/mm/memcontrol.py" not in series.patch_diff("3", "4"),
                              reason="a generated level carries no level markers")

#: (scenario, bound of the test's search, the levels it applies at, the level before its patch)
CASES = {
    "mixed interrupts": (0, ("1", "2", "5", "6.15"), "0"),
    "memcg stock": (0, ("4", "5", "6", "6.15"), "3"),
    "llist deferral": (1, ("2", "4", "6.15"), "1"),
}


def _searches(L, name, bound):
    ref = R.SCENARIOS[name](L)
    return ref, [R.search(L, ref, reduce=reduce, preemption_bound=bound) for reduce in (False, True)]


@levelled
@pytest.mark.parametrize("name,level", [(n, lv) for n, (_, levels, _) in CASES.items() for lv in levels])
def test_where_the_scenario_applies_the_bounded_search_is_clean_and_the_reduction_keeps_the_outcomes(name, level):
    L = series.load(level)
    ref, (full, reduced) = _searches(L, name, CASES[name][0])
    assert ref.applies and ref.counterexample is None
    assert full.complete and reduced.complete
    assert full.ok and reduced.ok, (full.summary(), reduced.summary())
    assert set(full.outcomes) == set(reduced.outcomes)
    assert reduced.executions <= full.executions


@levelled
@pytest.mark.parametrize("name", list(CASES))
def test_before_its_patch_the_search_finds_the_counterexample_and_its_replay_reproduces_it(name):
    bound, _, before = CASES[name]
    L = series.load(before)
    ref, (full, reduced) = _searches(L, name, bound)
    assert not ref.applies
    for result in (full, reduced):
        report = result.shortest
        assert report is not None and not result.complete
        kind = type(report).__name__
        assert kind == ("InvariantError" if name == "memcg stock" else ref.counterexample)
        with pytest.raises(type(report)) as again:
            L.replay(ref.setup, report.replay, boot=ref.options,
                     check_step=L.mm.invariants.StepInvariants())
        assert again.value.title == report.title


@levelled
def test_before_patch_4_the_nmi_charge_corrupts_the_stock_its_task_is_inside():
    """I1 names the blocking acquire of the stock lock; the detectors alone see what it leads to."""
    L = series.load("3")
    ref = R.memcg_stock(L)
    found = R.search(L, ref, preemption_bound=0)
    assert "memcg_stock.stock_lock" in found.shortest.title
    plain = R.search(L, ref, preemption_bound=0, invariants=False)
    assert type(plain.shortest).__name__ == ref.counterexample == "PerCpuCorruptionError"
    with pytest.raises(type(plain.shortest), match="memcg_stock.stock_lock"):
        L.replay(ref.setup, plain.shortest.replay, boot=ref.options)


@levelled
def test_the_llist_scenario_defers_a_page_and_drains_it():
    """Some schedules leave the NMI's page on the zone llist at the end, some drain it, some never defer."""
    L = series.load("2")
    ref, (full, _) = _searches(L, "llist deferral", 2)
    deferred = {outcome[3] for outcome in full.outcomes}
    assert deferred == {0, 1}
    assert full.executions > len(full.outcomes)


def _rule_machine() -> dict:
    """I1 covers page_owner's stack_list_lock from 6.18 (the registry's reading): at the last level the
    search runs that release, where the nolock allocation is alloc_pages_nolock."""
    return dict(page_owner=True, release="6.18") if LEVEL == FINAL else dict(page_owner=True)


@pytest.mark.rule("I1")
def test_no_nolock_path_spins_on_an_allocator_memcg_or_stack_depot_lock():
    """I1, checked at every point of every reference scenario the level can build: no context inside
    try_alloc_pages or free_pages_nolock acquires zone->lock, a pcp lock, memcg_stock.stock_lock,
    pool_lock or stack_list_lock by blocking (and, with it, no report)."""
    for name, scenario in R.SCENARIOS.items():
        try:
            ref = scenario(tryalloc)
        except InvalidArgumentError:  # memcg stock needs patch 3's lock type
            continue
        found = R.search(tryalloc, ref, preemption_bound=0, machine=_rule_machine())
        assert found.complete and found.ok, (name, found.summary())


@pytest.mark.rule("I2")
def test_pages_are_conserved_at_every_point_with_interrupts_allocating_and_freeing():
    """I2 at every point where no CPU holds zone->lock or a pcp lock, on 3 CPUs with a hardirq."""
    ref = R.mixed_interrupts(tryalloc, nr_cpus=3, nmi=False)
    found = R.search(tryalloc, ref, preemption_bound=0)
    assert found.complete and found.ok, found.summary()
    assert len(found.outcomes) > 1


def test_the_per_step_check_sees_a_page_lost_in_the_middle_of_a_run():
    """A hardirq program that drops a pcp page from the books: the check raises at the next point,
    and the replay string reproduces it; the end-of-run check alone would see it too late to say where."""
    def setup(k):
        R.mixed_interrupts(tryalloc, nmi=False).setup(k)
        pcp = k.zones[0].pcp(1)

        def lose():
            for lst in pcp.lists:
                if lst:
                    lst.pop()
                    pcp.count -= 1
                    return
        k.on_interrupt(1, "hardirq", lose, budget=1)

    options = R.mixed_interrupts(tryalloc).options
    found = tryalloc.explore(setup, boot=options, preemption_bound=0, check_step=I.StepInvariants())
    lost = [f for f in found.failures if isinstance(f, InvariantError)]
    assert lost and "page conservation" in lost[0].report
    with pytest.raises(InvariantError, match="page conservation"):
        tryalloc.replay(setup, lost[0].replay, boot=options, check_step=I.StepInvariants())


def test_the_step_check_runs_at_every_point_and_costs_nothing_when_absent():
    calls = []
    ref = R.llist_deferral(tryalloc)
    k = tryalloc.Kernel(**ref.options)
    ref.setup(k)
    result = k.run(check_step=lambda run: calls.append(run.cpu.stack[-1].announced))
    assert len(calls) == len(result.events._points) > 0
    k2 = tryalloc.Kernel(**ref.options)
    ref.setup(k2)
    run_without = k2.run()
    assert "point" not in vars(k2._last_run) and run_without.events == result.events


def test_a_bad_scenario_size_is_refused():
    with pytest.raises(InvalidArgumentError, match="2 to 4 CPUs"):
        R.mixed_interrupts(tryalloc, nr_cpus=5)
    with pytest.raises(InvalidArgumentError, match="check_step"):
        tryalloc.explore(R.mixed_interrupts(tryalloc).setup, workers=2, check_step=I.StepInvariants())


@pytest.mark.skipif(LEVEL != FINAL, reason="the mutants' lines live at the last level")
def test_the_i1_check_names_the_as_posted_polarity_blocking_on_the_stock_lock():
    """With v6's inverted gfpflags_allow_spinning() back (the mutant), the NMI's try_alloc_pages charge
    falls back to the blocking stock lock: the per-step check stops the run at that acquire."""
    from tryalloc.series import mutants

    ref = R.memcg_stock(tryalloc)
    with mutants.enabled("as-posted-polarity"):
        found = R.search(tryalloc, ref, preemption_bound=0)
        report = found.shortest
        assert isinstance(report, InvariantError)
        assert report.title == "I1 broken: try_alloc_pages acquires memcg_stock.stock_lock by blocking"
        with pytest.raises(InvariantError, match="I1: CPU0/nmi inside try_alloc_pages"):
            tryalloc.replay(ref.setup, report.replay, boot=ref.options, check_step=I.StepInvariants())

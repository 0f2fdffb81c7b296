"""The book's shared scenarios (tryalloc.book.scenarios): they report what the model did, in the words the
chapters use, and refuse a point of injection the task never reaches."""
from __future__ import annotations

import pytest

from tryalloc import series
from tryalloc.book import scenarios
from tryalloc.errors import InvalidArgumentError, TriggerError

# the scenarios compare levels, which only the package with its level markers can generate (make
# test-levels runs the suite on generated levels, whose markers are stripped)
pytestmark = pytest.mark.skipif("+++ b/tryalloc/mm/page_alloc.py" not in series.patch_diff("0", "1"),
                                reason="a generated level carries no level markers")


@pytest.fixture(scope="module")
def levels():
    return {level: series.load(level) for level in ("0", "1", "2")}


def test_on_the_baseline_the_nmi_program_deadlocks_on_zone_lock(levels):
    out = scenarios.nmi_program_on_lock(levels["0"])
    assert not out.completed and "deadlock" in out.report and out.program_got == ""
    assert out.describe() == out.report


def test_with_try_alloc_pages_the_nmi_fails_each_lock_once_and_gets_null(levels):
    out = scenarios.nmi_program_on_lock(levels["1"])
    assert out.completed and out.program_got == "NULL"
    assert out.trylocks("pcp->lock[cpu0]") == (1, 1) and out.trylocks("zone->lock") == (1, 1)
    assert out.describe() == "the NMI's program gets NULL; the task completes"
    assert "None" not in out.describe()


def test_an_nmi_on_the_pcp_lock_gets_a_page_from_buddy(levels):
    out = scenarios.nmi_program_on_lock(levels["1"], lock="pcp->lock[cpu0]")
    assert out.program_got == "a page" and out.trylocks("zone->lock") == (1, 0)


def test_a_point_the_task_never_reaches_and_negative_orders_are_refused(levels):
    with pytest.raises(TriggerError, match="never fired"):
        scenarios.nmi_program_on_lock(levels["1"], lock="no such lock")
    with pytest.raises(InvalidArgumentError, match="orders must be >= 0"):
        scenarios.nmi_program_on_lock(levels["1"], program_order=-1)
    with pytest.raises(TriggerError, match="never fired"):
        scenarios.nmi_free_on_lock(levels["2"], levels["2"].mm.page_alloc.free_pages_nolock, lock="nowhere")


def test_program_lock_ops_reads_the_first_program_and_nothing_before_it(levels):
    out = scenarios.nmi_program_on_lock(levels["1"])
    assert scenarios.program_lock_ops(out.events) == out.program_ops
    assert scenarios.program_lock_ops(out.events[:3]) == ()


def test_the_free_side_says_where_the_block_went(levels):
    L1, L2 = levels["1"], levels["2"]
    nolock = L2.mm.page_alloc.free_pages_nolock
    assert scenarios.nmi_free_on_lock(L2, nolock).went == "deferred"
    assert scenarios.nmi_free_on_lock(L2, nolock, free_order=0).went == "pcp"
    moved = scenarios.nmi_free_on_lock(L2, nolock, free_order=0, task_order=0, lock="pcp->lock[cpu0]")
    assert moved.went == "buddy" and moved.trylocks("pcp->lock[cpu0]") == (1, 1)
    stopped = scenarios.nmi_free_on_lock(L1, L1.mm.page_alloc.__free_pages)
    assert "deadlock" in stopped.report and stopped.went == ""


def test_lock_orders_builds_cpus_whose_opposite_orders_deadlock_and_same_orders_do_not():
    import tryalloc

    opposite = tryalloc.explore(scenarios.lock_orders(tryalloc, "AB", "BA"), stop_on_failure=False)
    same = tryalloc.explore(scenarios.lock_orders(tryalloc, "AB", "AB"), stop_on_failure=False)
    assert opposite.complete and opposite.failures
    assert all(isinstance(f, tryalloc.DeadlockError) for f in opposite.failures)
    assert same.complete and not same.failures
    k = scenarios.lock_orders(tryalloc, "AB", "BA", lockdep="raise")()
    with pytest.raises(tryalloc.LockdepError):
        k.run()
    for bad in ((), ("AB", ""), ("AB", 3)):
        with pytest.raises(InvalidArgumentError, match="lock_orders"):
            scenarios.lock_orders(tryalloc, *bad)


def test_interrupt_at_acquire_says_where_the_interrupt_came_in():
    import tryalloc

    hard = scenarios.interrupt_at_acquire(tryalloc, "hardirq")
    nmi = scenarios.interrupt_at_acquire(tryalloc, "nmi")
    plain = scenarios.interrupt_at_acquire(tryalloc, "hardirq", irqsave=False)
    assert not hard.inside and hard.task_held == () and hard.log[hard.entry][3] == "hardirq-entry"
    assert nmi.inside and nmi.task_held == ("demo_lock",) and nmi.entry < hard.entry
    assert plain.inside


def test_call_lock_ops_lists_the_lock_operations_of_one_call(levels):
    L = levels["1"]
    k = L.Kernel(nr_cpus=1, pages_per_node=256, max_order=5, pageblock_order=5, memcg=False)
    L.mm.page_alloc.setup_per_zone_wmarks(k, 0)
    page, ops = scenarios.call_lock_ops(k, L.mm.page_alloc.try_alloc_pages, 0, 0)
    assert page is not None
    assert ops[:2] == (("spin_trylock", "pcp->lock[cpu0]"), ("spin_trylock_irqsave", "zone->lock"))
    assert scenarios.call_lock_ops(k, L.mm.page_alloc.try_alloc_pages, 0, 4) == (None, ())


def test_free_in_context_shows_what_the_free_path_decides_alone(levels):
    L = levels["2"]
    nolock = L.mm.page_alloc.free_pages_nolock
    assert scenarios.free_in_context(L, nolock, 0).went == "pcp"
    assert scenarios.free_in_context(L, nolock, 4).went == "buddy"
    rt = scenarios.free_in_context(L, nolock, 0, context="nmi", preempt_rt=True)
    assert rt.went == "deferred" and rt.program_ops == ()
    gap = scenarios.free_in_context(L, nolock, 4, context="nmi", preempt_rt=True)  # R2.7, the v6 gap
    assert "invalid context" in gap.report and gap.went == ""


def test_on_a_uniprocessor_kernel_the_nmi_walks_into_the_pcp_section(levels):
    smp = scenarios.nmi_program_on_lock(levels["2"], lock="pcp->lock[cpu0]")
    up = scenarios.nmi_program_on_lock(levels["2"], lock="pcp->lock[cpu0]", smp=False)
    assert smp.completed and smp.program_got == "a page"
    assert "per-CPU" in up.report and up.program_got == ""

"""Races on a page's reference count: ``___free_pages`` must decide whether the page is a compound head
before it drops its reference ("mm: page_alloc: fix page corruption caused by racy check in
__free_pages", Feb 2023, Fixes: e320d3012d25).  The search finds the order that reads it after: the
mutant ``racy-free-pages-head`` of :mod:`tryalloc.series.mutants`, whose killing test is the clean search."""
from __future__ import annotations

from matplotlib.figure import Figure

from tryalloc import Kernel, explore, replay
from tryalloc.book.timeline import context_timeline, timeline_spans
from tryalloc.errors import InvariantError
from tryalloc.include.gfp import __GFP_COMP, GFP_KERNEL
from tryalloc.mm import page as P
from tryalloc.mm import page_alloc as A
from tryalloc.mm.debug import check_invariants
from tryalloc.series import mutants

BOOT = dict(nr_cpus=2, pages_per_node=64, max_order=3, pageblock_order=3, memcg=False)


def two_holders_free(k):
    """An order-1 compound page with two references, one per CPU; each CPU frees its own."""
    page = k.call(A.alloc_pages, GFP_KERNEL | __GFP_COMP, 1)
    k.call(P.get_page, page)
    for cpu in (0, 1):
        k.spawn(cpu, lambda: A.__free_pages(page, 1))


def _search():
    return explore(two_holders_free, boot=BOOT, check=lambda k, res: check_invariants(k))


def test_reading_page_head_before_the_put_frees_a_shared_compound_page_once_in_every_order():
    result = _search()
    assert result.complete and result.ok and result.executions > 1


def test_the_search_finds_the_tails_freed_twice_when_page_head_is_read_after_the_put():
    with mutants.enabled("racy-free-pages-head"):
        result = _search()
    assert len(result.failures) == 1
    found = result.failures[0]
    assert isinstance(found, InvariantError) and "free page in two places" in str(found)
    # the counterexample: CPU0 drops its reference and is preempted before it reads PageHead; CPU1
    # drops the last one and frees the whole compound page; CPU0 then sees no head and frees the tail
    with mutants.enabled("racy-free-pages-head"):
        run = replay(two_holders_free, found.replay, boot=BOOT)
    steps = [(index, cpu, op) for index, cpu, _, op, *_ in run.events
             if op in ("put_page_testzero", "PageHead", "trace:mm_page_free")]
    assert [(cpu, op) for _, cpu, op in steps] == [(0, "put_page_testzero"), (0, "PageHead"),
                                                   (1, "trace:mm_page_free"), (0, "trace:mm_page_free")]
    # drawn: CPU1's whole free runs inside CPU0's, between its racy read and its second free
    spans = timeline_spans(run.events)
    cpu1 = [band for band in spans.bands if band.cpu == 1]
    assert len(cpu1) == 1 and steps[1][0] < cpu1[0].start and cpu1[0].end < steps[3][0]
    assert isinstance(context_timeline(run, title="the tails freed twice"), Figure)


def test_an_unshared_page_is_freed_without_the_extra_scheduling_point():
    k = Kernel(**BOOT)  # the common path: the last reference, nothing to race with
    k.call(lambda: A.__free_pages(A.alloc_pages(GFP_KERNEL, 0), 0))
    assert not [e for e in k.events if e[3] in ("put_page_testzero", "PageHead")]

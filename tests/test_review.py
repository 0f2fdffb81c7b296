"""The __GFP_COMP review thread on the v6 cover letter (spec section 8): compound pages and wrong-order frees."""
import pytest
from machines import small_machine

import tryalloc
from tryalloc.book.gfp_comp import wrong_order_free
from tryalloc.errors import InvalidArgumentError, VMBugError
from tryalloc.include import gfp as G
from tryalloc.mm import page as P
from tryalloc.mm import page_alloc as A
from tryalloc.mm.debug import check_invariants, pfn_states


@pytest.mark.rule("R8.1")
@pytest.mark.parametrize("wrong", [1, 3])
def test_debug_vm_stops_a_compound_free_with_another_order_and_never_uses_the_stored_one(wrong):
    """R8.1: a __GFP_COMP order-2 page freed with order 1 or 3 under DEBUG_VM: a VM_BUG_ON_PAGE report
    (not a bad page state), nothing freed, the page still compound and referenced."""
    k = small_machine()
    page = k.call(A.alloc_pages, G.GFP_KERNEL | G.__GFP_COMP, 2)
    assert P.PageHead(page) and P.compound_order(page) == 2 and P.PageTail(page + 3)
    before = (bytes(pfn_states(k)), dict(k.vm_events))
    with pytest.raises(VMBugError, match=r"VM_BUG_ON_PAGE\(compound && compound_order\(page\) != order"):
        k.call(A.__free_pages, page, wrong)
    assert (bytes(pfn_states(k)), dict(k.vm_events)) == before
    assert P.PageHead(page) and P.compound_order(page) == 2 and P.page_ref_count(page) == 1
    k.call(A.__free_pages, page, 2)
    assert not P.PageHead(page) and not P.PageTail(page + 3)
    check_invariants(k)


def test_a_vm_bug_report_dumps_the_page_under_its_own_title():
    k = small_machine()
    page = k.call(A.alloc_pages, G.GFP_KERNEL | G.__GFP_COMP, 2)
    with pytest.raises(VMBugError) as report:
        k.call(A.__free_pages, page, 1)
    assert report.value.title == "kernel BUG at mm/page_alloc.c"
    assert "Bad page state" not in str(report.value) and f"pfn:{page.pfn:#x}" in report.value.report


@pytest.mark.parametrize("by", [1, -1])
def test_only_the_assertion_is_safe_whichever_order_is_the_corrupted_one(by):
    """The thread's question: trusting the page's stored order cures a wrong caller but turns a
    corrupted stored order into damage; trusting the caller does the opposite; DEBUG_VM stops both."""
    verdict = {(c, p): wrong_order_free(tryalloc, c, p, by=by).verdict
               for c in ("caller", "stored") for p in ("assert", "caller", "stored")}
    assert verdict == {("caller", "assert"): "stopped", ("caller", "caller"): "damaged",
                       ("caller", "stored"): "clean", ("stored", "assert"): "stopped",
                       ("stored", "caller"): "clean", ("stored", "stored"): "damaged"}


def test_a_production_free_reaching_into_another_block_is_caught_by_the_invariant_check():
    out = wrong_order_free(tryalloc, "caller", "caller")
    assert out.freed_order == 3 and "nonzero refcount" in out.report


def test_a_plain_block_freed_with_too_small_an_order_is_lost_even_under_debug_vm():
    """Without __GFP_COMP there is no stored order to compare: a free one order too small is silent,
    and half the block stays counted in use with nobody holding it."""
    out = wrong_order_free(tryalloc, "caller", "assert", compound=False, by=-1)
    assert out.verdict == "damaged" and out.leaked == 2
    assert wrong_order_free(tryalloc, "caller", "assert", compound=True, by=-1).verdict == "stopped"


@pytest.mark.parametrize("args", [("caller", "never"), ("both", "assert"), ("stored", "caller", False),
                                  ("caller", "caller", True, 2)])
def test_bad_experiment_arguments_are_refused(args):
    with pytest.raises(InvalidArgumentError):
        wrong_order_free(tryalloc, *args)

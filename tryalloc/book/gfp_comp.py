"""The experiments of the ``__GFP_COMP`` review thread on the v6 cover letter (R8.1, R8.2;
https://lore.kernel.org/r/20250124035655.78899-1-alexei.starovoitov@gmail.com).

The thread asked what a free with the wrong order should do.  A compound page (``__GFP_COMP``) records
its order, so the free can compare the order it is given with the one stored; a plain multi-order
block records nothing.  :func:`wrong_order_free` runs one free of a two-block layout -- the victim
block, and the block right after it, in use by somebody else -- and says what came of it:

* ``policy="assert"``: a ``CONFIG_DEBUG_VM`` kernel, whose ``VM_BUG_ON_PAGE`` stops the kernel at
  the mismatch (:class:`~tryalloc.errors.VMBugError`) before anything changes; for a plain block
  only the model's sub-page check of DEBUG_VM can notice (a "Bad page state" when the wrong order
  reaches into a block in use);
* ``policy="caller"``: a production kernel, which has no check and frees the order it was given;
* ``policy="stored"``: the alternative asked about in the thread -- warn and free with the order
  the page records.  The kernel never did this; the model runs it as a production free with the
  stored order passed in.

``corrupted`` says which of the two orders is the wrong one: the caller's (it passes one too many), or
the page's own (a stray write raised the stored order by one, modelled by writing the memory map
directly, as memory corruption would).  Damage is what :func:`~tryalloc.mm.debug.check_invariants`
reports once the pcp lists are drained: the other owner's pages free while still referenced, or a
block lost.  ``L`` is a level package (``tryalloc`` or one from :func:`tryalloc.series.load`).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import BadPageError, InvalidArgumentError, InvariantError, VMBugError

#: What a wrong-order free may be met with (see the module docstring).
POLICIES = ("assert", "caller", "stored")
#: Which order is the wrong one.
CORRUPTED = ("caller", "stored")
#: The victim block's real order; the block after it belongs to somebody else.
ORDER = 2


@dataclass(frozen=True)
class Outcome:
    """What one wrong-order free led to.

    verdict
        ``"stopped"`` (a report before any change), ``"clean"`` (the books balance and the other block
        is still in use) or ``"damaged"`` (the invariant check fails).
    freed_order
        the order the free used (``None`` when it was stopped).
    report
        the first line of the report that stopped or caught it (``""`` when clean).
    leaked
        pages that are neither free nor referenced by anybody after the free (and the drain).
    """

    verdict: str
    freed_order: int | None
    report: str
    leaked: int


def _machine(L, debug_vm: bool):
    k = L.Kernel(nr_cpus=1, pages_per_node=256, max_order=5, pageblock_order=5, memcg=False, debug_vm=debug_vm)
    L.mm.page_alloc.setup_per_zone_wmarks(k, 0)
    return k


def _leaked(L, k, victim) -> int:
    """Pages of the victim block still counted as in use after it was freed: nobody holds them."""
    debug = L.mm.debug
    states = debug.pfn_states(k)
    return sum(states[pfn] == debug.PFN_ALLOCATED for pfn in range(victim.pfn, victim.pfn + (1 << ORDER)))


def wrong_order_free(L, corrupted: str, policy: str, compound: bool = True, by: int = 1) -> Outcome:
    """Free an order-:data:`ORDER` block with one of its two orders wrong by ``by`` (1: one too large,
    reaching into the other block; -1: one too small, leaving half the block behind), under ``policy``.

    ``compound=False`` allocates a plain block instead (no stored order: only ``corrupted="caller"``
    makes sense, and ``"stored"`` is refused).  Bad arguments raise
    :class:`~tryalloc.errors.InvalidArgumentError`.
    """
    if policy not in POLICIES or corrupted not in CORRUPTED:
        raise InvalidArgumentError(f"policy must be one of {POLICIES} and corrupted one of {CORRUPTED}, "
                                   f"got {policy!r}, {corrupted!r}")
    if by not in (1, -1):
        raise InvalidArgumentError(f"by must be 1 or -1, got {by!r}")
    if not compound and (corrupted == "stored" or policy == "stored"):
        raise InvalidArgumentError("a plain block records no order: nothing stored to corrupt or to use")
    G, A, P = L.include.gfp, L.mm.page_alloc, L.mm.page
    k = _machine(L, debug_vm=policy == "assert")
    gfp = G.GFP_KERNEL | (G.__GFP_COMP if compound else 0)
    victim = k.call(A.alloc_pages, gfp, ORDER)
    other = k.call(A.alloc_pages, G.GFP_KERNEL, ORDER)
    if other.pfn != victim.pfn + (1 << ORDER) or victim.pfn % (1 << (ORDER + 1)):
        raise RuntimeError(f"layout not as planned: victim {victim.pfn:#x}, other {other.pfn:#x}")
    caller_order = ORDER + by if corrupted == "caller" else ORDER
    if corrupted == "stored":
        k.mem_map.compound_order[victim.pfn] = ORDER + by  # the stray write
    order = P.compound_order(victim) if policy == "stored" else caller_order
    try:
        k.call(A.__free_pages, victim, order)
    except (VMBugError, BadPageError) as report:
        return Outcome("stopped", None, report.title.split(" in process")[0], 0)
    k.call(A.drain_all_pages)
    try:
        L.mm.debug.check_invariants(k)
    except InvariantError as report:
        return Outcome("damaged", order, report.report.splitlines()[0], _leaked(L, k, victim))
    leaked = _leaked(L, k, victim)
    if P.page_ref_count(other) != 1 or leaked:
        return Outcome("damaged", order, f"{leaked} pages lost: counted in use, held by nobody", leaked)
    return Outcome("clean", order, "", 0)

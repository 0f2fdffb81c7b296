"""The specification's rules, restated in this project's own words.

This module is the project's copy of every rule the specification declares; the project never reads the
specification at run time. Each :class:`Rule` carries one statement a test can check, written afresh here
(kernel identifiers are kept verbatim, nothing else is quoted).

Rule ids:

* ``R<group>.<n>`` -- rules of the v6 series. ``R1``..``R6`` follow the six patches (``R1`` = patch 1,
  ``try_alloc_pages``; ``R6`` = patch 6, BPF); ``R8`` comes from the ``__GFP_COMP`` review thread on the
  cover letter and belongs to no patch.
* ``S9.<x>.<n>`` (also ``S9.13a.<n>``) -- changes made after v6: v7-v9, the 6.15 merge and its fixes, and
  later kernels.
* ``I<n>`` -- invariants the model must maintain.

``since`` is the first level (from :data:`LEVELS`, or a later milestone from :data:`LATER`) at which the
rule holds; ``until`` is the first level at which it stops holding (``None``: still holds at the last
milestone known).  ``since=None`` marks a rule that holds at none of the modelled levels or milestones
(the v7-v9 lock API, a merely proposed change); ``versions`` then says where it does hold, and
``release`` which release of the last level (:data:`RELEASES`, ``Config(release=...)``) models it.
A rule's test runs at the last level under :attr:`Rule.final_release`.  Unless a
statement says otherwise, rules for levels 1-6 describe the *intended* polarity of
``gfpflags_allow_spinning()`` (the model's ``fixed`` polarity setting); S9.5.2 describes the as-posted one.
Where the registry had to choose a release or reading that the sources leave open, the statement says
"model's reading". For milestones after 6.15, rules naming try_alloc_pages apply to its successors
(alloc_pages_nolock from 6.16, and its frozen variant from 6.18) unless an S9 rule says otherwise.

The book's chapters and its appendix draw their rule texts from this registry.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The levels of the series the model exists at, oldest first: the baseline kernel (about v6.13),
#: the six v6 patches applied in order, and 6.15 as merged with its early fixes.
LEVELS = ("0", "1", "2", "3", "4", "5", "6", "6.15")
#: Kernel milestones after 6.15: not levels of their own, but releases the last level can be configured as.
LATER = ("6.16", "6.18", "2026")
#: The releases the last level can be configured as (``Config(release=...)``), oldest first: 6.15-rc1
#: (before the rc2 fixes: the localtry_lock_t API of v7-v9 and the second trylock of zone->lock), 6.15 as
#: released (the default, the merged code), the later milestones, and the 2026 proposals (S9.14), which are
#: not known to be merged and are never the default.
RELEASES = ("6.15-rc1", LEVELS[-1]) + LATER + ("proposed",)
#: Levels and releases in one order: what came first carries fewer fixes (``series.mutants.fixed``).
HISTORY = LEVELS[:-1] + RELEASES
#: The kinds a rule may have.
KINDS = ("rule", "derived", "gap", "unconfirmed", "invariant", "later")

_ORDER = LEVELS + LATER


def _index(level: str) -> int:
    """Position of ``level`` in the combined order LEVELS + LATER (ValueError if unknown)."""
    try:
        return _ORDER.index(level)
    except ValueError:
        raise ValueError(f"unknown level {level!r}; expected one of {', '.join(_ORDER)}") from None


class UnknownRule(KeyError):
    """Raised by :func:`rule` for an id the registry does not carry."""

    def __str__(self) -> str:  # KeyError would otherwise show the repr of its argument
        return str(self.args[0]) if self.args else "unknown rule"


@dataclass(frozen=True)
class Rule:
    id: str  # "R2.5"
    statement: str  # own words
    section: str  # where the specification states it (the maintainers' cross-check; readers follow cites)
    since: str | None  # first level (LEVELS or LATER) at which the rule holds; None: at none of them
    until: str | None  # first level at which it no longer holds, or None
    kind: str  # "rule" | "derived" | "gap" | "unconfirmed" | "invariant" | "later"
    cites: tuple[str, ...]  # lore message-ids, commit ids, "mm/page_alloc.c: free_one_page()" style refs
    versions: str | None = None  # series versions described when the rule holds at no modelled level
    release: str | None = None  # for such a rule: the release of the last level it holds in (RELEASES)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.id}: unknown kind {self.kind!r}")
        if self.since is None:
            if self.until is not None or not self.versions:
                raise ValueError(f"{self.id}: since=None needs until=None and a versions note")
            if self.release is not None and self.release not in RELEASES:
                raise ValueError(f"{self.id}: unknown release {self.release!r}; releases are {', '.join(RELEASES)}")
            return
        if self.release is not None:
            raise ValueError(f"{self.id}: only a rule that holds at no level names a release")
        _index(self.since)  # rejects unknown levels
        if self.until is not None and _index(self.until) <= _index(self.since):
            raise ValueError(f"{self.id}: until {self.until!r} is not after since {self.since!r}")

    def holds_at(self, level: str) -> bool:
        """True if the rule holds at ``level`` (any of LEVELS or LATER)."""
        i = _index(level)
        if self.since is None or _index(self.since) > i:
            return False
        return self.until is None or i < _index(self.until)

    @property
    def final_release(self) -> str | None:
        """The release of the last level in which the rule holds (``Config(release=...)``): 6.15 for a
        rule that holds at that level, the milestone a later rule starts at, the ``release`` named by a
        rule of no level (the v7-v9 lock API: 6.15-rc1; a proposal: ``"proposed"``), or ``None`` for a
        rule that ended before 6.15.  A test of the rule runs at the last level under that release."""
        if self.since is None:
            return self.release
        if self.holds_at(LEVELS[-1]):
            return LEVELS[-1]
        return self.since if self.since in LATER else None


# --- citations --------------------------------------------------------------------------------------

_C6 = ("20250124035655.78899-1-alexei.starovoitov@gmail.com",)
_P1 = ("20250124035655.78899-2-alexei.starovoitov@gmail.com", "97769a53f117e2f33864c587d85992ee35194ecf")
_P2 = ("20250124035655.78899-3-alexei.starovoitov@gmail.com", "8c57b687e8331eb80e302a2c528b18b966a9ac7a")
_P3 = ("20250124035655.78899-4-alexei.starovoitov@gmail.com",)
_P3_615 = ("51339d99c0131bc0d16d378e9b05bc498d2967e2",)
_P4 = ("20250124035655.78899-5-alexei.starovoitov@gmail.com", "01d37228d331047a0bbbd1026cec2ccabef6d88d")
_P5 = ("20250124035655.78899-6-alexei.starovoitov@gmail.com", "e8d78dbd0199a42f4e8599d768e77348f3e59741")
_P6 = ("20250124035655.78899-7-alexei.starovoitov@gmail.com", "c9eb8102e21e8c4c6fb74d1921d99e4d43713520")
_GFP_COMP_THREAD = (
    "Z5OgvePdlqRoKMyx@casper.infradead.org",
    "e5c1eed1-3ea2-4452-a871-3308c90e932b@suse.cz",
    "CAADnVQJhU3EYp3fWYcTFtZobJUAaWRQmjjBSw5te9OpUaM8TNw@mail.gmail.com",
    "2b2e6e04-b91d-4d9d-9cf9-5c690abe6746@suse.cz",
    "Z5O_pcGpSh94Hbvu@casper.infradead.org",
    "CAADnVQJ3WCHjPD4EKUK-fdy-hW1rDTD=AwYtrDJ=_RztcGDYFw@mail.gmail.com",
)
_V7 = ("20250212174705.44492-1-alexei.starovoitov@gmail.com", "0aaddfb06882504dded9cde57f91035ab9403b82")
_V8 = ("20250213033556.9534-1-alexei.starovoitov@gmail.com", "efc30cf9-8351-4889-8245-cc4a6893ebf4@suse.cz")
_V9 = ("20250222024427.30294-1-alexei.starovoitov@gmail.com",)
_FIX_LOCK = (
    "20250401005134.14433-1-alexei.starovoitov@gmail.com",
    "51339d99c0131bc0d16d378e9b05bc498d2967e2",
)
_FIX_POLARITY = (
    "20250310124017.187-1-alexei.starovoitov@gmail.com",
    "f90b474a35744b5d43009e4fab232e74a3024cae",
    "202503101254.cfd454df-lkp@intel.com",
)
_FIX_REFCOUNT = (
    "20250401032336.39657-1-alexei.starovoitov@gmail.com",
    "2985dae1e521ee1464130902415f5863ea05dc34",
)
_FIX_ZONELOCK = (
    "20250331002809.94758-1-alexei.starovoitov@gmail.com",
    "c5bb27e2da3a6e1006f3e0aeb36d57c1dd1144aa",
)
_UNACCEPTED = ("20250506112509.905147-2-kirill.shutemov@linux.intel.com",)
_RENAME = ("20250517003446.60260-1-alexei.starovoitov@gmail.com",)
_GFP_ARG = ("20250718021646.73353-4-alexei.starovoitov@gmail.com", "99253de51f80")
_FROZEN = ("20250718021646.73353-5-alexei.starovoitov@gmail.com", "d7242af86434")
_UP_NMI = ("20260427-nolock-api-fix-v2-1-a6b83a92d9a4@kernel.org", "620b46ed6ae17c8438d889c8c0cfddab36a1476c")
_DEBUG_CHECKS = ("20260209062639.16577-1-harry.yoo@oracle.com", "338ad1e84d15078a9ae46d7dd7466329ae0bfa61")
_STACK_RECORD = (
    "CAADnVQK_8bNYEA7TJYgwTYR57=TTFagsvRxp62pFzS_z129eTg@mail.gmail.com",
    "c83aab85e18103a6dc066b4939e2c92a02bb1b05",
    "CAHk-=whBupL1jY0k4ZcPkGw6XZr9+SBG75b181XenzwFJuHD-A@mail.gmail.com",  # Linux 6.18-rc3 shortlog
)
_NMI_MEMCG = ("20250509232859.657525-1-shakeel.butt@linux.dev",)
_NOTIFY_SKIP = ("20250905201606.66198-1-shakeel.butt@linux.dev",)
_INFLIGHT = ("20260715-alloc-nolock-fixes-v1-2-fadc49952dda@google.com",)

_PA = "mm/page_alloc.c"
_MC = "mm/memcontrol.c"
_SD = "lib/stackdepot.c"
_LL = "include/linux/local_lock_internal.h"

# --- the registry -----------------------------------------------------------------------------------

RULES: tuple[Rule, ...] = (
    # ---- patch 1: try_alloc_pages() (v6 1/6; mainline 97769a53f117) ----
    Rule(
        id="R1.1",
        statement=(
            "On a PREEMPT_RT kernel, try_alloc_pages returns NULL straight away when called from NMI or "
            "hard-IRQ context: no lock is attempted and no counter, memcg or tracepoint-observable state "
            "changes beyond entering the function."
        ),
        section="2.5",
        since="1",
        until=None,
        kind="rule",
        cites=_P1 + (f"{_PA}: try_alloc_pages_noprof()",),
    ),
    Rule(
        id="R1.2",
        statement=(
            "On non-RT kernels there is no context-based refusal: try_alloc_pages may be called from task, "
            "softirq, hard-IRQ or NMI context, with interrupts off, under a raw spinlock, or re-entrantly "
            "from inside the page allocator itself."
        ),
        section="2.5",
        since="1",
        until=None,
        kind="rule",
        cites=_P1 + (f"{_PA}: try_alloc_pages_noprof()",),
    ),
    Rule(
        id="R1.3",
        statement=(
            "try_alloc_pages returns NULL without trying any lock when the order is not pcp-allowed, i.e. "
            "larger than PAGE_ALLOC_COSTLY_ORDER (3) and not HPAGE_PMD_ORDER on a THP-enabled build "
            "(pcp_allowed_order() is false). On RT in NMI or hard-IRQ the context refusal of R1.1 comes "
            "first."
        ),
        section="2.5",
        since="1",
        until=None,
        kind="rule",
        cites=_P1 + (f"{_PA}: pcp_allowed_order()", f"{_PA}: try_alloc_pages_noprof()"),
    ),
    Rule(
        id="R1.4",
        statement=(
            "With CONFIG_UNACCEPTED_MEMORY built in, while the global static key saying some zone still has "
            "unaccepted pages is on, try_alloc_pages gives up with NULL before touching any lock. The May "
            "2025 unaccepted-memory change (S9.8.1) removes this early exit; model's reading: it landed in "
            "6.16 (its mainline commit is unconfirmed)."
        ),
        section="2.5",
        since="1",
        until="6.16",
        kind="rule",
        cites=_P1 + _UNACCEPTED + (f"{_PA}: try_alloc_pages_noprof()",),
    ),
    Rule(
        id="R1.5",
        statement=(
            "As long as deferred struct-page initialisation has not finished, try_alloc_pages returns NULL."
        ),
        section="2.5",
        since="1",
        until=None,
        kind="rule",
        cites=_P1 + (f"{_PA}: try_alloc_pages_noprof()",),
    ),
    Rule(
        id="R1.6",
        statement=(
            "A node argument of NUMA_NO_NODE is resolved to the node of the CPU doing the call before the "
            "zonelist is chosen."
        ),
        section="2.5",
        since="1",
        until=None,
        kind="rule",
        cites=_P1 + (f"{_PA}: try_alloc_pages_noprof()",),
    ),
    Rule(
        id="R1.7",
        statement=(
            "try_alloc_pages stays on the fast path and never enters __alloc_pages_slowpath, so it cannot "
            "reclaim directly, compact, wake kswapd, invoke the OOM killer or print a warn_alloc report; its "
            "only retrying is get_page_from_freelist moving on to the next zone."
        ),
        section="2.5",
        since="1",
        until=None,
        kind="rule",
        cites=_P1 + (f"{_PA}: get_page_from_freelist()", f"{_PA}: __alloc_pages_slowpath()"),
    ),
    Rule(
        id="R1.8",
        statement=(
            "Allocation fault injection is bypassed: because ALLOC_TRYLOCK is set, prepare_alloc_pages does "
            "not call should_fail_alloc_page, so a try_alloc_pages request never fails because of it."
        ),
        section="2.5",
        since="1",
        until=None,
        kind="rule",
        cites=_P1 + (f"{_PA}: prepare_alloc_pages()", f"{_PA}: should_fail_alloc_page()"),
    ),
    Rule(
        id="R1.9",
        statement=(
            "The gfp mask of a try_alloc_pages request is __GFP_NOWARN | __GFP_ZERO | __GFP_NOMEMALLOC, with "
            "__GFP_ACCOUNT added from patch 5. It has neither __GFP_DIRECT_RECLAIM nor __GFP_KSWAPD_RECLAIM, "
            "so gfpflags_allow_spinning() is false for it (intended polarity); from 6.18 the mask always "
            "gains __GFP_COMP and __GFP_ACCOUNT becomes the caller's choice (S9.9.2)."
        ),
        section="2.5",
        since="1",
        until="6.18",
        kind="rule",
        cites=_P1 + _P5 + ("include/linux/gfp.h: gfpflags_allow_spinning()",),
    ),
    Rule(
        id="R1.10",
        statement=(
            "Any page handed back by try_alloc_pages is zero-filled; the patch relies on this so that "
            "kmsan_alloc_page is safe to run from any context."
        ),
        section="2.5",
        since="1",
        until=None,
        kind="rule",
        cites=_P1 + (f"{_PA}: try_alloc_pages_noprof()",),
    ),
    Rule(
        id="R1.11",
        statement=(
            "The mask carries no mobility bits, so a try_alloc_pages request is served from the unmovable "
            "migratetype (derived from the baseline mapping of gfp to migratetype)."
        ),
        section="2.5",
        since="1",
        until=None,
        kind="derived",
        cites=_P1 + (f"{_PA}: prepare_alloc_pages()",),
    ),
    Rule(
        id="R1.12",
        statement=(
            "The alloc flags of try_alloc_pages contain no watermark selector, so zones are checked against "
            "their min watermark, not the low watermark ordinary alloc_pages uses (derived). The check still "
            "adds watermark_boost and lowmem_reserve, grants no reserve access, and applies the task's "
            "cpuset in task context."
        ),
        section="2.5",
        since="1",
        until=None,
        kind="derived",
        cites=_P1 + (f"{_PA}: get_page_from_freelist()", f"{_PA}: zone_watermark_fast()"),
    ),
    Rule(
        id="R1.13",
        statement=(
            "The try path never spins on a per-CPU pageset lock, it only trylocks it. The lock may be taken "
            "by a fast-path or local-drain holder on this CPU that an IRQ or NMI interrupted, by the section "
            "a re-entrant program runs inside, or by a remote CPU draining this CPU's pcp; in all these "
            "cases the pcp step returns NULL and rmqueue goes on to the buddy step."
        ),
        section="2.5",
        since="1",
        until=None,
        kind="rule",
        cites=_P1 + (f"{_PA}: rmqueue_pcplist()", f"{_PA}: pcp_spin_trylock()"),
    ),
    Rule(
        id="R1.14",
        statement=(
            "Under ALLOC_TRYLOCK, rmqueue_bulk that loses the trylock on zone->lock moves no blocks (the pcp "
            "step then yields NULL), and rmqueue_buddy that loses it returns NULL. One rmqueue() call for a "
            "pcp-allowed order may thus try zone->lock twice (refill, then buddy), plus more tries when "
            "check_new_pages rejects a bad page and the loop repeats."
        ),
        section="2.5",
        since="1",
        until=None,
        kind="rule",
        cites=_P1 + (f"{_PA}: rmqueue_bulk()", f"{_PA}: rmqueue_buddy()", f"{_PA}: rmqueue()"),
    ),
    Rule(
        id="R1.15",
        statement=(
            "When rmqueue() yields NULL for one zone, get_page_from_freelist continues with the next zone of "
            "the zonelist as in the baseline, so try_alloc_pages reports NULL only after every eligible zone "
            "has failed."
        ),
        section="2.5",
        since="1",
        until=None,
        kind="rule",
        cites=_P1 + (f"{_PA}: get_page_from_freelist()",),
    ),
    Rule(
        id="R1.16",
        statement=(
            "Requests without ALLOC_TRYLOCK still end up holding zone->lock, but in v6 rmqueue_bulk and "
            "rmqueue_buddy get it by a trylock followed, if that fails, by a spinning lock: same outcome, "
            "extra cost. From 6.15 the trylock is dropped and the lock taken directly (S9.7.1)."
        ),
        section="2.5",
        since="1",
        until="6.15",
        kind="rule",
        cites=_P1 + _FIX_ZONELOCK + (f"{_PA}: rmqueue_bulk()", f"{_PA}: rmqueue_buddy()"),
    ),
    Rule(
        id="R1.17",
        statement=(
            "try_alloc_pages does not add __GFP_COMP, so at every level up to and including 6.15 an order > "
            "0 result is a plain non-compound block. From 6.18 the nolock allocator always sets __GFP_COMP "
            "(S9.9.2)."
        ),
        section="2.5",
        since="1",
        until="6.18",
        kind="rule",
        cites=_P1 + _C6 + _GFP_ARG + (f"{_PA}: try_alloc_pages_noprof()",),
    ),
    Rule(
        id="R1.18",
        statement=(
            "If gfpflags_allow_spinning(alloc_flags) is false, stack_depot_save_flags allocates no new pool "
            "page and acquires pool_lock only by a trylock (intended polarity). A lost trylock makes the "
            "save return 0, because a hit in the lock-free lookup would already have returned its handle."
        ),
        section="2.5",
        since="1",
        until=None,
        kind="rule",
        cites=_P1 + (f"{_SD}: stack_depot_save_flags()",),
    ),
    Rule(
        id="R1.19",
        statement=(
            "In NMI context stack depot keeps its baseline behaviour of acquiring pool_lock only through a "
            "trylock, whatever the gfp mask says (so it already holds at level 0: patch 1 keeps it)."
        ),
        section="2.5",
        since="0",
        until=None,
        kind="rule",
        cites=_P1 + (f"{_SD}: stack_depot_save_flags()",),
    ),
    # ---- patch 2: free_pages_nolock() (v6 2/6; mainline 8c57b687e833) ----
    Rule(
        id="R2.1",
        statement=(
            "free_pages_nolock(page, order) follows the reference rules of __free_pages(page, order): it "
            "puts one reference and frees the whole 2^order block only if that was the last. If references "
            "remain on a page that is no compound head, the trailing sub-blocks of orders order-1 down to 0 "
            "are released, each with FPI_TRYLOCK."
        ),
        section="3.5",
        since="2",
        until=None,
        kind="rule",
        cites=_P2 + (f"{_PA}: ___free_pages()", f"{_PA}: free_pages_nolock()"),
    ),
    Rule(
        id="R2.2",
        statement=(
            "No path of free_pages_nolock waits for zone->lock or for a pcp lock (both are only trylocked), "
            "and none of them reaches free_pcppages_bulk."
        ),
        section="3.5",
        since="2",
        until=None,
        kind="rule",
        cites=_P2 + (f"{_PA}: free_pages_nolock()", f"{_PA}: free_pcppages_bulk()"),
    ),
    Rule(
        id="R2.3",
        statement=(
            "free_pages_nolock accepts any page, whichever allocator produced it, and is legal in every "
            "context, NMI and sections holding a raw spinlock included."
        ),
        section="3.5",
        since="2",
        until=None,
        kind="rule",
        cites=_P2 + (f"{_PA}: free_pages_nolock()",),
    ),
    Rule(
        id="R2.4",
        statement=(
            "For a pcp-allowed order whose pcp trylock succeeds, the page joins the pcp list and pcp->count "
            "grows by 2^order even past pcp->high, and nothing goes back to buddy. Returning early leaves "
            "out the adjustment of pcp->high and the clearing of ZONE_BELOW_HIGH, while PGFREE, free_count "
            "and the high-order flag bookkeeping are still updated."
        ),
        section="3.5",
        since="2",
        until=None,
        kind="rule",
        cites=_P2 + (f"{_PA}: free_unref_page_commit()",),
    ),
    Rule(
        id="R2.5",
        statement=(
            "A page whose pcp trylock fails, whose order is not pcp-allowed or whose pageblock is isolated "
            "is passed to free_one_page with FPI_TRYLOCK. If the trylock on zone->lock wins, only this page "
            "goes into buddy (the deferred list is not drained); if it loses, the page is added to the "
            "lock-free list zone->trylock_free_pages, remembering its order inside the page itself."
        ),
        section="3.5",
        since="2",
        until=None,
        kind="rule",
        cites=_P2 + (f"{_PA}: free_one_page()", f"{_PA}: add_page_to_zone_llist()"),
    ),
    Rule(
        id="R2.6",
        statement=(
            "On PREEMPT_RT an FPI_TRYLOCK free of a pcp-allowed order in NMI or hard-IRQ context, on a "
            "pageblock that is not isolated, goes straight onto the zone's deferred list without trying the "
            "pcp or zone lock. free_pages_prepare has already run by then, so only those two locks are "
            "avoided: page_owner's stack-depot save still trylocks pool_lock and DEBUG_OBJECTS_FREE checks "
            "still happen."
        ),
        section="3.5",
        since="2",
        until=None,
        kind="rule",
        cites=_P2 + (f"{_PA}: __free_unref_page()",),
    ),
    Rule(
        id="R2.7",
        statement=(
            "Gap in v6: two kinds of FPI_TRYLOCK free get to free_one_page before the RT context test is "
            "made (orders that are not pcp-allowed, via __free_pages_ok, and isolated pageblocks), so on "
            "PREEMPT_RT they still spin_trylock zone->lock in NMI or hard-IRQ context. No modelled level or "
            "milestone fixes it; only the proposed 2026 change S9.14.1 (unconfirmed) would."
        ),
        section="3.5",
        since="2",
        until=None,
        kind="gap",
        cites=_P2 + _INFLIGHT + (f"{_PA}: __free_pages_ok()", f"{_PA}: free_one_page()"),
    ),
    Rule(
        id="R2.8",
        statement=(
            "A page on a deferred list has already been through free_pages_prepare (memcg uncharge, "
            "page_owner reset, poisoning), yet it is neither counted as free nor allocatable until a drain "
            "merges it into buddy."
        ),
        section="3.5",
        since="2",
        until=None,
        kind="rule",
        cites=_P2 + (f"{_PA}: free_pages_prepare()", f"{_PA}: free_one_page()"),
    ),
    Rule(
        id="R2.9",
        statement=(
            "Only a free_one_page call without FPI_TRYLOCK that has taken the zone's lock drains that zone's "
            "deferred list, merging every deferred page (with its recorded order and the caller's fpi flags) "
            "before its own page. Allocation paths, free_pcppages_bulk and frees that hit the pcp never "
            "drain it, so nothing bounds how long a page stays deferred."
        ),
        section="3.5",
        since="2",
        until=None,
        kind="rule",
        cites=_P2 + (f"{_PA}: free_one_page()",),
    ),
    Rule(
        id="R2.10",
        statement=(
            "PGFREE counts a deferred page at the moment a drain merges it, not when it is deferred; frees "
            "that land on a pcp list are counted in the commit step as before."
        ),
        section="3.5",
        since="2",
        until=None,
        kind="rule",
        cites=_P2 + (f"{_PA}: free_one_page()", f"{_PA}: free_unref_page_commit()"),
    ),
    Rule(
        id="R2.11",
        statement=(
            "Ordinary frees (__free_pages, free_unref_page, renamed free_frozen_pages in 6.15, and batched "
            "folio frees) keep their baseline behaviour except that on reaching free_one_page they drain the "
            "zone's deferred list, and that there, in v6, zone->lock is a trylock then a spinning lock (a "
            "direct lock from 6.15, S9.7.1). free_pcppages_bulk takes zone->lock directly at every level. "
            "Model's reading: the model has no batched folio free (free_unref_folios), so that part is not "
            "exercised; its frees go through the same free_unref_page_commit and free_one_page."
        ),
        section="3.5",
        since="2",
        until=None,
        kind="rule",
        cites=_P2 + (f"{_PA}: free_one_page()", f"{_PA}: free_pcppages_bulk()"),
    ),
    Rule(
        id="R2.12",
        statement=(
            "page_owner records the freeing stack with a mask that forbids spinning (just __GFP_NOWARN), so "
            "on a free stack depot neither allocates a pool page nor does more than trylock pool_lock "
            "(intended polarity)."
        ),
        section="3.5",
        since="2",
        until=None,
        kind="rule",
        cites=_P2 + ("mm/page_owner.c: __reset_page_owner()",),
    ),
    Rule(
        id="R2.13",
        statement=(
            "When allow_spin is false, stack depot frees a leftover pool page with free_pages_nolock rather "
            "than free_pages. Since can_alloc implies allow_spin, nothing was preallocated in that case, so "
            "the branch is defensive and frees nothing in practice (derived)."
        ),
        section="3.5",
        since="2",
        until=None,
        kind="derived",
        cites=_P2 + (f"{_SD}: stack_depot_save_flags()",),
    ),
    Rule(
        id="R2.14",
        statement=(
            "Gap in v6: free_pages_prepare ignores the fpi flags, so FPI_TRYLOCK frees still run "
            "debug_check_no_locks_freed and debug_check_no_obj_freed, which spin on debug-object hash locks "
            "under DEBUG_OBJECTS_FREE. The 2026 fix S9.12.1 closes it."
        ),
        section="3.5",
        since="2",
        until="2026",
        kind="gap",
        cites=_P2 + _DEBUG_CHECKS + (f"{_PA}: free_pages_prepare()",),
    ),
    # ---- patch 3: local_trylock_t (v6 3/6); v6 design, replaced in v7-v9, back in 6.15-rc2 (51339d99c013) ----
    Rule(
        id="R3.1",
        statement=(
            "(!RT) local_trylock_irqsave on a local_trylock_t succeeds exactly when this CPU's active flag "
            "is 0; success leaves IRQs disabled and the flag at 1, failure leaves the IRQ state as it found "
            "it. From 6.15 the flag is named acquired (S9.4.1); the behaviour is the same."
        ),
        section="4.5",
        since="3",
        until=None,
        kind="rule",
        cites=_P3 + _P3_615 + (f"{_LL}: local_trylock_irqsave()",),
    ),
    Rule(
        id="R3.2",
        statement=(
            "(!RT) local_lock_irqsave on a local_trylock_t cannot fail and, apart from a lockdep assertion, "
            "does not look at the flag; it sets the flag to 1, and local_unlock_irqrestore sets it back to "
            "0."
        ),
        section="4.5",
        since="3",
        until=None,
        kind="rule",
        cites=_P3 + _P3_615 + (f"{_LL}: local_lock_irqsave()", f"{_LL}: local_unlock_irqrestore()"),
    ),
    Rule(
        id="R3.3",
        statement=(
            "(!RT) The trylock fails only when this same CPU is already inside a critical section of that "
            "lock: an NMI interrupted the holder (ordinary IRQs are off while it is held) or code running "
            "inside the section re-entered, e.g. a tracepoint running a BPF program."
        ),
        section="4.5",
        since="3",
        until=None,
        kind="rule",
        cites=_P3 + _P3_615 + (f"{_LL}: local_trylock_irqsave()",),
    ),
    Rule(
        id="R3.4",
        statement=(
            "(!RT) Applying local_trylock_irqsave to a plain local_lock_t does not compile. PREEMPT_RT "
            "defines both as spinlock_t, so there the call builds and behaves like the RT trylock of R3.5."
        ),
        section="4.5",
        since="3",
        until=None,
        kind="rule",
        cites=_P3 + _P3_615 + ("include/linux/local_lock.h: local_trylock_irqsave()",),
    ),
    Rule(
        id="R3.5",
        statement=(
            "(RT) local_trylock_irqsave always fails in NMI or hard-IRQ context; elsewhere it disables "
            "migration and spin_trylocks this CPU's lock, re-enabling migration if that fails. It always "
            "sets flags to 0, since RT does not disable IRQs here."
        ),
        section="4.5",
        since="3",
        until=None,
        kind="rule",
        cites=_P3 + _P3_615 + (f"{_LL}: local_trylock_irqsave()",),
    ),
    Rule(
        id="R3.6",
        statement=(
            "A local (try)lock must be released on the CPU that took it, because the per-CPU instance is "
            "looked up again when unlocking."
        ),
        section="4.5",
        since="3",
        until=None,
        kind="rule",
        cites=_P3 + (f"{_LL}: local_unlock_irqrestore()",),
    ),
    # ---- patch 4: memcg stock_lock trylock (v6 4/6; mainline 01d37228d331; file order R4.7, R4.9, R4.10, R4.8) ----
    Rule(
        id="R4.1",
        statement=(
            "consume_stock returns false for a request of more than MEMCG_CHARGE_BATCH (64) pages without "
            "touching stock_lock."
        ),
        section="5.5",
        since="4",
        until=None,
        kind="rule",
        cites=_P4 + (f"{_MC}: consume_stock()",),
    ),
    Rule(
        id="R4.2",
        statement=(
            "While stock_lock is free on this CPU, consume_stock gives the baseline result: it succeeds, "
            "debiting the stock, only if the cached memcg is the requested one and holds at least nr pages."
        ),
        section="5.5",
        since="4",
        until=None,
        kind="rule",
        cites=_P4 + (f"{_MC}: consume_stock()",),
    ),
    Rule(
        id="R4.3",
        statement=(
            "If stock_lock is already held on this CPU (NMI or re-entry) and the gfp mask does not allow "
            "spinning, consume_stock returns false at once instead of waiting."
        ),
        section="5.5",
        since="4",
        until=None,
        kind="rule",
        cites=_P4 + (f"{_MC}: consume_stock()",),
    ),
    Rule(
        id="R4.4",
        statement=(
            "From patch 4 on, refill_stock never spins: if it cannot trylock stock_lock it gives the nr "
            "pages back directly to the memcg's memory page counter, plus memsw if that counter is in use, "
            "does nothing for the root memcg, and leaves the per-CPU stock unchanged."
        ),
        section="5.5",
        since="4",
        until=None,
        kind="rule",
        cites=_P4 + (f"{_MC}: refill_stock()",),
    ),
    Rule(
        id="R4.5",
        statement=(
            "In try_charge_memcg a charge whose mask forbids spinning uses batch = nr, so it charges no "
            "surplus; with no surplus the charge path neither refills the per-CPU stock nor triggers its "
            "flush."
        ),
        section="5.5",
        since="4",
        until=None,
        kind="rule",
        cites=_P4 + (f"{_MC}: try_charge_memcg()",),
    ),
    Rule(
        id="R4.6",
        statement=(
            "A non-spinning charge that the page counters cannot satisfy fails with -ENOMEM and triggers no "
            "reclaim, because the mask is non-blocking (derived from the baseline). If the interrupted task "
            "has PF_MEMALLOC the baseline force-charge path still applies; whether that is intended is "
            "unconfirmed."
        ),
        section="5.5",
        since="4",
        until=None,
        kind="derived",
        cites=_P4 + (f"{_MC}: try_charge_memcg()",),
    ),
    Rule(
        id="R4.7",
        statement=(
            "Gap: patch 4 leaves the memory.high handling after a successful charge as it was, so outside "
            "task context a memcg above memory.high still gets its high-work item scheduled for a "
            "non-spinning charge. Shakeel Butt asked for a gfpflags_allow_spinning() test there, but no fix "
            "was located, so the gap is open at every level."
        ),
        section="5.5",
        since="4",
        until=None,
        kind="gap",
        cites=_P4 + _FIX_POLARITY[2:] + (f"{_MC}: try_charge_memcg()",),
    ),
    Rule(
        id="R4.9",
        statement=(
            "A non-spinning charge ending in -ENOMEM is silent: no MEMCG_MAX event and no cgroup file "
            "notification, since those sites are on the reclaim and forced paths. Gap in v6: if the current, "
            "possibly interrupted, task has PF_MEMALLOC the charge is forced and raises MEMCG_MAX, whose "
            "cgroup_file_notify may spin on cgroup-file, kernfs-notify and workqueue locks; the September "
            "2025 fix S9.13a.1 closes this, placed in 6.18 (model's reading)."
        ),
        section="5.5",
        since="4",
        until="6.18",
        kind="gap",
        cites=_P4 + _NOTIFY_SKIP + (f"{_MC}: try_charge_memcg()", f"{_MC}: memcg_memory_event()"),
    ),
    Rule(
        id="R4.10",
        statement=(
            "Gap in v6: the memcg statistics updated by kmem charge and uncharge (MEMCG_KMEM and the rstat "
            "updated-tracking) are not NMI-safe. Shakeel Butt's May 2025 NMI-safe memcg series addresses it; "
            "model's reading: it landed in 6.16 (mainline ids unconfirmed)."
        ),
        section="5.5",
        since="4",
        until="6.16",
        kind="gap",
        cites=_P4 + _NMI_MEMCG + (f"{_MC}: __memcg_kmem_charge_page()",),
    ),
    Rule(
        id="R4.8",
        statement=(
            "On PREEMPT_RT the stock trylock always fails in NMI or hard-IRQ context. try_alloc_pages never "
            "gets there in those contexts (R1.1), but a free in hard-IRQ on RT whose uncharge goes through "
            "refill_stock takes the direct page-counter uncharge path (derived)."
        ),
        section="5.5",
        since="4",
        until=None,
        kind="derived",
        cites=_P4 + (f"{_MC}: refill_stock()",),
    ),
    # ---- patch 5: memcg in try_alloc_pages (v6 5/6; mainline e8d78dbd0199) ----
    Rule(
        id="R5.1",
        statement=(
            "From patch 5, try_alloc_pages charges each page to a memcg if kmem accounting is enabled and "
            "some objcg applies: in task context the active memcg, else the task's own objcg; outside task "
            "context int_active_memcg. From 6.18 the charge is made only if the caller passes __GFP_ACCOUNT "
            "(S9.9.3)."
        ),
        section="6.4",
        since="5",
        until="6.18",
        kind="rule",
        cites=_P5 + (f"{_MC}: current_obj_cgroup()", f"{_MC}: __memcg_kmem_charge_page()"),
    ),
    Rule(
        id="R5.2",
        statement=(
            "If no objcg can be resolved (for example in an interrupt with int_active_memcg unset), the "
            "charge returns 0 and the page is handed out uncharged."
        ),
        section="6.4",
        since="5",
        until=None,
        kind="rule",
        cites=_P5 + (f"{_MC}: __memcg_kmem_charge_page()",),
    ),
    Rule(
        id="R5.3",
        statement=(
            "The memcg charge is made with try_alloc_pages's non-spinning mask, so stock use, refill and "
            "failure follow R4.3 to R4.6."
        ),
        section="6.4",
        since="5",
        until=None,
        kind="rule",
        cites=_P5 + (f"{_MC}: try_charge_memcg()",),
    ),
    Rule(
        id="R5.4",
        statement=(
            "If the charge fails, try_alloc_pages releases the page without spinning (free_pages_nolock; "
            "from 6.18 the frozen free path with FPI_TRYLOCK) and returns NULL."
        ),
        section="6.4",
        since="5",
        until=None,
        kind="rule",
        cites=_P5 + (f"{_PA}: try_alloc_pages_noprof()", f"{_PA}: free_pages_nolock()"),
    ),
    Rule(
        id="R5.5",
        statement=(
            "At levels 5 and 6 (v6 on a base up to v6.13) the page comes out of get_page_from_freelist with "
            "refcount 1, so it is charged, and freed on charge failure, holding one reference; at 6.15 this "
            "holds again because fix S9.6.1 sets the count. Model's reading: the broken window (v9 merged on "
            "a base with efabfe1420f5, charging and freeing frozen pages) is no modelled level; until 6.18, "
            "where charging moves to the frozen variant (S9.10.1)."
        ),
        section="6.4",
        since="5",
        until="6.18",
        kind="rule",
        cites=_P5 + _FIX_REFCOUNT + ("efabfe1420f5", f"{_PA}: try_alloc_pages_noprof()"),
    ),
    Rule(
        id="R5.6",
        statement=(
            "A successfully charged page carries its objcg in its memcg data, and whichever path later frees "
            "it uncharges it through free_pages_prepare and refill_stock (R4.4)."
        ),
        section="6.4",
        since="5",
        until=None,
        kind="rule",
        cites=_P5 + (f"{_PA}: free_pages_prepare()", f"{_MC}: __memcg_kmem_uncharge_page()"),
    ),
    # ---- patch 6: bpf_map_alloc_pages (v6 6/6; mainline c9eb8102e21e) ----
    Rule(
        id="R6.1",
        statement=(
            "bpf_map_alloc_pages uses the sleeping allocator (alloc_pages_node) only if preempt_count() is "
            "0, interrupts are enabled and PREEMPT_RT is off, and try_alloc_pages otherwise. On kernels "
            "without PREEMPT_COUNT a zero preempt_count() does not prove the context may sleep."
        ),
        section="7.3",
        since="6",
        until=None,
        kind="rule",
        cites=_P6 + ("kernel/bpf/syscall.c: can_alloc_pages()", "kernel/bpf/syscall.c: __bpf_alloc_page()"),
    ),
    Rule(
        id="R6.2",
        statement=(
            "On PREEMPT_RT bpf_map_alloc_pages always goes through try_alloc_pages, even where sleeping "
            "would be allowed, for example when handling an arena page fault."
        ),
        section="7.3",
        since="6",
        until=None,
        kind="rule",
        cites=_P6 + ("kernel/bpf/syscall.c: can_alloc_pages()",),
    ),
    Rule(
        id="R6.3",
        statement=(
            "Whichever allocator is chosen, every page is order 0, zero-filled and charged to the map's "
            "memcg through the active-memcg switch, and a failure prints no warning."
        ),
        section="7.3",
        since="6",
        until=None,
        kind="rule",
        cites=_P6 + ("kernel/bpf/syscall.c: bpf_map_alloc_pages()",),
    ),
    Rule(
        id="R6.4",
        statement=(
            "bpf_map_alloc_pages is all-or-nothing: at the first page it cannot get, it frees every page "
            "obtained so far in this call with free_pages_nolock and returns -ENOMEM; on success it returns "
            "0 with pages[0..nr_pages) all filled."
        ),
        section="7.3",
        since="6",
        until=None,
        kind="rule",
        cites=_P6 + ("kernel/bpf/syscall.c: bpf_map_alloc_pages()",),
    ),
    Rule(
        id="R6.5",
        statement=(
            "Arena code outside bpf_map_alloc_pages is untouched: it still holds the arena->lock mutex, gets "
            "its pointer array from kvcalloc with GFP_KERNEL, frees with __free_page, and the arena kfuncs "
            "stay KF_SLEEPABLE. So bpf_arena_alloc_pages is still unusable from non-sleepable context "
            "(derived; the later rework making the arena kfuncs usable from any context is not tracked here)."
        ),
        section="7.3",
        since="6",
        until=None,
        kind="derived",
        cites=_P6 + ("kernel/bpf/arena.c: arena_alloc_pages()", "kernel/bpf/arena.c: arena_vm_fault()"),
    ),
    Rule(
        id="R6.6",
        statement=(
            "On PREEMPT_RT an arena page fault obtains its page from try_alloc_pages, so lock contention "
            "alone can make it fail and send SIGSEGV to user space (derived from R6.2 and arena_vm_fault)."
        ),
        section="7.3",
        since="6",
        until=None,
        kind="derived",
        cites=_P6 + ("kernel/bpf/arena.c: arena_vm_fault()",),
    ),
    # ---- the __GFP_COMP thread on the v6 cover letter (20250124035655.78899-1) ----
    Rule(
        id="R8.1",
        statement=(
            "A multi-order allocation made with __GFP_COMP is a compound page and has to be freed with its "
            "compound order. A DEBUG_VM model must raise an assertion when such a page is freed with another "
            "order, and must never silently switch to the order recorded in the page."
        ),
        section="8",
        since="0",
        until=None,
        kind="rule",
        cites=_C6 + _GFP_COMP_THREAD + (f"{_PA}: free_pages_prepare()",),
    ),
    Rule(
        id="R8.2",
        statement=(
            "A multi-order page allocated without __GFP_COMP (try_alloc_pages up to 6.17, stack depot pools) "
            "is a plain block: calling free_pages_nolock on it while another reference is outstanding frees "
            "only the trailing sub-blocks, as R2.1 describes."
        ),
        section="8",
        since="2",
        until=None,
        kind="rule",
        cites=_C6 + _GFP_COMP_THREAD + (f"{_PA}: ___free_pages()",),
    ),
    # ---- after v6: v7-v9, the 6.15 merge (aa918db707fb) and its fixes, later kernels ----
    Rule(
        id="S9.1.1",
        statement=(
            "(!RT) In v7-v9 the per-CPU try lock is a separate type, localtry_lock_t, holding a local_lock_t "
            "llock and an unsigned acquired flag; every localtry_lock* variant sets acquired to 1 once the "
            "lock is held and every localtry_unlock* variant clears it before releasing."
        ),
        section="9.1",
        since=None,
        until=None,
        kind="later",
        cites=_V7 + (f"{_LL}: localtry_lock_irqsave()",),
        versions="v7-v9 (as applied to bpf-next and in 6.15-rc1; replaced in 6.15-rc2 by S9.4.1)",
        release="6.15-rc1",
    ),
    Rule(
        id="S9.1.2",
        statement=(
            "In v7-v9, localtry_trylock_irqsave on !RT disables IRQs and succeeds by setting acquired when "
            "it was 0, or restores IRQs and fails when it was 1. On RT it sets flags to 0, fails in NMI or "
            "hard-IRQ, and otherwise disables migration and spin_trylocks the per-CPU lock."
        ),
        section="9.1",
        since=None,
        until=None,
        kind="later",
        cites=_V7 + (f"{_LL}: localtry_trylock_irqsave()",),
        versions="v7-v9 (as applied to bpf-next and in 6.15-rc1; replaced in 6.15-rc2 by S9.4.2)",
        release="6.15-rc1",
    ),
    Rule(
        id="S9.1.3",
        statement=(
            "In v7-v9 on PREEMPT_RT, localtry_lock_irq maps to the plain local_lock, the same way "
            "local_lock_irq does on RT."
        ),
        section="9.1",
        since=None,
        until=None,
        kind="later",
        cites=_V7 + (f"{_LL}: localtry_lock_irq()",),
        versions="v7-v9 (as applied to bpf-next and in 6.15-rc1; replaced in 6.15-rc2)",
        release="6.15-rc1",
    ),
    Rule(
        id="S9.2.1",
        statement=(
            "localtry_trylock, contributed in the v8 review for slab sheaves, only disables preemption on "
            "!RT and succeeds by setting acquired when it was 0, otherwise re-enabling preemption and "
            "failing. On RT it behaves like the irqsave variant without the flags."
        ),
        section="9.2",
        since=None,
        until=None,
        kind="later",
        cites=_V8 + _V9 + (f"{_LL}: localtry_trylock()",),
        versions="v9 (from the v8 review; as applied to bpf-next and in 6.15-rc1; replaced in 6.15-rc2)",
        release="6.15-rc1",
    ),
    Rule(
        id="S9.4.1",
        statement=(
            "From 6.15 (the 6.15-rc2 partial revert), on !RT local_trylock_t is a local_lock_t-compatible "
            "prefix plus an int acquired; every local_lock* variant (plain, irq, irqsave) sets acquired to 1 "
            "when given a local_trylock_t and every local_unlock* variant clears it, with lockdep checking "
            "the previous value."
        ),
        section="9.4",
        since="6.15",
        until=None,
        kind="later",
        cites=_FIX_LOCK + (_LL,),
    ),
    Rule(
        id="S9.4.2",
        statement=(
            "From 6.15, local_trylock_irqsave, the preemption-only local_trylock and local_trylock_init "
            "accept only local_trylock_t (on !RT the trylocks on a local_lock_t do not compile; on RT both "
            "types are a spinlock_t), and both trylocks succeed exactly when acquired was 0. On RT both fail "
            "in NMI or hard-IRQ and otherwise spin_trylock the per-CPU lock with migration disabled. "
            "local_trylock takes the lock alone, as applied in 51339d99c013 (the first posting had a stray "
            "flags parameter)."
        ),
        section="9.4",
        since="6.15",
        until=None,
        kind="later",
        cites=_FIX_LOCK + ("include/linux/local_lock.h: local_trylock()",),
    ),
    Rule(
        id="S9.4.3",
        statement=(
            "From 6.15, consume_stock takes stock_lock unconditionally when the mask allows spinning and "
            "otherwise only trylocks it, returning false if that fails; refill_stock keeps its trylock with "
            "direct uncharge, and the other stock users take plain local_lock_irqsave."
        ),
        section="9.4",
        since="6.15",
        until=None,
        kind="later",
        cites=_FIX_LOCK + (f"{_MC}: consume_stock()", f"{_MC}: refill_stock()"),
    ),
    Rule(
        id="S9.5.1",
        statement=(
            "From 6.15 (the polarity fix), gfpflags_allow_spinning(gfp) is true exactly when gfp contains "
            "__GFP_DIRECT_RECLAIM or __GFP_KSWAPD_RECLAIM, so GFP_KERNEL, GFP_NOWAIT and GFP_ATOMIC allow "
            "spinning."
        ),
        section="9.5",
        since="6.15",
        until=None,
        kind="later",
        cites=_FIX_POLARITY + ("include/linux/gfp.h: gfpflags_allow_spinning()",),
    ),
    Rule(
        id="S9.5.2",
        statement=(
            "Only under the model's as-posted polarity switch (the v6-v9 helper): ordinary "
            "GFP_KERNEL/GFP_NOWAIT/GFP_ATOMIC charges use batch = nr and never refill the stock, a "
            "try_alloc_pages charge spins on a busy stock lock in consume_stock, and stack depot refuses "
            "pool allocation and only trylocks pool_lock for ordinary saves while try_alloc_pages and "
            "page_owner free saves may allocate and spin. Each part applies from the patch adding the code "
            "concerned."
        ),
        section="9.5",
        since="1",
        until="6.15",
        kind="later",
        cites=_FIX_POLARITY + (f"{_MC}: try_charge_memcg()", f"{_SD}: stack_depot_save_flags()"),
    ),
    Rule(
        id="S9.5.3",
        statement=(
            "From 6.15, a stack depot save whose mask has neither reclaim bit never allocates a pool, so "
            "with no spare pool available it fails and returns 0 (what cost KMSAN its origins until the "
            "KMSAN-side fix 7e76b75e5ab3)."
        ),
        section="9.5",
        since="6.15",
        until=None,
        kind="later",
        cites=_FIX_POLARITY
        + ("7e76b75e5ab3339bebab3a4738226cd9b27d8c42", f"{_SD}: stack_depot_save_flags()"),
    ),
    Rule(
        id="S9.6.1",
        statement=(
            "From 6.15 (the 6.15-rc1 refcount fix), try_alloc_pages sets the refcount of the page from "
            "get_page_from_freelist to 1 before charging it, so callers get refcount 1 and on charge failure "
            "free_pages_nolock drops that one reference and frees the page. Model's reading: until 6.18, "
            "where the charge moves into the frozen variant (S9.10.1)."
        ),
        section="9.6",
        since="6.15",
        until="6.18",
        kind="later",
        cites=_FIX_REFCOUNT + ("efabfe1420f5", f"{_PA}: try_alloc_pages_noprof()"),
    ),
    Rule(
        id="S9.7.1",
        statement=(
            "From 6.15, rmqueue_bulk, rmqueue_buddy and free_one_page only spin_trylock_irqsave zone->lock "
            "for a trylock request (ALLOC_TRYLOCK or FPI_TRYLOCK), failing with 0, NULL or a deferral to the "
            "llist, and for every other request take spin_lock_irqsave directly with no trylock before it."
        ),
        section="9.7",
        since="6.15",
        until=None,
        kind="later",
        cites=_FIX_ZONELOCK
        + (f"{_PA}: rmqueue_bulk()", f"{_PA}: rmqueue_buddy()", f"{_PA}: free_one_page()"),
    ),
    Rule(
        id="S9.8.1",
        statement=(
            "After the May 2025 unaccepted-memory change the blanket NULL for pending unaccepted memory is "
            "gone: cond_accept_memory accepts nothing and returns false under ALLOC_TRYLOCK, letting a "
            "nolock request still be served from memory that was accepted earlier. Model's reading: landed "
            "in 6.16 (mainline commit unconfirmed)."
        ),
        section="9.8",
        since="6.16",
        until=None,
        kind="later",
        cites=_UNACCEPTED + (f"{_PA}: cond_accept_memory()",),
    ),
    Rule(
        id="S9.9.1",
        statement=(
            "In 6.16 and 6.17 try_alloc_pages is called alloc_pages_nolock(nid, order) and behaves "
            "identically; a NULL result means no memory is available now (ENOMEM), not a transient busy "
            "state worth retrying."
        ),
        section="9.9",
        since="6.16",
        until="6.18",
        kind="later",
        cites=_RENAME + ("20250517134328.GA104729@cmpxchg.org", f"{_PA}: alloc_pages_nolock_noprof()"),
    ),
    Rule(
        id="S9.9.2",
        statement=(
            "From 6.18, alloc_pages_nolock(gfp, nid, order) always adds __GFP_NOWARN | __GFP_ZERO | "
            "__GFP_NOMEMALLOC | __GFP_COMP to the caller's mask, and a caller bit other than __GFP_ACCOUNT "
            "gives a one-time VM warning while the allocation proceeds (model's reading: landed in 6.18 as "
            "the likely commit 99253de51f80, unconfirmed)."
        ),
        section="9.9",
        since="6.18",
        until=None,
        kind="later",
        cites=_GFP_ARG + (f"{_PA}: alloc_pages_nolock_noprof()",),
    ),
    Rule(
        id="S9.9.3",
        statement=(
            "From 6.18, the nolock allocator attempts a memcg charge only when the caller passed "
            "__GFP_ACCOUNT, and BPF's __bpf_alloc_page does pass it."
        ),
        section="9.9",
        since="6.18",
        until=None,
        kind="later",
        cites=_GFP_ARG + ("kernel/bpf/syscall.c: __bpf_alloc_page()",),
    ),
    Rule(
        id="S9.10.1",
        statement=(
            "From 6.18, alloc_frozen_pages_nolock(gfp, nid, order) behaves like alloc_pages_nolock except "
            "that it returns the page with refcount 0 and, when the charge fails, frees it through the "
            "internal frozen free path with FPI_TRYLOCK; alloc_pages_nolock is that variant followed by "
            "setting the refcount to 1."
        ),
        section="9.10",
        since="6.18",
        until=None,
        kind="later",
        cites=_FROZEN + (f"{_PA}: alloc_frozen_pages_nolock_noprof()",),
    ),
    Rule(
        id="S9.11.1",
        statement=(
            "From the 2026 fix, on !SMP kernels alloc_pages_nolock and alloc_frozen_pages_nolock return NULL "
            "at once when in_nmi(), because a uniprocessor spin_trylock cannot see that the interrupted "
            "context holds the lock."
        ),
        section="9.11",
        since="2026",
        until=None,
        kind="later",
        cites=_UP_NMI + (f"{_PA}: alloc_frozen_pages_nolock_noprof()",),
    ),
    Rule(
        id="S9.12.1",
        statement=(
            "From the 2026 fix, free preparation takes the fpi flags (__free_pages_prepare) and skips "
            "debug_check_no_locks_freed and debug_check_no_obj_freed under FPI_TRYLOCK. Compaction (through "
            "the fpi-less wrapper) and the batched folio free use FPI_NONE, whereas __free_pages_ok and the "
            "frozen free path forward the flags they were given."
        ),
        section="9.12",
        since="2026",
        until=None,
        kind="later",
        cites=_DEBUG_CHECKS + (f"{_PA}: __free_pages_prepare()",),
    ),
    Rule(
        id="S9.13.1",
        statement=(
            "page_owner skips inserting into its per-stack list (the step that kmallocs and takes "
            "stack_list_lock) for allocations whose mask forbids spinning, while still storing the stack "
            "handle in page_ext. The fix appears in the 6.18-rc3 shortlog, so it holds from 6.18 (model's "
            "reading; its mainline id is unconfirmed)."
        ),
        section="9.13",
        since="6.18",
        until=None,
        kind="later",
        cites=_STACK_RECORD + ("mm/page_owner.c: add_stack_record_to_list()",),
    ),
    Rule(
        id="S9.13a.1",
        statement=(
            "After the September 2025 fix, try_charge_memcg hands its spin permission to the memory-event "
            "helper: a non-spinning charge that raises MEMCG_MAX still bumps the event counters but sends no "
            "cgroup file notification. Model's reading: this is the forced charge of R4.9 (a charge ending "
            "in -ENOMEM raises no event), landed in 6.18 (mainline id unconfirmed)."
        ),
        section="9.13a",
        since="6.18",
        until=None,
        kind="later",
        cites=_NOTIFY_SKIP + (f"{_MC}: try_charge_memcg()", f"{_MC}: memcg_memory_event()"),
    ),
    Rule(
        id="S9.13a.2",
        statement=(
            "After the May 2025 NMI-safe memcg series, architectures without NMI-safe per-CPU and atomic "
            "operations do not perform kmem charging from NMI context. Details unconfirmed; model's reading: "
            "landed in 6.16, and current_obj_cgroup finds no objcg in NMI when the kernel has "
            "CONFIG_MEMCG_NMI_UNSAFE (neither NMI-safe this_cpu ops nor NMI-safe cmpxchg)."
        ),
        section="9.13a",
        since="6.16",
        until=None,
        kind="unconfirmed",
        cites=_NMI_MEMCG + (f"{_MC}: __memcg_kmem_charge_page()",),
    ),
    Rule(
        id="S9.14.1",
        statement=(
            "Proposed in July 2026, not known to be merged: an FPI_TRYLOCK free goes to the zone llist and "
            "leaves zone->lock alone in every case where can_spin_trylock() is false (RT in NMI or hard-IRQ, "
            "UP in NMI), on every path including non-pcp orders and isolated pageblocks."
        ),
        section="9.14",
        since=None,
        until=None,
        kind="unconfirmed",
        cites=_INFLIGHT + (f"{_PA}: free_one_page()",),
        versions="proposed 2026-07 (Brendan Jackman, alloc-nolock-fixes)",
        release="proposed",
    ),
    # ---- invariants: what the model keeps true on every run, derived from the rules above ----
    Rule(
        id="I1",
        statement=(
            "With the intended polarity and the 6.15 fixes, nothing reachable from try_alloc_pages or "
            "free_pages_nolock acquires zone->lock, a pcp lock, memcg_stock.stock_lock or pool_lock by "
            "blocking. Model's reading: stack_list_lock is covered only from S9.13.1 (6.18), since at 6.15 "
            "page_owner's per-stack list insertion can still spin on it when page_owner is enabled."
        ),
        section="11",
        since="6.15",
        until=None,
        kind="invariant",
        cites=_P1 + _P2 + _P4 + _FIX_POLARITY[:2] + _FIX_ZONELOCK + ("mm/page_owner.c: __set_page_owner()",),
    ),
    Rule(
        id="I2",
        statement=(
            "Conservation: pages in buddy, on pcp lists and allocated always add up to the total, with the "
            "zone llists an additional bucket from level 2 on. A page on a deferred llist is never handed "
            "out before a drain has merged it into buddy."
        ),
        section="11",
        since="0",
        until=None,
        kind="invariant",
        cites=_P2 + (f"{_PA}: free_one_page()",),
    ),
    Rule(
        id="I3",
        statement=(
            "pcp->count can exceed pcp->high only through FPI_TRYLOCK frees, and each ordinary free into "
            "that pcp finding the count at or above the mark bulk-frees clamp(free_count, batch, high - batch) "
            "pages to buddy (nr_pcp_free, v6.7 on), so after a long run of FPI_TRYLOCK frees several ordinary "
            "frees may be needed to get back below the mark. Model's reading: the model does not tune "
            "pcp->high automatically (high_min equals high_max unless a scenario sets a range)."
        ),
        section="11",
        since="2",
        until=None,
        kind="invariant",
        cites=_P2 + (f"{_PA}: free_unref_page_commit()", f"{_PA}: nr_pcp_free()"),
    ),
    Rule(
        id="I4",
        statement=(
            "memcg page counters never go negative, and every try_alloc_pages page that was charged has its "
            "charge returned once and only once, at free time, either via the stock refill or via the direct "
            "counter uncharge."
        ),
        section="11",
        since="5",
        until=None,
        kind="invariant",
        cites=_P4 + _P5 + (f"{_MC}: refill_stock()",),
    ),
    Rule(
        id="I5",
        statement=(
            "(!RT) The active flag of a local_trylock_t (acquired from 6.15) is 1 for as long as, and only "
            "as long as, some context of that CPU is within the lock's critical section. In v6 this relies "
            "on only the irqsave lock/unlock pair being used on the type, which is true of every user in the "
            "series."
        ),
        section="11",
        since="3",
        until=None,
        kind="invariant",
        cites=_P3 + _P3_615 + (_LL,),
    ),
)

_BY_ID = {r.id: r for r in RULES}
if len(_BY_ID) != len(RULES):  # pragma: no cover - guards against editing mistakes
    raise RuntimeError("duplicate rule id in RULES")


def rule(rule_id: str) -> Rule:
    """The rule with id ``rule_id``; :class:`UnknownRule` (a KeyError) if the registry lacks it."""
    try:
        return _BY_ID[rule_id]
    except KeyError:
        raise UnknownRule(f"no rule with id {rule_id!r} in the registry") from None


def rules_since(level: str) -> tuple[Rule, ...]:
    """Rules that hold at ``level`` (since <= level < until), in registry order.

    ``level`` must be one of :data:`LEVELS`; rules with ``since=None`` never hold at a level.
    """
    if level not in LEVELS:
        raise ValueError(f"{level!r} is not a modelled level; expected one of {', '.join(LEVELS)}")
    return tuple(r for r in RULES if r.holds_at(level))


def by_patch(n: int) -> tuple[Rule, ...]:
    """The rules of v6 patch ``n`` (ids ``R<n>.*``), for n in 1..6; the R8 review rules belong to no patch."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 6:
        raise ValueError(f"patch number must be an int from 1 to 6, got {n!r}")
    prefix = f"R{n}."
    return tuple(r for r in RULES if r.id.startswith(prefix))

"""The series' history as data: the six v6 patches and the dated milestones around them.

The preface draws its table and its timeline from here (the drawing is
:func:`tryalloc.book.history_figure.series_timeline`), so a date or an id is written once.  Every entry cites a
lore message-id (``https://lore.kernel.org/r/<id>`` resolves it) and, once it reached a tree, the
commit id; ids that the sources could not pin down carry ``confirmed=False``.

Dates are UTC, as the message-ids' timestamps give them; a mail sent on the evening of one day in
California is dated the next day here (v6 was sent 2025-01-23 PST, 2025-01-24 UTC).
Sources: the cover letters and their change logs, the patchwork notice that applied v9, the pull request
to Linus and the later fixes, each entry citing its own message-id or commit.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

#: The kinds of milestone, in the order the timeline's legend lists them.
KINDS = ("version", "merge", "fix", "later", "proposed")


def lore(message_id: str) -> str:
    """The lore.kernel.org address that resolves ``message_id``."""
    return f"https://lore.kernel.org/r/{message_id}"


@dataclass(frozen=True)
class Patch:
    """One patch of the v6 posting.

    ``subject`` is the patch's subject line; ``effect`` says in this project's words what it does;
    ``commit`` is the commit that applied its v9 successor to bpf-next (2025-02-27).
    """

    number: int
    subject: str
    effect: str
    message_id: str
    commit: str
    section: str  # where the specification describes it (maintainers' cross-check; readers follow the ids)


@dataclass(frozen=True)
class Milestone:
    """A dated step in the series' life: a posting, its application or merge, a later fix."""

    when: date
    label: str  # short, for the timeline
    kind: str  # one of KINDS
    message_id: str | None = None
    commit: str | None = None
    section: str = ""  # where the specification describes it (maintainers' cross-check)
    confirmed: bool = True  # False: the id (or the step's outcome) is not confirmed by a primary source

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"{self.label}: unknown milestone kind {self.kind!r}; known: {', '.join(KINDS)}")
        if self.message_id is None and self.commit is None:
            raise ValueError(f"{self.label}: a milestone cites a message-id or a commit")


_V6 = "20250124035655.78899-{}-alexei.starovoitov@gmail.com"

PATCHES = (
    Patch(1, "mm, bpf: Introduce try_alloc_pages() for opportunistic page allocation",
          "an allocation that only ever tries zone->lock and the pcp lock, and fails instead of waiting; "
          "gfpflags_allow_spinning() and ALLOC_TRYLOCK",
          _V6.format(2), "97769a53f117e2f33864c587d85992ee35194ecf", "2"),
    Patch(2, "mm, bpf: Introduce free_pages_nolock()",
          "a free that never waits for zone->lock: when the trylock fails the page goes on a lock-free "
          "per-zone list (FPI_TRYLOCK), freed later by whoever next holds the lock",
          _V6.format(3), "8c57b687e8331eb80e302a2c528b18b966a9ac7a", "3"),
    Patch(3, "locking/local_lock: Introduce local_trylock_t and local_trylock_irqsave()",
          "a per-CPU lock an NMI can try and fail on, instead of walking into the section it interrupted",
          _V6.format(4), "0aaddfb06882504dded9cde57f91035ab9403b82", "4"),
    Patch(4, "memcg: Use trylock to access memcg stock_lock.",
          "the memcg per-CPU charge stock is only tried by callers that must not spin; they skip the stock",
          _V6.format(5), "01d37228d331047a0bbbd1026cec2ccabef6d88d", "5"),
    Patch(5, "mm, bpf: Use memcg in try_alloc_pages().",
          "try_alloc_pages() charges the page to the memory cgroup and frees it without locks if the charge fails",
          _V6.format(6), "e8d78dbd0199a42f4e8599d768e77348f3e59741", "6"),
    Patch(6, "bpf: Use try_alloc_pages() to allocate pages for bpf needs.",
          "bpf_map_alloc_pages() picks the ordinary allocator or try_alloc_pages() from the context it runs in",
          _V6.format(7), "c9eb8102e21e8c4c6fb74d1921d99e4d43713520", "7"),
)

_AS = "-alexei.starovoitov@gmail.com"

HISTORY = (
    Milestone(date(2024, 11, 16), "v1", "version", "20241116014854.55141-1" + _AS, section="0.4"),
    Milestone(date(2024, 12, 10), "v2", "version", "20241210023936.46871-1" + _AS, section="0.4"),
    Milestone(date(2024, 12, 18), "v3", "version", "20241218030720.1602449-1" + _AS, section="0.4"),
    Milestone(date(2025, 1, 14), "v4", "version", "20250114021922.92609-1" + _AS, section="0.4"),
    Milestone(date(2025, 1, 15), "v5", "version", "20250115021746.34691-1" + _AS, section="0.4"),
    Milestone(date(2025, 1, 24), "v6 (this book)", "version", _V6.format(1), section="0.4"),
    Milestone(date(2025, 2, 12), "v7", "version", "20250212174705.44492-1" + _AS, section="9.1"),
    Milestone(date(2025, 2, 13), "v8", "version", "20250213033556.9534-1" + _AS, section="9.2"),
    Milestone(date(2025, 2, 22), "v9", "version", "20250222024427.30294-1" + _AS, section="9.3"),
    Milestone(date(2025, 2, 27), "applied to bpf-next", "merge",
              "174067863450.1511239.16498641683130418968.git-patchwork-notify@kernel.org", "93ed6fc268c4",
              section="9.3"),
    Milestone(date(2025, 3, 10), "polarity fix", "fix", "20250310124017.187-1" + _AS,
              "f90b474a35744b5d43009e4fab232e74a3024cae", section="9.5"),
    Milestone(date(2025, 3, 27), "pull request", "merge", "20250327145159.99799-1" + _AS, "f90b474a3574",
              section="9.3"),
    Milestone(date(2025, 3, 30), "merged for 6.15", "merge", None, "aa918db707fba507e85217961643281ee8dfb2ed",
              section="9.3"),
    Milestone(date(2025, 3, 31), "no second zone->lock trylock", "fix", "20250331002809.94758-1" + _AS,
              "c5bb27e2da3a6e1006f3e0aeb36d57c1dd1144aa", section="9.7"),
    Milestone(date(2025, 4, 1), "back to local_trylock_t", "fix", "20250401005134.14433-1" + _AS,
              "51339d99c0131bc0d16d378e9b05bc498d2967e2", section="9.4"),
    Milestone(date(2025, 4, 1), "missing refcount", "fix", "20250401032336.39657-1" + _AS,
              "2985dae1e521ee1464130902415f5863ea05dc34", section="9.6"),
    Milestone(date(2025, 5, 6), "unaccepted memory", "fix",
              "20250506112509.905147-2-kirill.shutemov@linux.intel.com", section="9.8", confirmed=False),
    Milestone(date(2025, 5, 17), "renamed alloc_pages_nolock (6.16)", "later", "20250517003446.60260-1" + _AS,
              section="9.9"),
    Milestone(date(2025, 7, 18), "gfp argument, frozen variant (6.18)", "later", "20250718021646.73353-5" + _AS,
              "d7242af86434", section="9.10"),
    Milestone(date(2025, 9, 11), "KMSAN fallout of the polarity fix", "fix", "20250911192953.GG1376@sol",
              "7e76b75e5ab3339bebab3a4738226cd9b27d8c42", section="9.5"),
    Milestone(date(2025, 10, 9), "page_owner: no spinning", "fix",
              "CAADnVQK_8bNYEA7TJYgwTYR57=TTFagsvRxp62pFzS_z129eTg@mail.gmail.com",
              "c83aab85e18103a6dc066b4939e2c92a02bb1b05", section="9.13", confirmed=False),
    Milestone(date(2026, 2, 9), "no debug checks with FPI_TRYLOCK", "fix",
              "20260209062639.16577-1-harry.yoo@oracle.com", "338ad1e84d15078a9ae46d7dd7466329ae0bfa61",
              section="9.12"),
    Milestone(date(2026, 4, 27), "NULL in NMI on UP", "fix", "20260427-nolock-api-fix-v2-1-a6b83a92d9a4@kernel.org",
              "620b46ed6ae17c8438d889c8c0cfddab36a1476c", section="9.11"),
    Milestone(date(2026, 7, 15), "alloc-nolock fixes (in flight)", "proposed",
              "20260715-alloc-nolock-fixes-v1-2-fadc49952dda@google.com", section="9.14", confirmed=False),
)

#: The milestone that ends the series proper: everything after it is a fix or a follow-up.
MERGE = next(m for m in HISTORY if m.label == "merged for 6.15")


def citation(m: Milestone | Patch) -> str:
    """The ids of one entry as text: ``<message-id>, commit <12 hex>`` (``?`` marks an unconfirmed id)."""
    parts = [m.message_id] if m.message_id else []
    if m.commit:
        parts.append(f"commit {m.commit[:12]}")
    mark = "" if getattr(m, "confirmed", True) else " (?)"
    return ", ".join(parts) + mark

"""Historical bugs as mutants, and the fixes of the kernel releases: one mechanism for both.

Each bug the kernel fixed -- after v6, and one from before the series that the search finds -- has an
entry here: the *release* whose code has the fix (:attr:`Mutant.level`) and a name.  The kernel-shaped
code asks :func:`fixed` at the place of the bug (``if fixed("second-trylock"): ...``): true when the
running machine's release carries the fix (``Config(release=...)``, :data:`~tryalloc.series.rules.RELEASES`)
and the mutant of that name is not enabled.  So the release 6.15-rc1 and the mutant "second-trylock" at
release 6.15 are the same guarded line, one path for the buggy branch and the fixed one.

With the default release (6.15, as merged) and no mutant enabled, the model is the kernel as merged; a
later release turns on the later fixes.  A mutant puts one bug back into a release that has its fix:
``tests/test_mutants.py`` runs the tests each entry names with the mutant on and requires them to fail
(the suite would have caught each bug the kernel fixed), and the book runs a fix's before/after either
way.  At the levels before 6.15 there is no release to configure: :func:`fixed` compares the entry with
the level itself (only the entry fixed before the series has guarded lines there).

A mutant is enabled for a block with :func:`enabled`, or for a whole process with the environment
variable ``TRYALLOC_MUTANT`` (how the mutant test runs parts of the suite in a subprocess).  An unknown
name raises :class:`~tryalloc.errors.ConfigError`.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..kernel.sched import running
from .levels import LEVEL
from .rules import HISTORY, rule

#: The environment variable that enables a mutant for a whole process.
ENV = "TRYALLOC_MUTANT"


@dataclass(frozen=True)
class Mutant:
    """One historical bug.

    name
        the switch's name, used by the guarded line and by :func:`enabled`.
    rule_ids
        the registry rules the fix established (:mod:`tryalloc.series.rules`); none for a bug fixed
        before the series (its killing tests then need no rule mark).
    description
        what the bug did, in the project's words.
    citation
        the fix: mainline commit id and lore message-id of the posting.
    level
        the first level or release (:data:`~tryalloc.series.rules.HISTORY`) whose code has the fix.
    tests
        pytest node ids, relative to the repository root, of rule-marked tests that kill the mutant.
    """

    name: str
    rule_ids: tuple[str, ...]
    description: str
    citation: tuple[str, ...]
    level: str
    tests: tuple[str, ...]

    def __post_init__(self) -> None:
        for rule_id in self.rule_ids:
            rule(rule_id)  # an unknown id raises UnknownRule
        if self.level not in HISTORY:
            raise ConfigError(f"mutant {self.name!r}: unknown level or release {self.level!r}; "
                              f"known: {', '.join(HISTORY)}")
        if not self.tests:
            raise ConfigError(f"mutant {self.name!r} names no test that kills it")


_P1_TESTS = "tests/test_patch1.py::"
_AFTER = "tests/test_after_v6.py::"

MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        name="racy-free-pages-head",
        rule_ids=(),
        description=(
            "___free_pages reads PageHead after dropping its reference instead of before: when another "
            "holder frees the compound page in between, the tails are freed a second time (before the "
            "series: fixed in Feb 2023)."
        ),
        citation=("mm: page_alloc: fix page corruption caused by racy check in __free_pages",
                  "Fixes: e320d3012d25"),
        level="0",
        tests=("tests/test_refcount_race.py::"
               "test_reading_page_head_before_the_put_frees_a_shared_compound_page_once_in_every_order",),
    ),
    Mutant(
        name="as-posted-polarity",
        rule_ids=("S9.5.1",),
        description=(
            "gfpflags_allow_spinning() with the test the wrong way round, as v6-v9 posted it: masks with a "
            "reclaim bit count as unable to spin and the try_alloc_pages mask as able to."
        ),
        citation=("f90b474a35744b5d43009e4fab232e74a3024cae", "20250310124017.187-1-alexei.starovoitov@gmail.com"),
        level="6.15-rc1",
        tests=(_P1_TESTS + "test_polarity_is_fixed_at_6_15_whatever_the_switch",
               "tests/test_polarity.py::"
               "test_fixed_ordinary_charges_refill_the_stock_and_a_try_alloc_pages_charge_takes_exactly_nr"),
    ),
    Mutant(
        name="missing-refcount",
        rule_ids=("S9.6.1",),
        description=(
            "try_alloc_pages does not set the refcount of the page get_page_from_freelist hands it, which "
            "since v6.14-rc1 comes out frozen, so callers get a page with refcount 0."
        ),
        citation=("2985dae1e521ee1464130902415f5863ea05dc34", "20250401032336.39657-1-alexei.starovoitov@gmail.com"),
        level="6.15-rc1",
        tests=(_AFTER + "test_try_alloc_pages_sets_the_refcount_of_the_frozen_page",),
    ),
    Mutant(
        name="localtry-api",
        rule_ids=("S9.4.1", "S9.4.3"),
        description=(
            "memcg's stock lock is v7-v9's localtry_lock_t with the localtry_* API (6.15-rc1): "
            "consume_stock tries the lock first even when it may spin, as v9's patch 4 did."
        ),
        citation=("51339d99c0131bc0d16d378e9b05bc498d2967e2", "20250401005134.14433-1-alexei.starovoitov@gmail.com"),
        level="6.15",
        tests=("tests/test_patch4.py::test_from_6_15_a_spinning_consume_locks_at_once_and_only_a_non_spinning_one_tries",),
    ),
    Mutant(
        name="second-trylock",
        rule_ids=("S9.7.1",),
        description=(
            "rmqueue_bulk, rmqueue_buddy and free_one_page first trylock zone->lock for ordinary requests "
            "too, and only then spin: a second trylock of a lock the caller is allowed to wait for."
        ),
        citation=("c5bb27e2da3a6e1006f3e0aeb36d57c1dd1144aa", "20250331002809.94758-1-alexei.starovoitov@gmail.com"),
        level="6.15",
        tests=(_P1_TESTS + "test_6_15_trylock_requests_only_try_and_ordinary_callers_lock_directly",
               _AFTER + "test_6_15_ordinary_frees_lock_zone_lock_directly"),
    ),
    Mutant(
        name="unaccepted-memory-bail",
        rule_ids=("S9.8.1",),
        description=(
            "try_alloc_pages returns NULL whenever any memory is still unaccepted, even though accepted "
            "memory could serve it."
        ),
        citation=("20250506112509.905147-2-kirill.shutemov@linux.intel.com",),
        level="6.16",
        tests=(_AFTER + "test_unaccepted_memory_elsewhere_does_not_fail_a_nolock_allocation",),
    ),
    Mutant(
        name="nolock-rename",
        rule_ids=("S9.9.1",),
        description=(
            "The nolock allocator keeps 6.15's name try_alloc_pages, whose try_ reads as 'busy, retry': "
            "6.16 calls it alloc_pages_nolock (an API change rather than a bug; the switch keeps the old name)."
        ),
        citation=("20250517003446.60260-1-alexei.starovoitov@gmail.com", "20250517134328.GA104729@cmpxchg.org"),
        level="6.16",
        tests=(_AFTER + "test_6_16_renames_try_alloc_pages_to_alloc_pages_nolock",),
    ),
    Mutant(
        name="nolock-gfp-argument",
        rule_ids=("S9.9.2", "S9.9.3"),
        description=(
            "alloc_pages_nolock takes no gfp argument and charges every page to the memcg, as before 6.18; "
            "6.18 lets the caller ask for the charge with __GFP_ACCOUNT and makes the page compound."
        ),
        citation=("99253de51f80 (likely)", "20250718021646.73353-4-alexei.starovoitov@gmail.com"),
        level="6.18",
        tests=(_AFTER + "test_6_18_alloc_pages_nolock_takes_gfp_and_charges_only_with_gfp_account",
               _AFTER + "test_6_18_bpf_asks_for_the_charge"),
    ),
    Mutant(
        name="frozen-nolock",
        rule_ids=("S9.10.1",),
        description=(
            "There is no frozen nolock allocation for slab: every page comes with its reference and a "
            "failed charge frees it through free_pages_nolock, as before 6.18."
        ),
        citation=("d7242af86434", "20250718021646.73353-5-alexei.starovoitov@gmail.com"),
        level="6.18",
        tests=(_AFTER + "test_6_18_alloc_frozen_pages_nolock_hands_out_refcount_0_and_frees_frozen",),
    ),
    Mutant(
        name="nmi-unsafe-kmem-charge",
        rule_ids=("S9.13a.2",),
        description=(
            "memcg charges kmem from NMI even on an architecture without NMI-safe per-CPU or cmpxchg "
            "operations, whose counter updates an NMI can tear (details unconfirmed)."
        ),
        citation=("20250509232859.657525-1-shakeel.butt@linux.dev",),
        level="6.16",
        tests=("tests/test_patch4.py::test_6_16_an_nmi_unsafe_arch_charges_nothing_in_nmi",),
    ),
    Mutant(
        name="notify-under-nolock",
        rule_ids=("S9.13a.1",),
        description=(
            "A charge that may not spin and is forced past the limit still calls cgroup_file_notify, which "
            "takes the cgroup file and kernfs locks by spinning."
        ),
        citation=("20250905201606.66198-1-shakeel.butt@linux.dev",),
        level="6.18",
        tests=("tests/test_patch4.py::test_6_18_a_non_spinning_forced_charge_counts_max_but_notifies_nobody",),
    ),
    Mutant(
        name="nmi-on-up",
        rule_ids=("S9.11.1",),
        description=(
            "On a uniprocessor kernel spin_trylock always succeeds, so an NMI allocating while the task it "
            "interrupted is inside the pcp or zone lock walks into the same free lists."
        ),
        citation=("620b46ed6ae17c8438d889c8c0cfddab36a1476c", "20260427-nolock-api-fix-v2-1-a6b83a92d9a4@kernel.org"),
        level="2026",
        tests=(_AFTER + "test_on_up_a_nolock_allocation_in_nmi_returns_null_at_once",),
    ),
    Mutant(
        name="debug-checks-under-trylock",
        rule_ids=("S9.12.1",),
        description=(
            "free_pages_prepare runs debug_check_no_obj_freed for FPI_TRYLOCK frees too, spinning on the "
            "debug-objects hash lock from any context."
        ),
        citation=("338ad1e84d15078a9ae46d7dd7466329ae0bfa61", "20260209062639.16577-1-harry.yoo@oracle.com"),
        level="2026",
        tests=(_AFTER + "test_a_trylock_free_skips_the_debug_objects_check",),
    ),
    Mutant(
        name="trylock-where-unsafe",
        rule_ids=("S9.14.1",),
        description=(
            "Proposed in 2026, not known to be merged: an FPI_TRYLOCK free of an order the pcp does not "
            "cache, or into an isolated pageblock, trylocks zone->lock where no trylock is safe (RT in NMI "
            "or hard-IRQ, UP in NMI), and the pcp path checks only the RT case."
        ),
        citation=("20260715-alloc-nolock-fixes-v1-2-fadc49952dda@google.com",),
        level="proposed",
        tests=(_AFTER + "test_proposed_a_nolock_free_where_trylock_is_unsafe_never_touches_zone_lock",),
    ),
    Mutant(
        name="sleepable-arena",
        rule_ids=(),
        description=(
            "The BPF arena as patch 6 left it: arena->lock is a mutex, the page-pointer array comes from "
            "kvcalloc(GFP_KERNEL) and every free takes the mutex, so a program in NMI or any atomic context "
            "cannot use the arena's kfuncs.  Puranjay Mohan's follow-ups made them any-context (a resilient "
            "spinlock, kmalloc_nolock arrays, deferred frees); ids from a bpf-next log, the release unconfirmed."
        ),
        citation=("b8467290edab", "360c35f8ffae", "CAADnVQ+uJN4z_j4RbnVS0BFATxCv_VZsFnH8k7tnS_-gMh=Rkg@mail.gmail.com"),
        level="2026",
        tests=("tests/test_finale.py::test_a_free_that_may_not_sleep_is_deferred_to_the_worker",
               "tests/test_finale.py::test_an_nmi_on_the_arena_lock_holder_gets_null_instead_of_a_deadlock"),
    ),
    Mutant(
        name="stack-record-spins",
        rule_ids=("S9.13.1",),
        description=(
            "page_owner links a new allocation stack into its list (kmalloc and a spin on stack_list_lock) "
            "even for allocations whose mask forbids spinning."
        ),
        citation=("c83aab85e18103a6dc066b4939e2c92a02bb1b05",
                  "CAADnVQK_8bNYEA7TJYgwTYR57=TTFagsvRxp62pFzS_z129eTg@mail.gmail.com"),
        level="6.18",
        tests=(_AFTER + "test_page_owner_does_not_spin_for_a_nolock_allocation",),
    ),
)

_BY_NAME = {m.name: m for m in MUTANTS}


def get(name: str) -> Mutant:
    """The mutant called ``name``; :class:`~tryalloc.errors.ConfigError` naming the known ones if none."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown mutant {name!r}; known: {', '.join(_BY_NAME)}") from None


_active: str | None = get(os.environ[ENV]).name if os.environ.get(ENV) else None
_RANK = {name: i for i, name in enumerate(HISTORY)}
#: Each entry's rank in HISTORY, looked up on the kernel's hot paths.
_FIXED_IN = {m.name: _RANK[m.level] for m in MUTANTS}


def fixed(name: str, kernel=None) -> bool:
    """Does the running machine (or ``kernel``, for boot code outside a run) have the fix ``name``: its
    release carries the fix and the mutant of that name is not enabled?  The guarded lines of the
    kernel-shaped code ask this."""
    if _active == name:
        return False
    config = (kernel or running().kernel).config
    try:
        # the configured release at the last level; before it there is no release to choose: the level
        return _FIXED_IN[name] <= _RANK[getattr(config, "release", LEVEL)]
    except KeyError:
        raise ConfigError(f"unknown mutant {name!r}; known: {', '.join(_BY_NAME)}") from None


def mutant(name: str) -> bool:
    """Is the mutant ``name`` enabled?"""
    return _active == name


def active() -> str | None:
    """The name of the enabled mutant, or ``None``."""
    return _active


@contextmanager
def enabled(name: str):
    """Run a block with the mutant ``name`` on (one at a time; the previous setting comes back after)."""
    global _active
    get(name)
    before, _active = _active, name
    try:
        yield get(name)
    finally:
        _active = before


@dataclass(frozen=True)
class Run:
    """How a run of some tests went: the mutant enabled (if any), pytest's exit status, and its summary
    line without the time it took (``"2 failed"``)."""

    mutant: str | None
    returncode: int
    summary: str

    @property
    def failed(self) -> bool:
        """Did at least one test fail (pytest's exit status 1)?"""
        return self.returncode == 1

    @property
    def passed(self) -> bool:
        """Did every test pass (or fail where it is marked to, exit status 0)?"""
        return self.returncode == 0


def run_tests(tests, *, mutant_name: str | None = None, runxfail: bool = False, root: Path | None = None) -> Run:
    """Run the pytest node ids ``tests`` in a fresh interpreter, with the mutant ``mutant_name`` enabled
    through :data:`ENV` if given, and with ``--runxfail`` if asked (an expected failure then counts as
    one).  ``root`` is the repository, where the tests live (they are not part of the package); it
    defaults to the checkout this package was imported from."""
    if mutant_name is not None:
        get(mutant_name)
    root = root or Path(__file__).resolve().parents[2]
    env = {key: value for key, value in os.environ.items() if key != ENV}
    if mutant_name is not None:
        env[ENV] = mutant_name
    args = [sys.executable, "-m", "pytest", "-q", "--color=no", "-p", "no:cacheprovider", *tests]
    if runxfail:
        args.append("--runxfail")
    proc = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    summary = lines[-1] if lines else proc.stderr.strip()[-200:]
    return Run(mutant_name, proc.returncode, re.sub(r" in [\d.]+s( \([^)]*\))?$", "", summary))


def kill(m: Mutant, root: Path | None = None) -> Run:
    """Run ``m``'s tests with the mutant on; the mutant is killed when the run fails."""
    return run_tests(m.tests, mutant_name=m.name, root=root)


def kills(root: Path | None = None) -> dict[str, Run]:
    """:func:`kill` for every mutant of :data:`MUTANTS`, by name.  The runs are separate interpreters, so
    they go side by side, one per core: the book's chapter runs them all within its time budget."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        runs = pool.map(lambda m: kill(m, root), MUTANTS)
        return {m.name: run for m, run in zip(MUTANTS, runs, strict=True)}

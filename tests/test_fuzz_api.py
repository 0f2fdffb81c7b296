"""Fuzzing the allocator's public API (hypothesis, stateful): random sequences of valid and invalid calls.

Every call either works, or raises a documented exception (a :class:`~tryalloc.errors.UsageError`
subclass) leaving the machine's whole state as it was (:func:`tryalloc.kernel.snapshot.changes`), or
ends in a kernel-style report (a :class:`~tryalloc.errors.KernelReport`, after which the machine is
replaced).  Between calls the page-conservation and memcg invariants hold, as long as no misuse was
accepted silently (a free with a smaller order than allocated is a caller's bug the kernel does not
catch either; the machine is replaced then too).
"""
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tryalloc.errors import InvalidArgumentError, KernelReport, UsageError
from tryalloc.include import gfp as G
from tryalloc.kernel.snapshot import changes, snapshot
from tryalloc.mm import memcontrol, page_alloc
from tryalloc.mm.debug import check_invariants
from tryalloc.mm.page import Page
from tryalloc.mm.scenarios import small_machine

PAGES = 64
MAX_ORDER = 3
orders = st.one_of(st.integers(-1, MAX_ORDER + 1), st.sampled_from([None, "1", 1.5, True]))
gfps = st.one_of(st.sampled_from([G.GFP_KERNEL, G.GFP_ATOMIC, G.GFP_KERNEL_ACCOUNT, G.GFP_NOWAIT,
                                  G.GFP_KERNEL | G.__GFP_COMP, G.GFP_ATOMIC | G.__GFP_ACCOUNT, G.GFP_NOWAIT |
                                  G.__GFP_NOWARN]),
                 st.sampled_from([-1, 1 << 30, None, "GFP_KERNEL"]), st.integers(0, G.__GFP_BITS_MASK))
contexts = st.sampled_from(["task", "task", "softirq", "hardirq", "nmi"])
cpus = st.sampled_from([0, 1])
# module-level names: inside a class body Python would mangle the double underscores
FREE_PAGES = page_alloc.__free_pages
FREE_PAGES_NOLOCK = getattr(page_alloc, "free_pages_nolock", None)  # from patch 2
TRY_ALLOC_PAGES = getattr(page_alloc, "try_alloc_pages", None)  # from patch 1
KMEM_CHARGE, KMEM_UNCHARGE = memcontrol.__memcg_kmem_charge_page, memcontrol.__memcg_kmem_uncharge_page


class AllocatorAPI(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.fresh()

    def fresh(self):
        self.k = small_machine(2, PAGES, max_order=MAX_ORDER, memcg=True)
        self.memcg = memcontrol.mem_cgroup_create(self.k, "fuzz")
        memcontrol.task_set_memcg(self.k, 0, self.memcg)
        self.held: list[tuple[Page, int]] = []
        self.freed: list[tuple[Page, int]] = []

    def call(self, fn, *args, cpu=0, context="task"):
        """Call ``fn`` on the machine; returns (True, result) or (False, None) when it was refused."""
        before = snapshot(self.k, state_only=True)
        try:
            return True, self.k.call(fn, *args, cpu=cpu, context=context)
        except UsageError as e:
            changed = changes(self.k, before)
            assert not changed, f"{fn.__name__}{args} in {context} refused ({e}) but changed {changed}"
            return False, None
        except KernelReport:
            self.fresh()  # a report is normal output; what the machine looks like after one is its own business
            return False, None

    def _allocated(self, ok, page, order):
        if ok and page is not None:
            assert isinstance(page, Page) and page.pfn % (1 << order) == 0
            self.held.append((page, order))

    @rule(gfp=gfps, order=orders, cpu=cpus, context=contexts)
    def alloc_pages(self, gfp, order, cpu, context):
        self._allocated(*self.call(page_alloc.alloc_pages, gfp, order, cpu=cpu, context=context), order)

    @rule(nid=st.sampled_from([-1, 0, 1, None]), order=orders, cpu=cpus, context=contexts)
    def try_alloc_pages(self, nid, order, cpu, context):
        if TRY_ALLOC_PAGES is not None:
            self._allocated(*self.call(TRY_ALLOC_PAGES, nid, order, cpu=cpu, context=context), order)

    @rule(data=st.data(), nolock=st.booleans(), cpu=cpus, context=contexts)
    def free(self, data, nolock, cpu, context):
        if not self.held:
            return
        page, order = self.held.pop(data.draw(st.integers(0, len(self.held) - 1)))
        fn = FREE_PAGES_NOLOCK if nolock and FREE_PAGES_NOLOCK else FREE_PAGES
        ok, _ = self.call(fn, page, order, cpu=cpu, context=context)
        if ok:
            self.freed.append((page, order))

    @rule(data=st.data(), delta=st.sampled_from([-1, 1]), context=contexts)
    def free_with_the_wrong_order(self, data, delta, context):
        if not self.held:
            return
        i = data.draw(st.integers(0, len(self.held) - 1))
        page, order = self.held[i]
        ok, _ = self.call(FREE_PAGES, page, order + delta, context=context)
        if ok:  # accepted: the caller's bug now corrupts the books, as it would in the kernel
            self.fresh()

    @rule(data=st.data(), context=contexts)
    def double_free(self, data, context):
        if self.freed:
            page, order = self.freed[data.draw(st.integers(0, len(self.freed) - 1))]
            ok, _ = self.call(FREE_PAGES, page, order, context=context)
            if ok:  # freed again only if it was handed out again meanwhile, to nobody we know of
                self.fresh()

    @rule(pfn=st.sampled_from([-1, 1, PAGES, PAGES + 8, 10**9]), order=orders,
          what=st.sampled_from(["page", "none", "int", "foreign"]))
    def free_a_bad_page(self, pfn, order, what):
        page = {"page": Page(pfn, self.k.mem_map), "none": None, "int": pfn,
                "foreign": Page(0, small_machine(1, 8, max_order=MAX_ORDER).mem_map)}[what]
        ok, _ = self.call(FREE_PAGES, page, order)
        if ok:
            self.fresh()

    @rule(nr=st.one_of(st.integers(-2, 80), st.sampled_from([None, 1.5])), gfp=gfps,
          which=st.sampled_from(["fuzz", "root", "foreign", "none"]), context=contexts)
    def try_charge_memcg(self, nr, gfp, which, context):
        memcg = {"fuzz": self.memcg, "root": memcontrol._state(self.k).root_mem_cgroup, "none": None,
                 "foreign": memcontrol._state(small_machine(1, 8, max_order=3, memcg=True)).root_mem_cgroup}[which]
        ok, ret = self.call(memcontrol.try_charge_memcg, memcg, gfp, nr, context=context)
        if ok and ret == 0 and which == "fuzz":  # give the charge back so the books stay balanced
            self.call(memcontrol.page_counter_uncharge, memcg.memory, nr)

    @rule(data=st.data(), gfp=gfps)
    def charge_and_uncharge_a_held_page(self, data, gfp):
        if not self.held:
            return
        page, order = self.held[data.draw(st.integers(0, len(self.held) - 1))]
        if page.memcg_data:
            self.call(KMEM_UNCHARGE, page, order)
        else:
            self.call(KMEM_CHARGE, page, gfp, order)

    @invariant()
    def books_balance(self):
        check_invariants(self.k)
        memcontrol.memcg_invariants(self.k)


AllocatorAPI.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None,
                                          suppress_health_check=[HealthCheck.too_slow])
TestAllocatorAPI = AllocatorAPI.TestCase


# --- what the fuzzer found --------------------------------------------------------------------------------
def _free_refused_and_nothing_changed(page, order=0):
    k = small_machine(2, PAGES, max_order=MAX_ORDER)
    before = snapshot(k, state_only=True)
    try:
        k.call(FREE_PAGES, page(k), order)
    except InvalidArgumentError as e:
        assert "memory map" in str(e)
    else:
        raise AssertionError("the free was accepted")
    assert not changes(k, before)


def test_freeing_a_page_past_the_end_of_the_memory_map_is_refused():
    """Found by the fuzzer: it raised IndexError from the flags array instead of a documented error."""
    _free_refused_and_nothing_changed(lambda k: Page(PAGES, k.mem_map))


def test_freeing_a_negative_pfn_is_refused_rather_than_wrapping_to_the_last_frame():
    """Found by the fuzzer: pfn -1 indexed the arrays from the end and freed the last frame's state."""
    _free_refused_and_nothing_changed(lambda k: Page(-1, k.mem_map))


def test_freeing_another_machines_page_is_refused():
    _free_refused_and_nothing_changed(lambda k: Page(0, small_machine(1, 8, max_order=MAX_ORDER).mem_map))

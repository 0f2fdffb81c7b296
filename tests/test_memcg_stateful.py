"""A stateful property test of memcg accounting with try_alloc_pages (hypothesis): two CPUs, two
memcgs (one with a small limit), allocations and frees in task context, in interrupts, and in NMIs
that arrive while the CPU's task is inside ``stock_lock``.

After every step: memcg's books balance (:func:`~tryalloc.mm.memcontrol.memcg_invariants`: no
counter negative, usage = charged pages + stocks), no stock holds more than ``MEMCG_CHARGE_BATCH``,
and every page try_alloc_pages handed out in a memcg's context is charged to it (I4's charge side).
At the end everything is freed and drained: every charge came back exactly once.
"""
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from machines import small_machine

from tryalloc import Scripted, When
from tryalloc.include import gfp as G
from tryalloc.mm import memcontrol as M
from tryalloc.mm import page_alloc as A
from tryalloc.mm.debug import check_invariants

CONTEXTS = ("task", "hardirq", "nmi", "nmi inside stock_lock")
free_ordinary = A.__free_pages  # a name with two underscores would be mangled inside the class


class MemcgAccounting(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.k = small_machine(nr_cpus=2, memcg=True)
        self.memcgs = [M.mem_cgroup_create(self.k, "a", max=6), M.mem_cgroup_create(self.k, "b")]
        for cpu, memcg in enumerate(self.memcgs):
            M.task_set_memcg(self.k, cpu, memcg)
        self.pages = []  # (page, memcg name it must be charged to)
        self.charges = self.uncharges = 0

    def _in(self, cpu, context, fn):
        """Run ``fn`` on ``cpu`` in ``context``; for an NMI inside stock_lock, the task first charges a
        kmem page of its own memcg (and frees it) and the NMI lands in that charge's consume_stock."""
        k = self.k
        if context != "nmi inside stock_lock":
            return k.call(fn, cpu=cpu, context=context)
        got = []

        def task():
            page = A.alloc_pages(G.GFP_KERNEL_ACCOUNT, 0)
            if page is not None:
                free_ordinary(page, 0)

        k.spawn(cpu, task)
        k.on_interrupt(cpu, "nmi", lambda: got.append(fn()))
        k.run(Scripted(When(cpu=cpu, op="acquired", obj=M.STOCK_LOCK, inject="nmi")))
        assert len(got) == 1
        return got[0]

    @rule(cpu=st.integers(0, 1), which=st.integers(0, 1), context=st.sampled_from(CONTEXTS))
    def allocate(self, cpu, which, context):
        memcg = self.memcgs[which]

        def alloc():
            old = M.set_active_memcg(memcg)
            page = A.try_alloc_pages(A.NUMA_NO_NODE, 0)
            M.set_active_memcg(old)
            return page

        page = self._in(cpu, context, alloc)
        if page is not None:
            assert page.memcg_data & M.MEMCG_DATA_KMEM, "a try_alloc_pages page in a memcg's context is charged"
            assert self.k.memcg.charged[page.pfn][3] is memcg
            self.pages.append(page)
            self.charges += 1

    @precondition(lambda self: self.pages)
    @rule(data=st.data(), cpu=st.integers(0, 1), context=st.sampled_from(CONTEXTS),
          nolock=st.booleans())
    def free(self, data, cpu, context, nolock):
        page = self.pages.pop(data.draw(st.integers(0, len(self.pages) - 1)))
        if context != "task" and not nolock:
            context = "task"  # an ordinary free is not for NMI
        self._in(cpu, context, lambda: (A.free_pages_nolock if nolock else free_ordinary)(page, 0))
        assert page.memcg_data == 0
        self.uncharges += 1

    @invariant()
    def books_balance(self):
        M.memcg_invariants(self.k)
        for row in M.memcg_stock_view(self.k):
            assert 0 <= row["nr_pages"] <= M.MEMCG_CHARGE_BATCH
        for memcg in self.memcgs:
            assert memcg.memory.usage >= 0 and memcg.kmem == len([p for p in self.pages
                                                                   if self.k.memcg.charged[p.pfn][3] is memcg])

    def teardown(self):
        for page in self.pages:
            self.k.call(A.free_pages_nolock, page, 0)
            self.uncharges += 1
        for cpu in (0, 1):
            self.k.call(M.drain_local_stock, cpu=cpu)
        assert self.charges == self.uncharges and not self.k.memcg.charged
        for memcg in self.memcgs:
            assert memcg.memory.usage == 0 and memcg.kmem == 0 and memcg.objcg.refcnt == 1
        M.memcg_invariants(self.k)
        check_invariants(self.k)


MemcgAccounting.TestCase.settings = settings(max_examples=60, stateful_step_count=20, deadline=None,
                                             suppress_health_check=[HealthCheck.too_slow])
test_memcg_accounting = pytest.mark.rule("I4")(MemcgAccounting.TestCase)

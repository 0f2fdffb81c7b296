"""Patch 5: memcg charging in try_alloc_pages() (spec 6, R5.1-R5.6, I4).

Before the patch try_alloc_pages charges nothing, so every test marked with a rule fails (strict
xfail) at level 4: the page comes back untagged, or a page where the limit says NULL.
"""
import pytest
from machines import no_watermarks, small_machine, small_options

from tryalloc import Scripted, When, explore
from tryalloc.include import gfp as G
from tryalloc.mm import memcontrol as M
from tryalloc.mm import page as P
from tryalloc.mm import page_alloc as A
from tryalloc.mm.debug import PFN_ALLOCATED, check_invariants, pfn_states


def machine(nr_cpus=1, **kw):
    return small_machine(nr_cpus=nr_cpus, memcg=True, **kw)


def charged_to(k, page):
    """The memcg a page's charge went to (its objcg's), or None."""
    if page is None or not page.memcg_data & M.MEMCG_DATA_KMEM:
        return None
    return k.memcg.objcgs[page.memcg_data & ~M.MEMCG_DATA_FLAGS_MASK].memcg.name


def in_memcg(memcg, fn):
    """``fn()`` with ``memcg`` as this context's active memcg (what a BPF map does before allocating)."""
    def body():
        old = M.set_active_memcg(memcg)
        try:
            return fn()
        finally:
            M.set_active_memcg(old)
    return body


def allocated(k):
    """The pages handed out and not yet freed (wherever the free ones sit: buddy, pcp or llist)."""
    return sum(s == PFN_ALLOCATED for s in pfn_states(k))


@pytest.mark.rule("R5.1")
@pytest.mark.rule("R5.2")
def test_the_memcg_is_chosen_by_context():
    k = machine()
    a, b, c = (M.mem_cgroup_create(k, n) for n in "abc")
    M.task_set_memcg(k, 0, a)
    alloc = lambda: A.try_alloc_pages(A.NUMA_NO_NODE, 0)  # noqa: E731
    assert charged_to(k, k.call(alloc)) == "a"  # task context: the task's own memcg
    assert charged_to(k, k.call(in_memcg(b, alloc))) == "b"  # task context: the active memcg wins
    assert charged_to(k, k.call(in_memcg(c, alloc), context="hardirq")) == "c"  # int_active_memcg
    for context in ("softirq", "hardirq", "nmi"):  # outside task context, nothing set: no charge
        page = k.call(alloc, context=context)
        assert page is not None and charged_to(k, page) is None and page.memcg_data == 0
    assert (a.memory.usage, b.memory.usage, c.memory.usage) == (1, 1, 1)
    check_invariants(k)
    M.memcg_invariants(k)


@pytest.mark.rule("R5.3")
def test_the_charge_uses_the_non_spinning_mask():
    """Exactly one page charged (no batch, R4.5), and from an NMI inside stock_lock the trylock
    fails and the counter is charged directly (R4.3), with no corruption."""
    k = machine()
    a, b = M.mem_cgroup_create(k, "a"), M.mem_cgroup_create(k, "b")
    M.task_set_memcg(k, 0, a)
    got = []
    k.spawn(0, lambda: A.alloc_pages(G.GFP_KERNEL_ACCOUNT, 0))  # charging a page of a
    k.on_interrupt(0, "nmi", lambda: got.append(in_memcg(b, lambda: A.try_alloc_pages(0, 0))()))
    k.run(Scripted(When(cpu=0, op="acquired", obj=M.STOCK_LOCK, inject="nmi")))
    assert charged_to(k, got[0]) == "b" and b.memory.usage == 1
    assert [e[3] for e in k.events if e[4] == M.STOCK_LOCK and e[2] == "task>nmi"] == [
        "local_trylock_irqsave", "trylock-failed"]
    assert M.memcg_stock_view(k)[0]["cached"] == "a"  # the task's refill, after the NMI
    M.memcg_invariants(k)


@pytest.mark.rule("R5.4")
@pytest.mark.rule("R5.5")
def test_a_failed_charge_frees_the_page_with_free_pages_nolock_and_returns_null(monkeypatch):
    k = machine()
    a = M.mem_cgroup_create(k, "a", max=2)
    M.task_set_memcg(k, 0, a)
    pages = [k.call(A.try_alloc_pages, 0, 0) for _ in range(2)]
    assert [charged_to(k, p) for p in pages] == ["a", "a"]
    seen = []
    charge, nolock = M.__memcg_kmem_charge_page, A.free_pages_nolock
    monkeypatch.setattr(M, "__memcg_kmem_charge_page",
                        lambda page, gfp, order: seen.append(("charge", P.page_ref_count(page)))
                        or charge(page, gfp, order))
    monkeypatch.setattr(A, "free_pages_nolock",
                        lambda page, order: seen.append(("free_pages_nolock", P.page_ref_count(page)))
                        or nolock(page, order))
    out = allocated(k)
    assert k.call(A.try_alloc_pages, 0, 0) is None
    assert seen == [("charge", 1), ("free_pages_nolock", 1)]  # one reference when charged and freed
    assert allocated(k) == out == 2 and a.memory.usage == 2 and a.memory_events["max"] == 0
    check_invariants(k)
    M.memcg_invariants(k)


@pytest.mark.rule("R5.6")
@pytest.mark.parametrize("free", ["free_pages_nolock", "__free_pages"])
def test_a_charged_page_is_uncharged_through_the_stock_by_any_free(free):
    k = machine()
    a = M.mem_cgroup_create(k, "a")
    M.task_set_memcg(k, 0, a)
    page = k.call(A.try_alloc_pages, 0, 0)
    assert charged_to(k, page) == "a" and a.objcg.refcnt == 2
    k.call(getattr(A, free), page, 0)
    assert page.memcg_data == 0 and a.objcg.refcnt == 1
    assert M.memcg_stock_view(k)[0]["cached"] == "a" and M.memcg_stock_view(k)[0]["nr_pages"] == 1
    assert a.memory.usage == 1  # the stock holds the page's charge until it is drained
    k.call(M.drain_local_stock)
    assert a.memory.usage == 0 and a.kmem == 0
    M.memcg_invariants(k)


@pytest.mark.rule("I4")
def test_every_try_alloc_pages_charge_is_returned_once_at_every_nmi_arrival():
    """A task allocating and freeing pages of memcg a, an NMI doing the same for b, at every point."""
    def setup(k):
        no_watermarks(k)
        a, b = M.mem_cgroup_create(k, "a"), M.mem_cgroup_create(k, "b")
        M.task_set_memcg(k, 0, a)

        def task():
            pages = [A.try_alloc_pages(0, 0) for _ in range(2)]
            assert [charged_to(k, p) for p in pages] == ["a", "a"]
            for p in pages:
                A.free_pages_nolock(p, 0)

        def nmi():
            page = in_memcg(b, lambda: A.try_alloc_pages(0, 0))()
            if page is not None:
                assert charged_to(k, page) == "b"
                A.free_pages_nolock(page, 0)

        k.spawn(0, task)
        k.on_interrupt(0, "nmi", nmi)

    def check(k, res):
        M.memcg_invariants(k)  # counters >= 0; usage = charged pages + stocks
        assert not k.memcg.charged  # every charge returned
        stocked = {s.cached.name: s.nr_pages for s in k.memcg.memcg_stock if s.cached is not None}
        for memcg in k.memcg.memcgs.values():
            if memcg.name != "root":
                assert memcg.memory.usage == stocked.get(memcg.name, 0) >= 0 and memcg.kmem == 0
        check_invariants(k)

    result = explore(setup, boot=small_options(nr_cpus=1, memcg=True), preemption_bound=0, check=check)
    assert result.ok and result.complete and result.executions > 10

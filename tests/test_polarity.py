"""The memcg half of the flipped polarity of ``gfpflags_allow_spinning()`` (S9.5.1, S9.5.2).

As posted (v6..v9, the model's ``spin_polarity="as_posted"`` at levels 1..6), the helper answered the
wrong way round, and patch 4's two uses of it in memcg inverted with it: every ordinary charge took
exactly the pages it asked for (``batch = nr_pages``), so the per-CPU stock was never refilled and
every charge went to the page counters, which is the regression the kernel test robot measured
(202503101254.cfd454df-lkp@intel.com); and ``consume_stock`` for a charge made with the
``try_alloc_pages`` mask fell back to the blocking lock when its trylock failed.  The memcg parts
exist from patch 4 on, so the S9.5.2 tests here also carry ``levels(since="4")``.  The stack depot's
part of S9.5.2 is tested in ``test_after_v6.py``.
"""
import math

import pytest

from tryalloc import Kernel, Scripted, When
from tryalloc.book.memcg_scenarios import counting_calls
from tryalloc.errors import PerCpuCorruptionError
from tryalloc.include.gfp import (
    __GFP_ACCOUNT,
    __GFP_NOMEMALLOC,
    __GFP_NOWARN,
    __GFP_ZERO,
    GFP_ATOMIC,
    GFP_KERNEL,
    GFP_NOWAIT,
)
from tryalloc.mm import memcontrol as M
from tryalloc.mm import page as _memmap  # noqa: F401  (its initcall gives every Kernel a mem_map)

#: the mask try_alloc_pages charges with from patch 5: no reclaim bit, so it may not spin
NOSPIN = __GFP_NOWARN | __GFP_ZERO | __GFP_NOMEMALLOC | __GFP_ACCOUNT
ORDINARY = pytest.mark.parametrize("gfp", [GFP_KERNEL, GFP_NOWAIT, GFP_ATOMIC],
                                   ids=["GFP_KERNEL", "GFP_NOWAIT", "GFP_ATOMIC"])
#: one-page charges per run: a few stock batches' worth
N = 3 * M.MEMCG_CHARGE_BATCH


def machine(**kw):
    return Kernel(**{"nr_cpus": 1, "pages_per_node": 512, "spin_polarity": "as_posted", **kw})


def stock(k):
    row = M.memcg_stock_view(k)[0]
    return row["cached"], row["nr_pages"]


def charge_pages_one_by_one(k, memcg, gfp, n=N):
    """``n`` one-page charges of ``memcg`` with ``gfp``: the pages asked of page_counter_try_charge
    by each of its calls, and the stock after each charge."""
    stocks = []
    with counting_calls(M, "page_counter_try_charge") as calls:
        for _ in range(n):
            assert k.call(M.try_charge_memcg, memcg, gfp, 1) == 0
            stocks.append(stock(k))
    return [nr for _, nr in calls], stocks


@pytest.mark.rule("S9.5.2")
@pytest.mark.levels(since="4")
@ORDINARY
def test_as_posted_every_ordinary_charge_goes_to_the_page_counter_and_the_stock_stays_empty(gfp):
    """S9.5.2: with the as-posted helper an ordinary charge counts as unable to spin, so it sets
    ``batch = nr_pages``: each of the one-page charges calls page_counter_try_charge for one page
    and leaves nothing to refill the stock with."""
    k = machine()
    a = M.mem_cgroup_create(k, "a")
    asked, stocks = charge_pages_one_by_one(k, a, gfp)
    assert asked == [1] * N
    assert stocks == [(None, 0)] * N
    assert a.memory.usage == N and k.memcg.root_mem_cgroup.memory.usage == N


@pytest.mark.rule("S9.5.2")
@pytest.mark.levels(since="4")
def test_as_posted_a_try_alloc_pages_charge_does_not_give_up_on_a_held_stock_lock():
    """S9.5.2: with the as-posted helper the try_alloc_pages mask counts as able to spin, so an NMI's
    ``consume_stock`` that finds this CPU's stock_lock held falls back to ``local_lock_irqsave``
    instead of giving up.  On !PREEMPT_RT that lock does not wait for anything: the NMI walks into
    the section the task it interrupted is in (the per-CPU corruption patch 4 exists to prevent)."""
    k = machine(detectors={"percpu": "warn", "lockdep": "off"})
    a = M.mem_cgroup_create(k, "a")
    got = []
    k.spawn(0, M.drain_local_stock)
    k.on_interrupt(0, "nmi", lambda: got.append(M.consume_stock(a, 1, NOSPIN)))
    k.run(Scripted(When(cpu=0, op="acquired", obj=M.STOCK_LOCK, inject="nmi")))
    ops = [e[3] for e in k.events if e[4] == M.STOCK_LOCK and e[2].endswith("nmi")]
    assert ops[:3] == ["local_trylock_irqsave", "trylock-failed", "local_lock_irqsave"]
    assert [type(r) for r in k.reports] == [PerCpuCorruptionError]
    assert got == [False]  # the stock was empty; what matters is how the NMI got in


@pytest.mark.rule("S9.5.1")
def test_fixed_ordinary_charges_refill_the_stock_and_a_try_alloc_pages_charge_takes_exactly_nr():
    """S9.5.1 on the charge path: with the fixed helper (whatever the switch says, from 6.15) an
    ordinary charge may spin, so it charges a whole batch and stocks the surplus: the one-page
    charges call page_counter_try_charge once per MEMCG_CHARGE_BATCH; a charge with the
    try_alloc_pages mask may not, so it charges exactly one page and leaves the stock alone."""
    k = machine()
    a, b = M.mem_cgroup_create(k, "a"), M.mem_cgroup_create(k, "b")
    asked, stocks = charge_pages_one_by_one(k, a, GFP_KERNEL)
    assert asked == [M.MEMCG_CHARGE_BATCH] * math.ceil(N / M.MEMCG_CHARGE_BATCH)
    assert stocks[0] == ("a", M.MEMCG_CHARGE_BATCH - 1)
    asked, stocks = charge_pages_one_by_one(k, b, NOSPIN, n=1)
    assert asked == [1] and stocks == [("a", 0)]
    assert b.memory.usage == 1

"""The book's scenarios and pictures for patches 3-5 (tryalloc.book.memcg_scenarios, memcg_figures),
run on the generated levels before and after each patch."""
import pytest

from tryalloc import series
from tryalloc.book import memcg_figures as F
from tryalloc.book import memcg_scenarios as S
from tryalloc.book.injections import search_injections
from tryalloc.book.style import as_svg
from tryalloc.errors import InvalidArgumentError

# a generated level has its markers stripped, so series.load gives that level whatever is asked for
pytestmark = pytest.mark.skipif("+++ b/tryalloc/mm/memcontrol.py" not in series.patch_diff("3", "4"),
                                reason="a generated level carries no level markers")


def test_the_nmi_walks_into_a_local_lock_at_level_2_and_its_trylock_fails_at_level_3():
    cells = {}
    for level in ("2", "3"):
        L = series.load(level)
        for rt in (False, True):
            found, row = search_injections(L.explore, S.local_lock_nmi_build(L, rt), S.local_lock_label)
            assert found.complete
            cells[level, rt] = [c.outcome for c in row]
    assert cells["2", False] == ["completes", "completes", "per-CPU corruption"]
    assert cells["3", False] == ["completes", "completes", "trylock fails"]
    assert set(cells["2", True]) == {"InvalidContextError"}  # RT: a sleeping lock in NMI
    assert set(cells["3", True]) == {"trylock fails"}  # RT: the trylock fails in NMI wherever it lands


@pytest.mark.parametrize("where", ["consume_stock", "refill_stock"])
def test_an_nmi_charge_inside_the_stock_corrupts_at_level_3_and_goes_direct_at_level_4(where):
    before = S.nmi_charge_inside_stock(series.load("3"), where)
    after = S.nmi_charge_inside_stock(series.load("4"), where)
    assert before["outcome"] == "BUG: per-CPU data corruption" and "nmi_ret" not in before
    assert after["outcome"] == "completes" and after["nmi_ret"] == 0
    assert after["stock_at_nmi"] == after["stock_after_nmi"]  # the NMI left the stock alone
    assert after["usage"]["b"] == 1 and after["stock_end"] == {"cached": "a", "nr_pages": 63, "locked_by": None}


def test_nmi_charge_inside_stock_refuses_an_unknown_place():
    with pytest.raises(InvalidArgumentError, match="where must be"):
        S.nmi_charge_inside_stock(series.load("4"), "drain")


def test_near_limit_run_fails_cleanly_at_level_5_and_never_charges_at_level_4():
    run = S.near_limit_run(series.load("5"), limit=4, pattern="AAAAAFA")
    assert [s["result"] for s in run["steps"]] == ["page"] * 4 + ["NULL", "freed", "page"]
    assert run["failures"] == run["failed_frees"] == 1  # the failed charge's page went back via free_pages_nolock
    assert run["max_usage"] == 4 and run["out_after"] == run["held"] == 4
    assert all(s["usage"] == s["charged"] + s["stock"] for s in run["steps"])
    plain = S.near_limit_run(series.load("4"), limit=4, pattern="AAAAA")
    assert plain["failures"] == 0 and plain["max_usage"] == 0


def test_near_limit_run_refuses_a_bad_pattern():
    with pytest.raises(InvalidArgumentError, match="only A and F"):
        S.near_limit_run(series.load("5"), pattern="AX")


def test_counting_calls_counts_and_restores():
    class Mod:
        @staticmethod
        def f(x):
            return x + 1

    original = Mod.f
    with S.counting_calls(Mod, "f") as calls:
        assert Mod.f(1) == 2 and Mod.f(2) == 3
    assert calls == [(1,), (2,)] and Mod.f is original


def test_the_matrix_rows_grow_with_the_patches():
    assert S.memcg_matrix_rows(series.load("2"), 2) == []
    rows = S.memcg_matrix_rows(series.load("5"), 5)
    cells = {r[0]: r[2:] for r in rows}
    assert cells["`local_trylock_irqsave` in NMI, lock free"] == ["succeeds", "fails", "succeeds"]
    assert cells["`local_trylock_irqsave` in NMI on the holder"] == ["fails"] * 3
    assert cells["`try_alloc_pages` in NMI with `int_active_memcg` set"] == [
        "a page, charged to b", "NULL", "a page, charged to b"]
    assert [r[1] for r in rows] == ["3", "3", "4", "5"]


def test_the_figures_draw_and_refuse_empty_input():
    snap = {"cached": "a", "nr_pages": 63, "locked_by": None}
    fig = F.stock_snapshots({"before": snap, "after": {**snap, "locked_by": "CPU0/task0"}})
    assert len(fig.axes[0].patches) >= 2
    run = S.near_limit_run(series.load("5"), limit=3, pattern="AAAAF")
    fig = F.usage_over_run(run, title="t")
    assert fig.axes[0].get_title() == "t"
    assert "<svg" in as_svg(fig).data
    with pytest.raises(InvalidArgumentError):
        F.stock_snapshots({})
    with pytest.raises(InvalidArgumentError):
        F.usage_over_run({"steps": [], "limit": 1})


def test_charge_cost_counts_every_charge_as_posted_and_one_per_batch_fixed():
    L6 = series.load("6")
    gfp = L6.include.gfp.GFP_KERNEL
    posted = S.charge_cost(L6, gfp, 130, spin_polarity="as_posted")
    fixed = S.charge_cost(L6, gfp, 130)
    levels = len(S.CHARGE_COST_MEMCGS) + 1  # the workload's counter, its parent's and root's
    assert posted["calls"] == list(range(1, 131)) and posted["pages_asked"] == [1] * 130
    assert posted["counters_per_charge"] == levels and posted["stock"] == 0
    assert fixed["calls"][0] == 1 and fixed["calls"][-1] == 3 and fixed["pages_asked"] == [64] * 3
    assert fixed["stock"] == 3 * 64 - 130 and fixed["usage"] == posted["usage"] + fixed["stock"]
    assert fixed["counters_per_charge"] == 3 * levels / 130


def test_charge_cost_refuses_more_charges_than_the_machine_has_pages():
    with pytest.raises(InvalidArgumentError, match="do not fit"):
        S.charge_cost(series.load("6"), series.load("6").include.gfp.GFP_KERNEL, 600, pages_per_node=64,
                      max_order=5)


def test_the_charge_cost_figure_draws_one_line_and_bar_per_run_and_refuses_none():
    L6 = series.load("6")
    runs = {"as posted": S.charge_cost(L6, L6.include.gfp.GFP_KERNEL, 70, spin_polarity="as_posted"),
            "fixed": S.charge_cost(L6, L6.include.gfp.GFP_KERNEL, 70)}
    fig = F.charge_cost_figure(runs, title="t")
    total, per = fig.axes
    assert [line.get_label() for line in total.get_lines()] == ["as posted", "fixed"]
    assert [round(bar.get_height(), 4) for bar in per.patches] == [3.0, round(3 * 2 / 70, 4)]
    assert "<svg" in as_svg(fig).data
    with pytest.raises(InvalidArgumentError):
        F.charge_cost_figure({})


def test_accounted_steps_charge_a_batch_per_cpu_and_uncharge_into_the_freeing_cpus_stock():
    L = series.load("0")
    batch = L.mm.memcontrol.MEMCG_CHARGE_BATCH
    one = S.accounted_steps(L, [("alloc", 0, 0)])
    assert one == {"usage": batch, "stock": [batch - 1, 0], "cached": ["app", None]}
    assert S.accounted_steps(L, [("alloc", 0, 0), ("alloc", 1, 0)])["stock"] == [batch - 1] * 2
    cross = S.accounted_steps(L, [("alloc", 0, 0), ("free", 1, 0)])
    assert cross["stock"] == [batch - 1, 1] and cross["usage"] == batch
    assert S.accounted_steps(L, [("alloc", 0, 7)]) == {"usage": 128, "stock": [0, 0], "cached": [None, None]}
    with pytest.raises(InvalidArgumentError, match="accounted_steps"):
        S.accounted_steps(L, [("allocate", 0, 0)])

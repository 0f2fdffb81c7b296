"""Randomized stress: 10**4 allocations and frees on 4 CPUs with interrupts at seeded random points
lose no page, hand none out twice, and leave memcg's books balanced (10**6 in benchmarks/bench_stress.py)."""
import pytest

from tryalloc.errors import InvariantError
from tryalloc.mm import page_alloc
from tryalloc.mm.scenarios import small_machine
from tryalloc.mm.stress import Ledger, check_after, stress


@pytest.mark.parametrize("seed", [0])
def test_ten_thousand_operations_on_four_cpus_with_interrupts_keep_every_invariant(seed):
    result = stress(10_000, nr_cpus=4, seed=seed)  # raises on a broken invariant
    assert result.ops >= 10_000
    assert result.injections >= 4 * 25  # every CPU's interrupt budget was spent somewhere along the way


def test_the_same_seed_gives_the_same_run():
    assert stress(2_000, seed=5).injections == stress(2_000, seed=5).injections


def test_the_ledger_catches_a_page_handed_out_twice():
    k = small_machine(1, 64)
    page = k.call(page_alloc.alloc_pages, 0, 0)
    ledger = Ledger(64)
    ledger.taken(page, 0)
    with pytest.raises(InvariantError, match="already held"):
        ledger.taken(page, 0)


def test_the_final_check_catches_a_page_never_given_back():
    k = small_machine(1, 64, memcg=True)
    ledger = Ledger(64)
    ledger.taken(k.call(page_alloc.alloc_pages, 0, 0), 0)
    with pytest.raises(InvariantError, match="still marked handed out"):
        check_after(k, ledger)

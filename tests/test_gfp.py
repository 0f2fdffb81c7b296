"""GFP masks: kernel bit values, composite masks, predicates, %pGg printing."""
import pytest

from tryalloc.errors import InvalidArgumentError
from tryalloc.include import gfp as G
from tryalloc.mm.mmzone import MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE


def test_bit_values_match_v6_13():
    assert (G.__GFP_ZERO, G.__GFP_DIRECT_RECLAIM, G.__GFP_KSWAPD_RECLAIM) == (0x100, 0x400, 0x800)
    assert (G.__GFP_NOWARN, G.__GFP_COMP, G.__GFP_ACCOUNT) == (0x2000, 0x40000, 0x400000)
    assert G.GFP_KERNEL == 0xCC0 and G.GFP_ATOMIC == 0x820 and G.GFP_NOWAIT == 0x800


def test_allow_blocking_only_with_direct_reclaim():
    assert G.gfpflags_allow_blocking(G.GFP_KERNEL)
    assert not G.gfpflags_allow_blocking(G.GFP_ATOMIC)
    assert not G.gfpflags_allow_blocking(G.GFP_NOWAIT)


def test_migratetype_from_mobility_bits():
    assert G.gfp_migratetype(G.GFP_KERNEL) == MIGRATE_UNMOVABLE
    assert G.gfp_migratetype(G.GFP_HIGHUSER_MOVABLE) == MIGRATE_MOVABLE
    assert G.gfp_migratetype(G.GFP_KERNEL | G.__GFP_RECLAIMABLE) == MIGRATE_RECLAIMABLE
    with pytest.raises(InvalidArgumentError, match="both"):
        G.gfp_migratetype(G.__GFP_MOVABLE | G.__GFP_RECLAIMABLE)


def test_format_like_pGg():
    assert G.format_gfp(G.GFP_KERNEL | G.__GFP_ZERO) == "GFP_KERNEL|__GFP_ZERO"
    assert G.format_gfp(G.GFP_KERNEL_ACCOUNT) == "GFP_KERNEL_ACCOUNT"
    assert G.format_gfp(G.GFP_ATOMIC | G.__GFP_NOWARN) == "GFP_ATOMIC|__GFP_NOWARN"
    assert G.format_gfp(G.__GFP_NOWARN) == "__GFP_NOWARN"
    assert G.format_gfp(G.GFP_NOWAIT | 0x200) == "GFP_NOWAIT|0x200"
    assert G.format_gfp(0) == "none"


@pytest.mark.levels(until="1")
def test_no_allow_spinning_before_patch_1():
    assert not hasattr(G, "gfpflags_allow_spinning")


@pytest.mark.parametrize("bad", [-1, 1 << 30, "GFP_KERNEL", True])
def test_check_gfp_rejects(bad):
    with pytest.raises(InvalidArgumentError, match="gfp mask"):
        G.check_gfp(bad)

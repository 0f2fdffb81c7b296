"""GFP flags: how a caller asks for memory (``include/linux/gfp_types.h``, ``include/linux/gfp.h``).

The bit values are those of v6.13's ``gfp_types.h`` for a kernel without ``CONFIG_KASAN_HW_TAGS``
(so ``__GFP_SKIP_ZERO``/``__GFP_SKIP_KASAN`` are 0 and ``__GFP_NOLOCKDEP`` takes bit 24).  Bit 9 is
unused in v6.13.  The masks (``GFP_KERNEL`` ...) are built from the bits exactly as the header
builds them.  ``gfpflags_allow_spinning()`` arrives with patch 1 of the series (97769a53f117); as posted
in v6..v9 it tested the reclaim bits the wrong way round, which f90b474a3574 fixed before 6.15.

:func:`format_gfp` prints a mask like the kernel's ``%pGg`` (``lib/vsprintf.c: flags_string`` over
the name table of ``include/trace/events/mmflags.h``): composite masks first, then single bits,
leftover bits in hex.
"""
from __future__ import annotations

from ..errors import InvalidArgumentError
from ..mm.mmzone import MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE
from ..series.mutants import fixed

__GFP_DMA = 0x01
__GFP_HIGHMEM = 0x02
__GFP_DMA32 = 0x04
__GFP_MOVABLE = 0x08
__GFP_RECLAIMABLE = 0x10
__GFP_HIGH = 0x20
__GFP_IO = 0x40
__GFP_FS = 0x80
__GFP_ZERO = 0x100
__GFP_DIRECT_RECLAIM = 0x400
__GFP_KSWAPD_RECLAIM = 0x800
__GFP_WRITE = 0x1000
__GFP_NOWARN = 0x2000
__GFP_RETRY_MAYFAIL = 0x4000
__GFP_NOFAIL = 0x8000
__GFP_NORETRY = 0x10000
__GFP_MEMALLOC = 0x20000
__GFP_COMP = 0x40000
__GFP_NOMEMALLOC = 0x80000
__GFP_HARDWALL = 0x100000
__GFP_THISNODE = 0x200000
__GFP_ACCOUNT = 0x400000
__GFP_ZEROTAGS = 0x800000
__GFP_NOLOCKDEP = 0x1000000
#: Bits a gfp mask may carry (``__GFP_BITS_MASK``); anything above is a caller's mistake.
__GFP_BITS_MASK = (1 << 25) - 1

__GFP_RECLAIM = __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM
#: The mobility bits; ``gfp_migratetype`` shifts them down to a migratetype.
GFP_MOVABLE_MASK = __GFP_RECLAIMABLE | __GFP_MOVABLE
GFP_MOVABLE_SHIFT = 3
GFP_ZONEMASK = __GFP_DMA | __GFP_HIGHMEM | __GFP_DMA32 | __GFP_MOVABLE

GFP_ATOMIC = __GFP_HIGH | __GFP_KSWAPD_RECLAIM
GFP_KERNEL = __GFP_RECLAIM | __GFP_IO | __GFP_FS
GFP_KERNEL_ACCOUNT = GFP_KERNEL | __GFP_ACCOUNT
GFP_NOWAIT = __GFP_KSWAPD_RECLAIM
GFP_NOIO = __GFP_RECLAIM
GFP_NOFS = __GFP_RECLAIM | __GFP_IO
GFP_USER = __GFP_RECLAIM | __GFP_IO | __GFP_FS | __GFP_HARDWALL
GFP_DMA = __GFP_DMA
GFP_DMA32 = __GFP_DMA32
GFP_HIGHUSER = GFP_USER | __GFP_HIGHMEM
GFP_HIGHUSER_MOVABLE = GFP_HIGHUSER | __GFP_MOVABLE
GFP_TRANSHUGE_LIGHT = (GFP_HIGHUSER_MOVABLE | __GFP_COMP | __GFP_NOMEMALLOC | __GFP_NOWARN) & ~__GFP_RECLAIM
GFP_TRANSHUGE = GFP_TRANSHUGE_LIGHT | __GFP_DIRECT_RECLAIM

#: ``%pGg``'s name table, in the kernel's order: composite masks before the bits they contain.
_GFP_NAMES = (
    ("GFP_TRANSHUGE", GFP_TRANSHUGE), ("GFP_TRANSHUGE_LIGHT", GFP_TRANSHUGE_LIGHT),
    ("GFP_HIGHUSER_MOVABLE", GFP_HIGHUSER_MOVABLE), ("GFP_HIGHUSER", GFP_HIGHUSER), ("GFP_USER", GFP_USER),
    ("GFP_KERNEL_ACCOUNT", GFP_KERNEL_ACCOUNT), ("GFP_KERNEL", GFP_KERNEL), ("GFP_NOFS", GFP_NOFS),
    ("GFP_ATOMIC", GFP_ATOMIC), ("GFP_NOIO", GFP_NOIO), ("GFP_NOWAIT", GFP_NOWAIT), ("GFP_DMA", GFP_DMA),
    ("__GFP_HIGHMEM", __GFP_HIGHMEM), ("GFP_DMA32", GFP_DMA32), ("__GFP_HIGH", __GFP_HIGH),
    ("__GFP_IO", __GFP_IO), ("__GFP_FS", __GFP_FS), ("__GFP_NOWARN", __GFP_NOWARN),
    ("__GFP_RETRY_MAYFAIL", __GFP_RETRY_MAYFAIL), ("__GFP_NOFAIL", __GFP_NOFAIL),
    ("__GFP_NORETRY", __GFP_NORETRY), ("__GFP_COMP", __GFP_COMP), ("__GFP_ZERO", __GFP_ZERO),
    ("__GFP_NOMEMALLOC", __GFP_NOMEMALLOC), ("__GFP_MEMALLOC", __GFP_MEMALLOC),
    ("__GFP_HARDWALL", __GFP_HARDWALL), ("__GFP_THISNODE", __GFP_THISNODE),
    ("__GFP_RECLAIMABLE", __GFP_RECLAIMABLE), ("__GFP_MOVABLE", __GFP_MOVABLE),
    ("__GFP_ACCOUNT", __GFP_ACCOUNT), ("__GFP_WRITE", __GFP_WRITE), ("__GFP_RECLAIM", __GFP_RECLAIM),
    ("__GFP_DIRECT_RECLAIM", __GFP_DIRECT_RECLAIM), ("__GFP_KSWAPD_RECLAIM", __GFP_KSWAPD_RECLAIM),
    ("__GFP_ZEROTAGS", __GFP_ZEROTAGS), ("__GFP_NOLOCKDEP", __GFP_NOLOCKDEP),
)


def check_gfp(gfp: int) -> int:
    """Return ``gfp`` if it is a valid mask, else raise :class:`InvalidArgumentError` naming it.

    The kernel cannot be handed a non-integer mask; a bit above ``__GFP_BITS_MASK`` trips a
    ``WARN_ON_ONCE`` there and is a caller's mistake here.
    """
    if isinstance(gfp, bool) or not isinstance(gfp, int) or gfp < 0 or gfp & ~__GFP_BITS_MASK:
        raise InvalidArgumentError(f"gfp mask {gfp!r} is not a combination of __GFP_* bits")
    return gfp


def gfpflags_allow_blocking(gfp: int) -> bool:
    """May an allocation with ``gfp`` sleep?  True iff it carries ``__GFP_DIRECT_RECLAIM``."""
    return bool(gfp & __GFP_DIRECT_RECLAIM)


# @since 1
def gfpflags_allow_spinning(gfp: int) -> bool:
    """May an allocation with ``gfp`` spin on locks?  (patch 1, 97769a53f117; R1.9, S9.5.1)

    True iff the mask carries a reclaim bit (``__GFP_DIRECT_RECLAIM`` or ``__GFP_KSWAPD_RECLAIM``):
    ``GFP_KERNEL``, ``GFP_NOWAIT`` and ``GFP_ATOMIC`` may spin; the mask of ``try_alloc_pages`` and
    page_owner's bare ``__GFP_NOWARN`` may not.  A caller that may not spin only ever trylocks.
    """
    allowed = bool(gfp & __GFP_RECLAIM)
    # @until 6.15
    #~ from ..kernel.sched import running  # the configured polarity lives on the running machine
    #~ if running().kernel.config.spin_polarity == "as_posted":
    #~     return not allowed  # v6..v9 as posted; fixed by f90b474a3574 (S9.5.2)
    # @end
    # @since 6.15
    if not fixed("as-posted-polarity"):  # the inverted test f90b474a3574 fixed, back (series.mutants)
        return not allowed
    # @end
    return allowed
# @end


def gfp_migratetype(gfp: int) -> int:
    """The migratetype a mask asks for: unmovable, movable or reclaimable.

    ``include/linux/gfp.h: gfp_migratetype``.  Asking for movable *and* reclaimable is a
    ``VM_WARN_ON`` in the kernel; here it is an :class:`InvalidArgumentError`.
    """
    if gfp & GFP_MOVABLE_MASK == GFP_MOVABLE_MASK:
        raise InvalidArgumentError(f"gfp mask {format_gfp(gfp)} asks for both __GFP_MOVABLE and __GFP_RECLAIMABLE")
    mt = (gfp & GFP_MOVABLE_MASK) >> GFP_MOVABLE_SHIFT
    assert mt in (MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE)
    return mt


def format_gfp(gfp: int) -> str:
    """Print ``gfp`` like ``%pGg``: ``"GFP_KERNEL|__GFP_ZERO"``; unnamed bits as ``0x...``.

    An empty mask prints ``"none"``, as the tracepoints' ``show_gfp_flags`` does (``%pGg`` would
    print nothing, which reads badly in a model's report).
    """
    if gfp == 0:
        return "none"
    names = []
    for name, mask in _GFP_NAMES:
        if gfp & mask == mask:
            names.append(name)
            gfp &= ~mask
            if not gfp:
                break
    if gfp:
        names.append(hex(gfp))
    return "|".join(names)

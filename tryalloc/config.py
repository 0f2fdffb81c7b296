"""The machine's configuration, as data, so one scenario runs under each setting.

``Config`` mirrors the Kconfig switches the series cares about (``CONFIG_PREEMPT_RT``,
``CONFIG_SMP``) plus the model's own switches (which detectors raise).  Unknown keys and values out
of range raise :class:`~tryalloc.errors.ConfigError` naming the offending key.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType

from .errors import ConfigError
from .series.rules import LEVELS, RELEASES

#: How a detector reacts: raise its report, record it in ``Kernel.reports`` and go on, or stay quiet.
DETECTOR_MODES = ("raise", "warn", "off")
#: The detectors that can be tuned one by one.  Certain deadlocks always raise: a run cannot go on.
DETECTORS = ("lockdep", "percpu", "invalid_context")
#: ``HPAGE_PMD_ORDER`` on x86-64 (2 MiB), the default pageblock order when ``max_order`` allows it.
HPAGE_PMD_ORDER = 9
#: The two readings of ``gfpflags_allow_spinning()``: as intended, and inverted as v6..v9 posted it (f90b474a3574).
SPIN_POLARITIES = ("fixed", "as_posted")


@dataclass(frozen=True)
class Config:
    """A configured machine.

    nr_cpus
        number of CPUs (``nr_cpu_ids``); 1 with ``smp=False``.
    preempt_rt
        ``CONFIG_PREEMPT_RT``: ``spinlock_t`` and ``local_lock_t`` become sleeping locks.
    smp
        ``CONFIG_SMP``; on a uniprocessor kernel ``spin_trylock`` always succeeds (the lock word is
        compiled away), so an NMI gets a lock its interrupted context holds: a latent hazard of the
        series, closed on the allocation side only in 2026 by 620b46ed6ae1 (S9.11.1).
    detectors
        mode per detector name in :data:`DETECTORS` (``"raise"`` by default).
    nr_nodes, pages_per_node
        NUMA nodes and the pages of the one zone (``ZONE_NORMAL``) each node has; CPUs are spread
        over the nodes in order.  Small zones keep exhaustive searches small; 2**20 pages is 4 GiB.
    max_order
        ``MAX_PAGE_ORDER``: the largest buddy block is ``2**max_order`` pages (10 on x86-64).
    pageblock_order
        pages per pageblock as a power of two; at most ``max_order``.  Left out, it is the kernel's
        ``min(HPAGE_PMD_ORDER, MAX_PAGE_ORDER)`` (``include/linux/pageblock-flags.h``, the THP case;
        https://elixir.bootlin.com/linux/v6.13/source/include/linux/pageblock-flags.h): 9 on x86-64, or
        ``max_order`` when that is smaller, so ``Config(max_order=4)`` needs no second setting.
    thp
        ``CONFIG_TRANSPARENT_HUGEPAGE``: ``pcp_allowed_order`` also admits ``HPAGE_PMD_ORDER``.
    memcg, page_owner, debug_vm
        ``CONFIG_MEMCG`` kmem accounting, page_owner tracking (``page_owner=on``), ``CONFIG_DEBUG_VM``
        checks on the free path.
    debug_objects
        ``CONFIG_DEBUG_OBJECTS_FREE``: every page free walks the debug-objects hash under a spinning
        lock (the v6 gap R2.14); off by default.
    spin_polarity
        ``"fixed"`` (the default): ``gfpflags_allow_spinning()`` is true when the mask has a reclaim
        bit, as its comment and every caller intend.  ``"as_posted"``: the inverted test of v6..v9
        (S9.5.2), which f90b474a3574 corrected before 6.15; it applies at levels 1..6 only (at
        6.15 the same inverted test is the mutant ``as-posted-polarity`` of :mod:`tryalloc.series.mutants`).
    arch_nmi_safe
        The architecture has NMI-safe ``this_cpu`` operations or an NMI-safe ``cmpxchg``
        (``ARCH_HAS_NMI_SAFE_THIS_CPU_OPS`` / ``ARCH_HAVE_NMI_SAFE_CMPXCHG``; x86-64 has both, the
        default).  False stands for an architecture where the kernel sets ``CONFIG_MEMCG_NMI_UNSAFE``:
        from release 6.16 memcg then charges nothing in NMI (S9.13a.2, details unconfirmed).  Level 6.15
        only, like ``release``.
    release
        Which kernel release the last level (6.15) runs as, from
        :data:`~tryalloc.series.rules.RELEASES`: ``"6.15"`` (the default, as merged), ``"6.15-rc1"``
        (before the rc2 fixes), ``"6.16"``, ``"6.18"``, ``"2026"``, or ``"proposed"`` (the 2026
        proposals of S9.14, not known to be merged).  The kernel-shaped code asks
        :func:`tryalloc.series.mutants.fixed` whether the release carries a fix.  The setting exists
        only at level 6.15: the older levels are the series' own code, with no release to choose.
    """

    nr_cpus: int = 2
    preempt_rt: bool = False
    smp: bool = True
    detectors: dict = field(default_factory=dict)
    nr_nodes: int = 1
    pages_per_node: int = 4096
    max_order: int = 10
    pageblock_order: int | None = None
    thp: bool = True
    memcg: bool = True
    page_owner: bool = False
    debug_vm: bool = True
    debug_objects: bool = False
    spin_polarity: str = "fixed"
    # @since 6.15
    arch_nmi_safe: bool = True
    release: str = LEVELS[-1]
    # @end

    def __post_init__(self):
        if isinstance(self.nr_cpus, bool) or not isinstance(self.nr_cpus, int) or self.nr_cpus < 1:
            raise ConfigError(f"nr_cpus must be a positive int, got {self.nr_cpus!r}")
        if not self.smp and self.nr_cpus != 1:
            raise ConfigError(f"a uniprocessor kernel (smp=False) has exactly 1 CPU, got nr_cpus={self.nr_cpus}")
        for name, least in (("nr_nodes", 1), ("pages_per_node", 1), ("max_order", 0), ("pageblock_order", 0)):
            value = getattr(self, name)
            if name == "pageblock_order" and value is None:
                object.__setattr__(self, name, value := min(HPAGE_PMD_ORDER, self.max_order))
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(f"{name} must be an int >= {least}, got {value!r}")
        if self.nr_nodes > self.nr_cpus:
            raise ConfigError(f"nr_nodes={self.nr_nodes} exceeds nr_cpus={self.nr_cpus}: every node needs a CPU")
        if self.pageblock_order > self.max_order:
            raise ConfigError(f"pageblock_order={self.pageblock_order} exceeds max_order={self.max_order}")
        if self.pages_per_node % (1 << self.pageblock_order):
            raise ConfigError(f"pages_per_node={self.pages_per_node} is not a multiple of a pageblock "
                              f"({1 << self.pageblock_order} pages)")
        for name in ("preempt_rt", "smp", "thp", "memcg", "page_owner", "debug_vm", "debug_objects"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.spin_polarity not in SPIN_POLARITIES:
            raise ConfigError(f"spin_polarity must be one of {SPIN_POLARITIES}, got {self.spin_polarity!r}")
        # @since 6.15
        if not isinstance(self.arch_nmi_safe, bool):
            raise ConfigError(f"arch_nmi_safe must be True or False, got {self.arch_nmi_safe!r}")
        if self.release not in RELEASES:
            raise ConfigError(f"unknown release {self.release!r}; known: {', '.join(RELEASES)}")
        # @end
        if not isinstance(self.detectors, (dict, MappingProxyType)):
            raise ConfigError(f"detectors must be a dict of detector name to mode, got {self.detectors!r}")
        # read-only, since configurations are shared between machines
        object.__setattr__(self, "detectors", MappingProxyType(dict(self.detectors)))
        for name, mode in self.detectors.items():
            if name not in DETECTORS:
                raise ConfigError(f"unknown detector {name!r}; known: {', '.join(DETECTORS)}")
            if mode not in DETECTOR_MODES:
                raise ConfigError(f"detector {name!r}: mode must be one of {DETECTOR_MODES}, got {mode!r}")

    def detector(self, name: str) -> str:
        """The mode of detector ``name``."""
        return self.detectors.get(name, "raise")

    def with_(self, **changes) -> Config:
        """A copy with some settings changed (unknown names raise :class:`ConfigError`)."""
        known = _FIELDS
        for key in changes:
            if key not in known:
                raise ConfigError(f"unknown configuration option {key!r}; known: {', '.join(sorted(known))}")
        if "max_order" in changes and "pageblock_order" not in changes \
                and self.pageblock_order == min(HPAGE_PMD_ORDER, self.max_order):
            changes["pageblock_order"] = None  # it followed max_order: it still does
        return replace(self, **changes)

    @classmethod
    def make(cls, **options) -> Config:
        """Build a configuration from keyword options, naming any unknown option in the error."""
        key = repr(sorted(options.items()))
        cached = _MADE.get(key)
        if cached is None:
            for name in options:
                if name not in _FIELDS:
                    raise ConfigError(f"unknown configuration option {name!r}; known: {', '.join(sorted(_FIELDS))}")
            cached = _MADE[key] = cls(**options)
        return cached


_FIELDS = frozenset(f.name for f in fields(Config))
#: Configurations already validated, by their options: machines are built per execution in searches.
_MADE: dict[str, Config] = {}

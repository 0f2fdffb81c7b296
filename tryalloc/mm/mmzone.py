"""Migratetypes and the per-zone structures of ``include/linux/mmzone.h``.

Only the constants live here for now; the zone and pcp structures are in :mod:`tryalloc.mm.page_alloc`'s
companion modules.  Values follow ``enum migratetype`` of v6.13 without ``CONFIG_CMA`` and
``CONFIG_MEMORY_ISOLATION`` gaps: isolate is kept (memory offlining is modelled as data only).
"""
from __future__ import annotations

MIGRATE_UNMOVABLE = 0
MIGRATE_MOVABLE = 1
MIGRATE_RECLAIMABLE = 2
#: The first migratetype without pcp lists (``MIGRATE_PCPTYPES``); highatomic shares its value.
MIGRATE_PCPTYPES = 3
MIGRATE_HIGHATOMIC = MIGRATE_PCPTYPES
MIGRATE_ISOLATE = 4
MIGRATE_TYPES = 5

MIGRATETYPE_NAMES = ("Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate")

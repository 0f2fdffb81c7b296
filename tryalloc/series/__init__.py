"""The series as data, beside the kernel tree it is applied to.

* :mod:`tryalloc.series.levels` -- the package as of any level, generated from one annotated source
  (its functions are re-exported here: ``series.load("1")``, ``series.patch_diff("0", "1")``);
* :mod:`tryalloc.series.rules` -- the project's registry of the specification's rules;
* :mod:`tryalloc.series.history` -- the patches and dated milestones of the series;
* :mod:`tryalloc.series.traceability` -- each rule against the tests and chapters that name it.
"""
from .levels import (
    FINAL,
    LEVEL,
    LevelMarkerError,
    load,
    module_name,
    package_at,
    patch_diff,
    source_at,
    sources,
)
from .rules import LEVELS

__all__ = ["FINAL", "LEVEL", "LEVELS", "LevelMarkerError", "load", "module_name", "package_at", "patch_diff",
           "source_at", "sources"]

"""The level mechanism: one source, the package as of any level, and the diff of each patch."""
import importlib

import pytest

from tryalloc import series
from tryalloc.series import LevelMarkerError, patch_diff, source_at
from tryalloc.series.rules import LEVELS

SOURCE = """\
a = 0
# @since 2
b = 2
# @since 3 @until 6
#~ c = 3
# @end
# @end
# @until 1
#~ old = True
# @end
new = True  # @since 1
"""


def lines(level):
    return source_at(SOURCE, level).split()


def test_blocks_trailing_markers_and_nesting():
    assert lines("0") == ["a", "=", "0", "old", "=", "True"]
    assert lines("1") == ["a", "=", "0", "new", "=", "True"]
    assert lines("3") == ["a", "=", "0", "b", "=", "2", "c", "=", "3", "new", "=", "True"]
    assert lines("6.15") == ["a", "=", "0", "b", "=", "2", "new", "=", "True"]


@pytest.mark.parametrize("text, needle", [
    ("# @since 9\nx = 1\n# @end\n", "unknown level '9'"),
    ("# @since 1\nx = 1\n", "never closed"),
    ("x = 1\n# @end\n", "without an open block"),
    ("# @until 1\nx = 1\n# @end\n", "write it as '#~"),
    ("#~ x = 1  # @since 1\n", "live at 6.15"),
    ("# @since 2 @until 2\nx = 1\n# @end\n", "at no level"),
    ("# @until 1 @until 2\n#~ x\n# @end\n", "not '@until' first"),
])
def test_malformed_markers_are_named(text, needle):
    with pytest.raises(LevelMarkerError, match=needle):
        source_at(text, "0", "demo.py")


def test_every_file_of_the_package_has_valid_markers_at_every_level():
    for rel, text in series.sources().items():
        for level in LEVELS:
            compile(source_at(text, level, rel), rel, "exec")


@pytest.mark.parametrize("level", LEVELS)
def test_every_level_imports_as_its_own_package(level):
    pkg = series.load(level)
    assert pkg.__name__ == series.module_name(level)
    assert importlib.import_module(f"{pkg.__name__}.series").LEVEL == level
    k = pkg.Kernel(nr_cpus=1)
    assert k.call(lambda: 42) == 42


def test_two_levels_side_by_side_keep_separate_state():
    old, new = series.load("0"), series.load("6.15")
    assert old.Kernel is not new.Kernel
    assert old.kernel.sched is not new.kernel.sched


def test_diff_between_a_level_and_itself_is_empty_and_unknown_levels_are_refused():
    assert patch_diff("2", "2") == ""
    with pytest.raises(LevelMarkerError, match="unknown level"):
        patch_diff("0", "7")


@pytest.mark.parametrize("level", ["0", "2"])
def test_a_level_raises_the_same_exception_classes_as_the_package(level):
    """``except tryalloc.DeadlockError`` catches a level's report: the classes are shared, not copied."""
    import tryalloc

    pkg = series.load(level)
    assert pkg.DeadlockError is tryalloc.DeadlockError and pkg.errors is tryalloc.errors
    k = pkg.Kernel(nr_cpus=1, detectors={"lockdep": "off"})
    lock = pkg.kernel.locking.spinlock_t("L")

    def twice():
        pkg.kernel.locking.spin_lock(lock)
        pkg.kernel.locking.spin_lock(lock)

    with pytest.raises(tryalloc.DeadlockError):
        k.call(twice)
    with pytest.raises(tryalloc.UsageError):
        pkg.Kernel(nr_cpus=0)


@pytest.mark.parametrize("level", ["0", "6.15"])
def test_a_loaded_level_reaches_every_kernel_module_as_an_attribute(level):
    """A chapter writes ``L0.mm.debug.check_invariants``: no extra import may be needed."""
    from pathlib import Path

    pkg = series.load(level)
    root = Path(pkg.__file__).parent
    names = [p.relative_to(root).with_suffix("").parts for p in root.rglob("*.py")]
    names = [n[:-1] if n[-1] == "__init__" else n for n in names]
    missing = []
    for parts in names:
        if parts and parts[0] in ("book", "series", "__main__"):
            continue  # the book's helpers and the series tools are used from the package itself
        obj = pkg
        for part in parts:
            obj = getattr(obj, part, None)
            if obj is None:
                missing.append(".".join(parts))
                break
    assert len(names) > 20 and missing == []

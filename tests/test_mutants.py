"""Every historical bug of the registry is killed: the tests it names fail against the bug and pass
without it (the suite would have caught each bug the kernel later fixed).

Each kill runs in a fresh interpreter (``tryalloc.series.mutants.run_tests``), so a mutant cannot leak
into the rest of the suite; all of them together take a few seconds per mutant.
"""
import importlib
from pathlib import Path

import pytest

from tryalloc.errors import ConfigError
from tryalloc.series import LEVEL, mutants
from tryalloc.series.rules import LEVELS

pytestmark = pytest.mark.skipif(LEVEL != LEVELS[-1], reason="the mutants' lines live at the last level")
#: The repository the tests live in (a generated level's package lies elsewhere, without them).
ROOT = Path(__file__).resolve().parents[1]


def _test_function(node_id: str):
    path, name = node_id.split("::")
    module = importlib.import_module(path.removeprefix("tests/").removesuffix(".py"))
    return getattr(module, name)


@pytest.mark.parametrize("m", [m for m in mutants.MUTANTS if m.rule_ids], ids=lambda m: m.name)
def test_each_killing_test_exists_and_checks_a_rule_of_the_fix(m):
    for node_id in m.tests:
        marks = getattr(_test_function(node_id), "pytestmark", [])
        rule_ids = {arg for mark in marks if mark.name == "rule" for arg in mark.args}
        assert rule_ids & set(m.rule_ids), f"{node_id} carries no rule mark of {m.rule_ids}"


def test_without_any_mutant_the_killing_tests_pass():
    run = mutants.run_tests(sorted({t for m in mutants.MUTANTS for t in m.tests}), root=ROOT)
    assert run.passed, run.summary


@pytest.mark.parametrize("m", mutants.MUTANTS, ids=lambda m: m.name)
def test_the_suite_kills_the_mutant(m):
    run = mutants.kill(m, root=ROOT)
    assert run.failed, f"mutant {m.name} survived its tests: {run.summary}"


def test_no_mutant_is_on_unless_asked_and_enabled_turns_one_on_for_a_block():
    assert mutants.active() is None and not mutants.mutant("second-trylock")
    with mutants.enabled("second-trylock") as m:
        assert m.name == "second-trylock" and mutants.mutant("second-trylock")
        assert not mutants.mutant("missing-refcount")
    assert mutants.active() is None


#: Entries after the series that the rule registry has no id for (the finale's any-context arena).
UNRULED_LATER = ("sleepable-arena",)


def test_a_bug_fixed_before_the_series_names_its_killing_tests_without_a_rule():
    for m in mutants.MUTANTS:
        if not m.rule_ids:
            assert m.level == LEVELS[0] or m.name in UNRULED_LATER
            assert all(_test_function(node_id) for node_id in m.tests)


def test_an_unknown_mutant_is_refused_and_nothing_changes():
    with pytest.raises(ConfigError, match="unknown mutant 'secnd-trylock'"):
        with mutants.enabled("secnd-trylock"):
            pass
    with pytest.raises(ConfigError, match="unknown mutant 'secnd-trylock'; known: .*second-trylock"):
        from tryalloc import Kernel
        Kernel().call(mutants.fixed, "secnd-trylock")
    assert mutants.active() is None


def test_a_fix_is_in_the_releases_from_its_own_and_a_mutant_takes_it_out_of_them():
    from tryalloc import Kernel
    from tryalloc.series.rules import RELEASES

    for m in mutants.MUTANTS:
        for release in RELEASES:
            k = Kernel(release=release)
            expect = RELEASES.index(release) >= RELEASES.index(m.level) if m.level in RELEASES else True
            assert k.call(mutants.fixed, m.name) == expect, (m.name, release)
            with mutants.enabled(m.name):
                assert not k.call(mutants.fixed, m.name)


def test_release_6_15_rc1_is_the_second_trylock_mutant_on_that_point():
    from tryalloc import Kernel

    assert not Kernel(release="6.15-rc1").call(mutants.fixed, "second-trylock")
    assert Kernel().call(mutants.fixed, "second-trylock")


def test_a_mutant_without_a_killing_test_or_with_an_unknown_rule_is_refused():
    from tryalloc.series.rules import UnknownRule

    with pytest.raises(ConfigError, match="names no test"):
        mutants.Mutant("x", ("S9.6.1",), "d", ("c",), "6.15", ())
    with pytest.raises(UnknownRule):
        mutants.Mutant("x", ("S9.99.1",), "d", ("c",), "6.15", ("tests/t.py::t",))

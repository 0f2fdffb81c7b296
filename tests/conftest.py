"""Shared helpers for the tests, and the per-level rule manifest.

The suite runs against whichever ``tryalloc`` is first on the path: the package as written (level 6.15),
or a generated level (``make test-levels`` puts each level's copy first).  A test marked
``@pytest.mark.rule(<rule id>)`` checks that rule; at a level where the registry says the rule does not
hold yet (or any more), the test must fail there: it becomes a strict xfail, so a rule that
"holds" before its patch is caught as an XPASS.  At the last level a rule holds in a release
(``Rule.final_release``: 6.15, a later milestone, 6.15-rc1 for the v7-v9 lock API, or "proposed"): its
test configures that release (``Config(release=...)``) and must pass; only a rule that ended before 6.15
is a strict xfail there.
"""
import pytest

from tryalloc import Kernel
from tryalloc.series import FINAL, LEVEL
from tryalloc.series.rules import LEVELS, rule


def pytest_configure(config):
    config.addinivalue_line("markers", "rule(id): the test checks this specification rule")
    config.addinivalue_line("markers", "levels(since=None, until=None): the behaviour tested exists only at "
                            "levels since <= level < until; elsewhere the test must fail")


def pytest_report_header(config):
    return f"tryalloc level under test: {LEVEL}"


def pytest_collection_modifyitems(config, items):
    here = LEVELS.index(LEVEL)
    for item in items:
        for mark in item.iter_markers("rule"):
            r = rule(mark.args[0])
            if not (r.final_release is not None if LEVEL == FINAL else r.holds_at(LEVEL)):
                item.add_marker(pytest.mark.xfail(strict=True, reason=f"{r.id} does not hold at level {LEVEL}"))
        for mark in item.iter_markers("levels"):
            since, until = mark.kwargs.get("since"), mark.kwargs.get("until")
            if (since and here < LEVELS.index(since)) or (until and here >= LEVELS.index(until)):
                item.add_marker(pytest.mark.xfail(strict=True, reason=f"tests levels [{since}, {until})"))


@pytest.fixture
def kernel():
    """A two-CPU !RT SMP machine with every detector raising."""
    return Kernel(nr_cpus=2)

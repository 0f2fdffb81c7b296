"""Mechanics of the rule registry (tryalloc.series.rules).

These tests check the registry itself, not the behaviour its rules describe. On purpose they name no
individual rule id literally: example ids are taken from the registry by computation.
"""

from __future__ import annotations

import dataclasses
import re

import pytest

from tryalloc.series import rules as reg
from tryalloc.series.rules import LATER, LEVELS, RULES, Rule, UnknownRule, by_patch, rule, rules_since

# the pattern is split so no fragment of it reads like a rule id to the coverage tool
ID_PATTERN = re.compile(r"^(R\d+\.\d+|S" r"9\.\d+a?\.\d+|I\d+)$")
ALL_LEVELS = LEVELS + LATER


def _patch_of(r: Rule) -> int | None:
    m = re.match(r"^R(\d+)\.", r.id)
    return int(m.group(1)) if m else None


def test_registry_is_not_empty_and_ids_are_unique() -> None:
    ids = [r.id for r in RULES]
    assert len(ids) == 91
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("r", RULES, ids=lambda r: r.id)
def test_id_format(r: Rule) -> None:
    assert ID_PATTERN.match(r.id), r.id


def test_levels_order() -> None:
    assert LEVELS == ("0", "1", "2", "3", "4", "5", "6", "6.15")
    assert LATER == ("6.16", "6.18", "2026")
    assert not set(LEVELS) & set(LATER)
    assert reg.RELEASES == ("6.15-rc1", LEVELS[-1], *LATER, "proposed")
    assert reg.HISTORY == LEVELS[:-1] + reg.RELEASES
    order = [reg._index(lv) for lv in ALL_LEVELS]
    assert order == sorted(order) == list(range(len(ALL_LEVELS)))


def test_index_rejects_unknown_level() -> None:
    with pytest.raises(ValueError, match="nonsense"):
        reg._index("nonsense")


@pytest.mark.parametrize("r", RULES, ids=lambda r: r.id)
def test_rule_fields_are_consistent(r: Rule) -> None:
    assert r.kind in reg.KINDS
    assert r.section and re.match(r"^\d+(\.\d+[a-z]?)?$", r.section), r.section
    assert isinstance(r.cites, tuple) and r.cites and all(isinstance(c, str) and c for c in r.cites)
    if r.since is None:
        assert r.until is None
        assert r.versions
    else:
        assert r.since in ALL_LEVELS
        if r.until is not None:
            assert r.until in ALL_LEVELS
            assert reg._index(r.until) > reg._index(r.since)


@pytest.mark.parametrize("r", RULES, ids=lambda r: r.id)
def test_statement_shape(r: Rule) -> None:
    # A cheap guard that statements are our own short restatements (the spec itself is not read here):
    # non-empty, a finished sentence, and short enough to be one to three sentences.
    text = r.statement
    assert text.strip() == text and text
    assert text.endswith("."), r.id
    assert len(text) < 600, (r.id, len(text))
    assert "\n" not in text
    assert "```" not in text


def test_patch_rules_start_at_their_patch() -> None:
    """A patch's rules hold from that patch -- or earlier, for a rule that says the patch keeps a
    baseline behaviour (the statement must then say it already holds before)."""
    for r in RULES:
        n = _patch_of(r)
        if n is not None and 1 <= n <= 6:
            assert r.since == str(n) or (reg._index(r.since) < n and "already holds" in r.statement), r.id


def test_invariants_have_invariant_kind() -> None:
    for r in RULES:
        if r.id.startswith("I"):
            assert r.kind == "invariant"
        else:
            assert r.kind != "invariant"


def test_rule_lookup() -> None:
    first, last = RULES[0], RULES[-1]
    assert rule(first.id) is first
    assert rule(last.id) is last


def test_unknown_rule_is_a_keyerror_naming_the_id() -> None:
    missing = RULES[0].id + "99"
    assert missing not in {r.id for r in RULES}
    with pytest.raises(UnknownRule) as exc:
        rule(missing)
    assert isinstance(exc.value, KeyError)
    assert missing in str(exc.value)
    with pytest.raises(KeyError):
        rule("")


def test_rules_since_two_has_patches_one_and_two_but_not_three() -> None:
    got = rules_since("2")
    patches = {_patch_of(r) for r in got}
    assert 1 in patches and 2 in patches
    assert 3 not in patches
    ids = {r.id for r in got}
    # every still-valid rule of patches 1 and 2 is there
    for n in (1, 2):
        for r in by_patch(n):
            assert (r.id in ids) == (r.until is None or reg._index(r.until) > reg._index("2"))
    assert not {r.id for r in by_patch(3)} & ids


def test_rules_since_respects_since_and_until() -> None:
    for level in LEVELS:
        got = rules_since(level)
        i = reg._index(level)
        for r in got:
            assert r.since is not None and reg._index(r.since) <= i
            assert r.until is None or i < reg._index(r.until)
        # registry order is kept
        positions = [RULES.index(r) for r in got]
        assert positions == sorted(positions)


def test_rules_since_skips_rules_that_hold_at_no_level() -> None:
    unplaced = [r for r in RULES if r.since is None]
    assert unplaced
    for level in LEVELS:
        assert not set(unplaced) & set(rules_since(level))


def test_rules_with_until_drop_out() -> None:
    ended = [r for r in RULES if r.until in LEVELS]
    assert ended
    for r in ended:
        assert r not in rules_since(r.until)
        assert r in rules_since(LEVELS[LEVELS.index(r.until) - 1])


def test_rules_since_rejects_unknown_and_later_levels() -> None:
    with pytest.raises(ValueError, match="bogus"):
        rules_since("bogus")
    for later in LATER:
        with pytest.raises(ValueError, match=re.escape(later)):
            rules_since(later)


def test_by_patch() -> None:
    total = 0
    for n in range(1, 7):
        got = by_patch(n)
        assert got
        assert all(_patch_of(r) == n for r in got)
        total += len(got)
    assert total == sum(1 for r in RULES if _patch_of(r) in range(1, 7))


@pytest.mark.parametrize("bad", [0, 7, 8, -1, True])
def test_by_patch_rejects_other_numbers(bad: int) -> None:
    with pytest.raises(ValueError):
        by_patch(bad)


def test_rule_is_frozen() -> None:
    r = RULES[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.statement = "changed."  # type: ignore[misc]


def test_rule_validation() -> None:
    base = RULES[0]
    with pytest.raises(ValueError):
        dataclasses.replace(base, kind="nonsense")
    with pytest.raises(ValueError):
        dataclasses.replace(base, since=LEVELS[3], until=LEVELS[2])
    with pytest.raises(ValueError):
        dataclasses.replace(base, since=None, until=None, versions=None)

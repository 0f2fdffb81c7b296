"""The timelines' geometry is computed from the event log; these tests check the computed spans and what
the drawing marks."""
from __future__ import annotations

import pytest
from matplotlib.figure import Figure

import tryalloc
from tryalloc.book import history_figure, timeline
from tryalloc.errors import InvalidArgumentError
from tryalloc.kernel.locking import (
    spin_lock,
    spin_lock_irqsave,
    spin_trylock_irqsave,
    spin_unlock,
    spin_unlock_irqrestore,
    spinlock_t,
)
from tryalloc.series import history


def _nmi_run(nmi_handler):
    """A task holding zone->lock with an NMI injected inside the section; returns the event log."""
    k = tryalloc.Kernel()
    lock = spinlock_t("zone->lock")

    def task():
        flags = spin_lock_irqsave(lock)
        spin_unlock_irqrestore(lock, flags)

    k.spawn(0, task)
    k.on_interrupt(0, "nmi", lambda: nmi_handler(lock), name="bpf_prog")
    strategy = tryalloc.Scripted(tryalloc.When(cpu=0, op="acquired", obj="zone->lock", inject="nmi"))
    try:
        return k.run(strategy).events
    except tryalloc.DeadlockError as report:
        return report.events


def _spin(lock):
    flags = spin_lock_irqsave(lock)
    spin_unlock_irqrestore(lock, flags)


def _try(lock):
    flags = spin_trylock_irqsave(lock)
    if flags is not None:
        spin_unlock_irqrestore(lock, flags)


def test_synthetic_log_bands_holds_and_release_point():
    events = [
        (0, 0, "task", "start", None),
        (1, 0, "task", "spin_lock", "L"),
        (2, 0, "task", "acquired", "L"),
        (3, 0, "task", "spin_unlock", "L"),  # announced: takes effect when the task runs again
        (4, 0, "task>hardirq", "hardirq-entry", "timer"),
        (5, 0, "task>hardirq", "hardirq-exit", "timer"),
        (6, 0, "task", "exit", None),
    ]
    spans = timeline.timeline_spans(events)
    assert spans.cpus == [0]
    assert spans.bands == [timeline.Band(0, "task", 0, 0, 6), timeline.Band(0, "hardirq", 1, 4, 5, label="timer")]
    assert spans.holds == [timeline.Hold(0, 0, "L", 2, 6)]  # still held while the interrupt ran
    assert spans.stuck == [] and spans.waits == [] and spans.failed == []
    assert spans.last == 6


def test_nmi_deadlock_marks_the_spin_that_never_returns():
    events = _nmi_run(_spin)
    spans = timeline.timeline_spans(events)
    attempt = next(ev for ev in events if ev[2] == "task>nmi" and ev[3] == "spin_lock_irqsave")
    assert spans.stuck == [timeline.Stuck(0, 1, attempt[0], "spin_lock_irqsave", "zone->lock")]
    nmi = [b for b in spans.bands if b.kind == "nmi"]
    assert len(nmi) == 1 and nmi[0].open and nmi[0].depth == 1 and nmi[0].end == spans.last
    task = spans.bands[0]
    assert task.kind == "task" and task.open and task.end == spans.last
    (hold,) = spans.holds
    assert hold.depth == 0 and hold.open and hold.start < nmi[0].start


def test_nmi_trylock_fails_and_everything_closes():
    events = _nmi_run(_try)
    spans = timeline.timeline_spans(events)
    failed = next(ev[0] for ev in events if ev[3] == "trylock-failed")
    assert spans.failed == [timeline.Failed(0, 1, failed, "zone->lock")]
    assert spans.stuck == []
    assert all(not b.open for b in spans.bands)
    nmi = next(b for b in spans.bands if b.kind == "nmi")
    (hold,) = spans.holds
    assert not hold.open and hold.end > nmi.end  # the task released the lock after the NMI left


def _abba():
    k = tryalloc.Kernel(detectors={"lockdep": "off"})
    a, b = spinlock_t("A"), spinlock_t("B")

    def t0():
        spin_lock(a)
        spin_lock(b)
        spin_unlock(b)
        spin_unlock(a)

    def t1():
        spin_lock(b)
        spin_lock(a)
        spin_unlock(a)
        spin_unlock(b)

    k.spawn(0, t0)
    k.spawn(1, t1)
    return k


def test_abba_deadlock_two_lanes_open_waits():
    found = tryalloc.explore(_abba)
    events = found.failures[0].events
    spans = timeline.timeline_spans(events)
    assert spans.cpus == [0, 1]
    assert {(w.cpu, w.lock, w.open) for w in spans.waits} == {(0, "B", True), (1, "A", True)}
    assert {(h.cpu, h.lock, h.open) for h in spans.holds} == {(0, "A", True), (1, "B", True)}
    assert {(s.cpu, s.lock) for s in spans.stuck} == {(0, "B"), (1, "A")}
    assert spans.locks == ["A", "B"]
    fig = timeline.context_timeline(events, title="ABBA")
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["CPU0", "CPU1"]
    assert ax.get_title(loc="left") == "ABBA"


def test_context_timeline_draws_into_a_given_axes():
    fig = Figure()
    ax = fig.add_subplot()
    assert timeline.context_timeline(_nmi_run(_try), ax=ax) is fig
    assert [t.get_text() for t in ax.get_yticklabels()] == ["CPU0"]


def test_bad_event_is_refused():
    with pytest.raises(InvalidArgumentError, match="not an event tuple"):
        timeline.timeline_spans([(0, 0, "task", "start")])


def test_series_timeline_one_label_per_milestone_in_two_panels():
    fig = history_figure.series_timeline()
    top, bottom = fig.axes
    before = [m for m in history.HISTORY if m.when <= history.MERGE.when]
    labels = [[t for t in ax.texts if t.get_gid() != "tick"] for ax in (top, bottom)]
    assert len(labels[0]) == len(before)
    assert len(labels[1]) == len(history.HISTORY) - len(before)
    assert any("v6" in t.get_text() for t in labels[0])


def _markers(fig) -> set[str]:
    return {line.get_marker() for ax in fig.axes for line in ax.lines}


def test_a_deadlock_is_marked_with_the_cross_and_per_cpu_corruption_with_its_own_mark():
    from tryalloc.book.style import ENDING_MARKS
    from tryalloc.kernel.locking import local_lock_irqsave, local_lock_t, local_unlock_irqrestore

    k = tryalloc.Kernel(nr_cpus=1)
    stock = local_lock_t("memcg_stock.stock_lock", 1)

    def section():
        flags = local_lock_irqsave(stock)
        local_unlock_irqrestore(stock, flags)

    k.spawn(0, section)
    k.on_interrupt(0, "nmi", section)
    with pytest.raises(tryalloc.PerCpuCorruptionError) as corrupted:
        k.run(tryalloc.Scripted(tryalloc.When(cpu=0, op="acquired", obj="memcg_stock.stock_lock", inject="nmi")))
    cross, diamond = ENDING_MARKS["deadlock"][0], ENDING_MARKS["per-CPU corruption"][0]
    assert cross != diamond
    drawn = timeline.context_timeline(corrupted.value)
    assert diamond in _markers(drawn) and cross not in _markers(drawn)
    legend = [t.get_text() for t in drawn.legends[0].get_texts()]
    assert "per-CPU corruption" in legend and "deadlock" not in legend
    report = tryalloc.explore(_abba).failures[0]
    drawn = timeline.context_timeline(report)
    assert cross in _markers(drawn) and diamond not in _markers(drawn)
    assert "deadlock" in [t.get_text() for t in drawn.legends[0].get_texts()]
    # a bare event log says only where the run stopped
    assert ENDING_MARKS[None][0] in _markers(timeline.context_timeline(report.events))


def test_the_event_axis_has_integer_ticks():
    from matplotlib.ticker import MaxNLocator

    fig = timeline.context_timeline(_nmi_run(_spin))
    (ax,) = fig.axes
    assert isinstance(ax.xaxis.get_major_locator(), MaxNLocator)
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_a_lock_has_its_colour_whatever_else_the_run_holds_and_in_whatever_order():
    from matplotlib.colors import to_hex

    from tryalloc.book.style import LOCK_COLOURS

    def colours(events):
        fig = timeline.context_timeline(events)
        legend = fig.legends[0]
        pairs = zip(legend.get_texts(), legend.legend_handles, strict=True)
        return {t.get_text(): to_hex(h.get_facecolor()) for t, h in pairs if t.get_text().startswith("holds")}

    alone = colours(_nmi_run(_spin))
    assert alone["holds zone->lock"] == LOCK_COLOURS["zone->lock"]
    abba = colours(tryalloc.explore(_abba).failures[0].events)
    assert abba == {"holds A": LOCK_COLOURS["A"], "holds B": LOCK_COLOURS["B"]}


def test_compare_timelines_stacks_runs_on_one_event_axis():
    fig = timeline.compare_timelines({"spins": _nmi_run(_spin), "tries": _nmi_run(_try)})
    top, bottom = fig.axes
    assert [top.get_title(loc="left"), bottom.get_title(loc="left")] == ["spins", "tries"]
    assert top.get_xlim() == bottom.get_xlim()
    assert len(fig.legends) == 1
    with pytest.raises(InvalidArgumentError, match="no runs"):
        timeline.compare_timelines({})
    with pytest.raises(InvalidArgumentError, match="a report, a run result or an event list"):
        timeline.context_timeline(42)

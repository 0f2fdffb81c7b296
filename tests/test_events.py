"""The event log says what happened: an announced operation is still pending, with the locks held."""
import pytest

from tryalloc import DeadlockError, Kernel, Scripted, When
from tryalloc.include.gfp import GFP_ATOMIC, GFP_KERNEL
from tryalloc.kernel.events import Event, EventLog
from tryalloc.kernel.locking import spin_lock, spin_unlock, spinlock_t
from tryalloc.mm import page_alloc as A


def nmi_at_zone_unlock():
    """The NMI arrives where the task announced its release of zone->lock: it still holds it."""
    k = Kernel(nr_cpus=1, pages_per_node=64, max_order=3, memcg=False, detectors={"lockdep": "off"})
    A.setup_per_zone_wmarks(k, 0)
    k.spawn(0, lambda: A.alloc_pages(GFP_KERNEL, 2))
    k.on_interrupt(0, "nmi", lambda: A.alloc_pages(GFP_ATOMIC, 2))
    with pytest.raises(DeadlockError) as info:
        k.run(Scripted(When(cpu=0, op="spin_unlock_irqrestore", obj="zone->lock", inject="nmi")))
    return k, info.value


def test_a_report_names_the_pending_release_as_pending_and_the_lock_as_still_held():
    k, report = nmi_at_zone_unlock()
    text = str(report)
    assert "about to spin_unlock_irqrestore zone->lock, still holding it" in text
    assert "spin_unlock_irqrestore zone->lock\n" not in text  # never the bare announcement
    unlock = next(i for i, *_, op, obj in report.events if op == "spin_unlock_irqrestore")
    nmi = [e for e in report.events if e[2] == "task>nmi"]
    ev = report.events.at(unlock)
    assert ev.pending and ev.held == ("pcp->lock[cpu0]", "zone->lock") and ev.context == "task"  # a pcp refill
    assert ev.describe() == "about to spin_unlock_irqrestore zone->lock, still holding it (and pcp->lock[cpu0])"
    lock_in_nmi = report.events.at(next(e[0] for e in nmi if e[3] == "spin_lock_irqsave"))
    assert lock_in_nmi.pending and lock_in_nmi.held == () and lock_in_nmi.context == "nmi"
    assert lock_in_nmi.describe() == "about to spin_lock_irqsave zone->lock; holds no locks"
    assert k.events is report.events


def test_facts_are_worded_as_done_and_count_the_lock_from_its_acquire():
    k = Kernel(nr_cpus=1)
    a, b = spinlock_t("A"), spinlock_t("B")

    def task():
        spin_lock(a)
        spin_lock(b)
        spin_unlock(b)
        spin_unlock(a)

    k.spawn(0, task)
    log = k.run().events
    assert isinstance(log, EventLog)
    words = [log.at(i).describe() for i in range(len(log))]
    assert words[1:7] == [
        "about to spin_lock A; holds no locks",
        "acquired A; holds A",
        "about to spin_lock B; holds A",
        "acquired B; holds A, B",
        "about to spin_unlock B, still holding it (and A)",
        "about to spin_unlock A, still holding it",
    ]
    assert words[0] == "start; holds no locks" and words[-1] == "exit; holds no locks"
    assert [log.pending(i) for i in range(len(log))] == [False, True, False, True, False, True, True, False]
    assert log.lines()[2].startswith("#2    CPU0 task") and log.lines()[2].endswith("acquired A; holds A")
    assert log.lines(last=1) == [log.at(len(log) - 1).line()]


def test_an_interrupt_context_starts_holding_nothing_while_the_task_below_holds_its_lock():
    k = Kernel(nr_cpus=1, detectors={"lockdep": "off"})
    lock, other = spinlock_t("L"), spinlock_t("M")

    def task():
        spin_lock(lock)
        spin_unlock(lock)

    def nmi():
        spin_lock(other)
        spin_unlock(other)

    k.spawn(0, task)
    k.on_interrupt(0, "nmi", nmi, name="nmi_handler")
    log = k.run(Scripted(When(cpu=0, op="acquired", obj="L", inject="nmi"))).events
    entry = next(e[0] for e in log if e[3] == "nmi-entry")
    assert log.held(entry) == () and log.at(entry).describe() == "nmi-entry nmi_handler; holds no locks"
    assert [log.held(e[0]) for e in log if e[2] == "task>nmi" and e[3] == "acquired"] == [("M",)]
    release = next(e[0] for e in log if e[3] == "spin_unlock" and e[4] == "L")
    assert release == entry - 1 and log.held(release) == ("L",)  # the NMI came in before the release
    assert log.at(len(log) - 1).describe() == "exit; holds no locks"  # released once the task went on


def test_a_lock_leaked_by_an_earlier_run_is_still_held_at_the_next_runs_start():
    k = Kernel(nr_cpus=1, detectors={"lockdep": "warn"})
    lock = spinlock_t("L")
    k.call(spin_lock, lock)  # returns to user space holding L: a warning, and L stays held
    assert k.reports and "lock held when returning to user space" in k.reports[0].title
    k.call(lambda: None)
    assert k.events.at(0).describe() == "start; holds L"


def test_a_plain_list_of_events_is_read_without_guessing_what_was_pending():
    events = [(0, 0, "task", "spin_lock", "L"), (1, 0, "task", "acquired", "L")]
    log = EventLog.of(events)
    assert log == events and EventLog.of(log) is log
    assert not log.pending(0) and log.held(1) == ("L",)
    assert log.at(0) == Event(0, 0, "task", "spin_lock", "L", False, ())
    with pytest.raises(IndexError):
        log.held(2)


def test_a_strip_cell_label_is_the_same_words_as_the_report_line():
    _, report = nmi_at_zone_unlock()
    log = report.events
    for i in range(len(log)):
        ev = log.at(i)
        assert ev.line().endswith(ev.describe()) and ev.line().startswith(f"#{i} ")
    tail = [line.strip() for line in report.report.split("last events:\n")[1].splitlines()]
    assert tail[-3:] == [line.strip() for line in log.lines(last=3)]


def test_every_operation_the_package_logs_is_declared_so_a_trigger_can_name_it():
    """A When(op=...) is checked against the declared names: a name logged but not declared would be
    refused although it happens.  Literal names at every logging call must be declared."""
    import re
    from pathlib import Path

    import tryalloc
    from tryalloc.kernel.events import EVENT_OPS

    root = Path(tryalloc.__file__).parent
    call = re.compile(r"\b(?:point|event|log|announce)\(\s*\"([^\"]+)\"")
    logged = {name for path in root.rglob("*.py") if "book" not in path.parts
              for name in call.findall(path.read_text())}
    assert len(logged) > 20
    assert logged - EVENT_OPS == set(), "declare these with declare_ops() beside the code that logs them"
    assert {"nmi-entry", "hardirq-exit", "trace:mm_page_alloc", "memcg_memory_event:max"} <= EVENT_OPS


def test_tracepoint_fields_are_worded_only_when_printed_and_a_null_page_reads_null():
    from tryalloc.kernel.events import Fields

    fields = Fields((("pfn", 0x40), ("order", 3)))
    assert fields == (("pfn", 0x40), ("order", 3)) and hash(fields) == hash(tuple(fields))
    assert str(fields) == "pfn=0x40 order=3" and fields.get("order") == 3 and fields.get("gfp") is None
    assert str(Fields((("pfn", None), ("order", 0)))) == "page=NULL order=0"


@pytest.mark.parametrize("rt", [False, True])
def test_a_local_lock_is_held_from_its_acquire_to_its_announced_release(rt):
    from tryalloc.kernel.locking import local_lock_irqsave, local_lock_t, local_unlock_irqrestore

    k = Kernel(nr_cpus=1, preempt_rt=rt)
    stock = local_lock_t("stock_lock", 1)

    def task():
        flags = local_lock_irqsave(stock)
        local_unlock_irqrestore(stock, flags)

    k.spawn(0, task)
    log = k.run().events
    name = "stock_lock[cpu0]" if rt else "stock_lock"  # on RT, the per-CPU spinlock_t underneath
    acquired = next(e[0] for e in log if e[3] == "acquired")
    release = next(e[0] for e in log if e[3] == "local_unlock_irqrestore")
    assert log.held(acquired) == (name,) and log.pending(release)
    assert log.at(release).describe() == f"about to local_unlock_irqrestore {name}, still holding it"
    assert log.held(len(log) - 1) == ()


def test_a_script_needs_the_log_it_matches():
    from tryalloc import TriggerError

    k = Kernel(nr_cpus=1)
    k.spawn(0, lambda: None)
    k.on_interrupt(0, "nmi", lambda: None)
    with pytest.raises(TriggerError, match="trace=False"):
        k.run(Scripted(When(cpu=0, op="start", inject="nmi")), trace=False)
    assert k.call(lambda: 1) == 1

"""Scheduling, search and replay: deadlocks found, trylocks safe, runs reproducible."""
import pytest

from tryalloc import DeadlockError, Kernel, ReplayError, Scripted, When, explore, random_search, replay
from tryalloc.kernel.locking import spin_lock, spin_trylock, spin_unlock, spinlock_t
from tryalloc.kernel.sched import Random, decode, encode


def abba(trylock_second=False, detectors=None):
    """Two CPUs take two locks in opposite orders."""
    def build():
        k = Kernel(nr_cpus=2, detectors=detectors or {"lockdep": "off"})
        a, b = spinlock_t("A"), spinlock_t("B")

        def take(first, second):
            def task():
                spin_lock(first)
                if trylock_second:
                    if spin_trylock(second):
                        spin_unlock(second)
                else:
                    spin_lock(second)
                    spin_unlock(second)
                spin_unlock(first)
            return task

        k.spawn(0, take(a, b))
        k.spawn(1, take(b, a))
        return k
    return build


def test_abba_deadlock_found_by_exhaustive_search():
    result = explore(abba(), preemption_bound=2)
    assert not result.ok
    report = result.failures[0]
    assert isinstance(report, DeadlockError)
    assert "deadlock across CPUs" in report.title
    assert "CPU0/task0 waits for B, held by CPU1/task1" in str(report)
    assert "CPU1/task1 waits for A, held by CPU0/task0" in str(report)


def test_abba_deadlock_found_by_seeded_random_search():
    result = random_search(abba(), seed=1, executions=500)
    assert not result.ok and isinstance(result.failures[0], DeadlockError)
    # the same seed finds it after the same number of executions
    again = random_search(abba(), seed=1, executions=500)
    assert again.executions == result.executions
    assert again.failures[0].replay == result.failures[0].replay


def test_trylocks_never_deadlock_exhaustively():
    result = explore(abba(trylock_second=True), preemption_bound=None)
    assert result.ok and result.complete
    assert result.executions > 10


def test_no_preemption_bound_zero_finds_no_abba():
    """With no preemptions at all each task runs to completion: the deadlock needs one switch."""
    result = explore(abba(), preemption_bound=0)
    assert result.ok and result.complete


def test_replaying_a_failure_raises_the_same_report_with_the_same_events():
    build = abba()
    failure = explore(build).failures[0]
    for _ in range(2):
        with pytest.raises(DeadlockError) as again:
            replay(build, failure.replay)
        assert again.value.replay == failure.replay
        assert again.value.events == failure.events


def test_replay_gives_an_identical_trace_twice():
    build = abba(trylock_second=True)
    first = build().run(Random(7))
    a = replay(build, first.replay)
    b = replay(build, first.replay)
    assert first.trace_hash == a.trace_hash == b.trace_hash
    assert a.events == b.events == first.events


@pytest.mark.parametrize("bad, needle", [
    ("", "not a tryalloc replay string"),
    ("hello", "not a tryalloc replay string"),
    ("ta1/2c0i:0.x", "not a tryalloc replay string"),
    (None, "not a tryalloc replay string"),
    ("ta1/3c0i:1", "recorded on 3 CPUs"),
    ("ta1/2c0i:0*40.5", "does not fit"),
    ("ta1/2c0i:0*400.1", "does not fit"),
])
def test_bad_replay_strings_are_refused(bad, needle):
    with pytest.raises(ReplayError, match=needle):
        replay(abba(trylock_second=True), bad)


def test_replay_string_round_trip():
    choices = [0, 0, 0, 1, 2, 2, 0, 3, 3, 3, 3, 0, 0]
    text = encode((2, 1), choices)
    assert text == "ta1/2c1i:0*3.1.2.2.0.3*4"
    assert decode(text) == ((2, 1), choices[:-2])


def test_scripted_injection_happens_after_the_named_event():
    k = Kernel(nr_cpus=1, detectors={"lockdep": "off"})
    lock = spinlock_t("zone->lock")
    got = []

    def task():
        spin_lock(lock)
        spin_unlock(lock)

    k.spawn(0, task)
    k.on_interrupt(0, "nmi", lambda: got.append(lock.owner.name if lock.owner else None))
    result = k.run(Scripted(When(cpu=0, op="acquired", obj="zone->lock", inject="nmi")))
    assert got == ["CPU0/task0"]
    assert result.injections == 1
    ops = [e[3] for e in result.events]
    assert ops.index("nmi-entry") == ops.index("acquired") + 2  # after the unlock is announced, before it acts


def test_every_injection_point_is_explored():
    """With one NMI allowed, the search injects it before every scheduling point of the task."""
    def build():
        k = Kernel(nr_cpus=1)
        lock = spinlock_t("L")

        def task():
            for _ in range(3):
                spin_lock(lock)
                spin_unlock(lock)

        k.spawn(0, task)
        k.on_interrupt(0, "nmi", lambda: None)
        return k

    result = explore(build, outcome=lambda k, r: r.injections)
    assert result.complete
    # six lock operations give six points plus the start: seven places for the NMI, and one run without it
    assert result.outcomes == {1: 7, 0: 1}


def test_a_script_can_be_reused_for_another_run():
    script = Scripted(When(cpu=0, op="acquired", obj="L", inject="nmi"))
    counts = []
    for _ in range(2):
        k = Kernel(nr_cpus=1)
        lock = spinlock_t("L")
        k.spawn(0, lambda lock=lock: (spin_lock(lock), spin_unlock(lock)))
        k.on_interrupt(0, "nmi", lambda: None)
        counts.append(k.run(script).injections)
    assert counts == [1, 1]


def test_an_interrupt_on_a_cpu_whose_task_spins_still_runs():
    """The waiting state belongs to the spinning context, not the CPU: an NMI arriving on the spinner
    runs, and may even take the lock the task waits for and release it (a false deadlock before)."""
    def build():
        k = Kernel(nr_cpus=2, detectors={"lockdep": "off"})
        lock = spinlock_t("L")
        k.spawn(0, lambda: (spin_lock(lock), spin_unlock(lock)))
        k.spawn(1, lambda: (spin_lock(lock), spin_unlock(lock), spin_lock(lock), spin_unlock(lock)))
        k.on_interrupt(0, "nmi", lambda: spin_trylock(lock) and spin_unlock(lock))
        return k

    nmi_took_it_while_task_waited = []

    def check(k, res):
        waited = any(e[1] == 0 and e[3] == "spin" for e in res.events)
        took = any(e[2] == "task>nmi" and e[3] == "acquired" for e in res.events)
        nmi_took_it_while_task_waited.append(waited and took)

    result = explore(build, preemption_bound=None, check=check)
    assert result.ok and result.complete
    assert any(nmi_took_it_while_task_waited)


# --- a script that cannot do what it says is an error, not a quiet "no deadlock" --------------------
def nmi_on_zone_lock(nr_nodes=1, declare_nmi=True):
    """A task allocating while an NMI may allocate too: the classic zone->lock re-entry."""
    from tryalloc.include.gfp import GFP_ATOMIC, GFP_KERNEL
    from tryalloc.mm import page_alloc as A

    k = Kernel(nr_cpus=2, nr_nodes=nr_nodes, pages_per_node=64, max_order=3, pageblock_order=3, memcg=False,
               detectors={"lockdep": "off"})
    k.spawn(0, lambda: A.__free_pages(A.alloc_pages(GFP_KERNEL, 2), 2))
    if declare_nmi:
        k.on_interrupt(0, "nmi", lambda: A.alloc_pages(GFP_ATOMIC, 2))
    return k


def free_pages(k):
    from tryalloc.mm.mmzone import NR_FREE_PAGES
    return [z.vm_stat[NR_FREE_PAGES] for z in k.zones]


def test_a_trigger_with_an_operation_the_model_never_logs_is_refused_at_once():
    from tryalloc import TriggerError

    with pytest.raises(TriggerError, match=r"op='aquired'.*no operation 'aquired'.*did you mean 'acquired'"):
        When(cpu=0, op="aquired", obj="zone->lock", inject="nmi")
    with pytest.raises(TriggerError, match="inject must be one of"):
        When(cpu=0, op="acquired", inject="hard-irq")
    with pytest.raises(TriggerError, match="context must be one of"):
        When(cpu=0, op="acquired", inject="nmi", context="irq")
    with pytest.raises(TriggerError, match="nth must be"):
        When(cpu=0, op="acquired", inject="nmi", nth=0)


def test_a_trigger_with_no_interrupt_source_is_refused_before_the_run_changes_anything():
    from tryalloc import TriggerError

    k = nmi_on_zone_lock(declare_nmi=False)
    before, log = free_pages(k), k.events
    with pytest.raises(TriggerError, match=r"When\(cpu=0, op='acquired'.*no nmi source on CPU0"):
        k.run(Scripted(When(cpu=0, op="acquired", obj="zone->lock", inject="nmi")))
    assert free_pages(k) == before and k.events is log
    assert k.call(lambda: 7) == 7  # the machine is not left "being set up"


def test_a_trigger_on_an_object_the_machine_does_not_name_raises_naming_the_trigger():
    """On two nodes the lock is node0:zone->lock: a script waiting for "zone->lock" never fires, and
    a reader would take the quiet run for "no deadlock"."""
    from tryalloc import TriggerError

    k = nmi_on_zone_lock(nr_nodes=2)
    with pytest.raises(TriggerError, match=r"obj='zone->lock'.*never fired.*node0:zone->lock") as info:
        k.run(Scripted(When(cpu=0, op="acquired", obj="zone->lock", inject="nmi")))
    assert "When(cpu=0" in str(info.value)
    with pytest.raises(DeadlockError):  # named as the machine names it, the NMI deadlocks
        nmi_on_zone_lock(nr_nodes=2).run(Scripted(When(cpu=0, op="acquired", obj="node0:zone->lock", inject="nmi")))


def test_a_trigger_whose_interrupt_can_never_arrive_raises():
    """A hardirq asked for inside an irqs-off section that the task never leaves before its end."""
    from tryalloc import TriggerError
    from tryalloc.kernel.locking import spin_lock_irqsave, spinlock_t
    from tryalloc.kernel.preempt import local_irq_restore

    k = Kernel(nr_cpus=1, detectors={"lockdep": "off"})
    lock = spinlock_t("L")

    def task():
        flags = spin_lock_irqsave(lock)
        lock.owner = None  # leave without a scheduling point, interrupts still off until the end
        k.cpus[0].top.held.clear()
        local_irq_restore(flags)

    k.spawn(0, task)
    k.on_interrupt(0, "hardirq", lambda: None)
    with pytest.raises(TriggerError, match="fired at event #2, but no hardirq could arrive"):
        k.run(Scripted(When(cpu=0, op="acquired", obj="L", inject="hardirq")))


def test_a_script_that_fires_runs_as_before():
    with pytest.raises(DeadlockError, match="zone->lock"):
        nmi_on_zone_lock().run(Scripted(When(cpu=0, op="acquired", obj="zone->lock", inject="nmi")))


def test_a_replay_with_choices_left_over_is_refused_even_when_the_run_ends_in_a_report():
    build = abba()
    failure = explore(build).failures[0]
    fingerprint, choices = decode(failure.replay)
    longer = encode(fingerprint, choices + [0] * 50 + [1])  # the run deadlocks long before choice 54
    with pytest.raises(ReplayError, match=r"ended with 'WARNING: deadlock across CPUs' after \d+ choices") as info:
        replay(build, longer)
    assert isinstance(info.value.__cause__, DeadlockError)
    with pytest.raises(DeadlockError):  # the exact string still reproduces the report
        replay(build, failure.replay)

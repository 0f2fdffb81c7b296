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

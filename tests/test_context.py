"""CPUs as stacks of contexts: the predicates, nesting, and where interrupts may arrive."""
import pytest

from tryalloc import ContextError, Kernel
from tryalloc.kernel.preempt import (
    in_hardirq,
    in_interrupt,
    in_nmi,
    in_serving_softirq,
    in_task,
    irqs_disabled,
    local_bh_disable,
    local_bh_enable,
    local_irq_restore,
    local_irq_save,
    preempt_count,
    preempt_disable,
    preempt_enable,
    preemptible,
    smp_processor_id,
)
from tryalloc.kernel.sched import inject_interrupt, this_cpu


def snapshot():
    return dict(nmi=in_nmi(), hardirq=in_hardirq(), softirq=in_serving_softirq(), task=in_task(),
                interrupt=in_interrupt(), irqs_off=irqs_disabled(), preemptible=preemptible(),
                cpu=smp_processor_id(), path=this_cpu().path())


@pytest.mark.parametrize("context, expect", [
    ("task", dict(nmi=False, hardirq=False, softirq=False, task=True, irqs_off=False, preemptible=True)),
    ("softirq", dict(nmi=False, hardirq=False, softirq=True, task=False, irqs_off=False, preemptible=False)),
    ("hardirq", dict(nmi=False, hardirq=True, softirq=False, task=False, irqs_off=True, preemptible=False)),
    ("nmi", dict(nmi=True, hardirq=True, softirq=False, task=False, irqs_off=True, preemptible=False)),
])
def test_predicates_in_each_context(context, expect):
    got = Kernel(nr_cpus=2).call(snapshot, cpu=1, context=context)
    assert {k: got[k] for k in expect} == expect
    assert got["cpu"] == 1
    assert got["path"] == ("task" if context == "task" else f"task>{context}")


def test_interrupt_returns_to_the_interrupted_state():
    def task():
        flags = local_irq_save()
        before = (preempt_count(), irqs_disabled())
        inject_interrupt("nmi", lambda: None)
        after = (preempt_count(), irqs_disabled())
        local_irq_restore(flags)
        return before, after, irqs_disabled()

    before, after, restored = Kernel(nr_cpus=1).call(task)
    assert before == after == (0, True)
    assert restored is False


def test_interrupts_nest_in_order():
    seen = []

    def nmi():
        seen.append(this_cpu().path())

    def hardirq():
        seen.append(this_cpu().path())
        inject_interrupt("nmi", nmi)

    def softirq():
        seen.append(this_cpu().path())
        inject_interrupt("hardirq", hardirq)

    Kernel(nr_cpus=1).call(lambda: inject_interrupt("softirq", softirq))
    assert seen == ["task>softirq", "task>softirq>hardirq", "task>softirq>hardirq>nmi"]


@pytest.mark.parametrize("setup, kind, why", [
    ("irqs_off", "hardirq", "interrupts are disabled"),
    ("irqs_off", "softirq", "interrupts are disabled"),
    ("bh_off", "softirq", "bottom halves"),
    ("in_nmi", "nmi", "already in NMI"),
    ("in_hardirq", "softirq", "in hardirq"),
])
def test_interrupt_that_cannot_arrive_is_refused_and_changes_nothing(setup, kind, why):
    def attempt():
        state = (preempt_count(), irqs_disabled(), this_cpu().path())
        with pytest.raises(ContextError, match=why):
            inject_interrupt(kind, lambda: None)
        assert (preempt_count(), irqs_disabled(), this_cpu().path()) == state

    def task():
        if setup == "irqs_off":
            flags = local_irq_save()
            attempt()
            local_irq_restore(flags)
        elif setup == "bh_off":
            local_bh_disable()
            attempt()
            local_bh_enable()
        elif setup == "in_nmi":
            inject_interrupt("nmi", attempt)
        else:
            inject_interrupt("hardirq", attempt)
        return True

    assert Kernel(nr_cpus=1).call(task)


def test_unknown_interrupt_kind_and_cpu_are_refused():
    k = Kernel(nr_cpus=2)
    with pytest.raises(ContextError, match="nmii"):
        k.on_interrupt(0, "nmii", lambda: None)
    with pytest.raises(ContextError, match="no CPU 5"):
        k.spawn(5, lambda: None)
    with pytest.raises(ContextError, match="no CPU"):
        k.call(lambda: None, cpu=2)


def test_unbalanced_preempt_enable_is_refused():
    def task():
        preempt_disable()
        preempt_enable()
        with pytest.raises(ContextError, match="preempt_enable"):
            preempt_enable()
        return preempt_count()

    assert Kernel(nr_cpus=1).call(task) == 0


def test_model_code_outside_a_run_is_refused():
    with pytest.raises(ContextError, match="inside"):
        in_nmi()


def test_hot_paths_reading_the_run_directly_still_refuse_outside_a_run():
    """The allocator and the locks read the run as an attribute, not through ``running()``: between
    runs the sentinel there raises the same ContextError, and nothing changes."""
    from tryalloc.include.gfp import GFP_KERNEL
    from tryalloc.kernel.locking import spin_trylock, spinlock_t
    from tryalloc.mm import page_alloc as A

    k = Kernel(nr_cpus=1, memcg=False)
    page = k.call(lambda: A.alloc_pages(GFP_KERNEL, 0))
    free_before = dict(k.zones[0].vm_stat)
    lock = spinlock_t("L")
    calls = [lambda: A.alloc_pages(GFP_KERNEL, 0), lambda: A.__free_pages(page, 0), lambda: spin_trylock(lock)]
    if hasattr(A, "try_alloc_pages"):  # from patch 1
        calls.append(lambda: A.try_alloc_pages(0, 0))
    for call in calls:
        with pytest.raises(ContextError, match="inside"):
            call()
    assert lock.owner is None and dict(k.zones[0].vm_stat) == free_before
    k.call(lambda: A.__free_pages(page, 0))


def test_a_run_ending_in_an_exception_leaves_the_cpus_idle_and_usable():
    from tryalloc.kernel.locking import spin_lock, spinlock_t

    k = Kernel(nr_cpus=1, detectors={"lockdep": "off"})
    lock = spinlock_t("L")

    def fail():
        spin_lock(lock)
        raise RuntimeError("model code failed")

    with pytest.raises(RuntimeError):
        k.call(fail, context="hardirq")
    cpu = k.cpus[0]
    assert (cpu.path(), cpu.preempt_count, cpu.irqs_disabled, lock.owner) == ("task", 0, False, None)
    assert k.call(lambda: this_cpu().path(), context="hardirq") == "task>hardirq"


@pytest.mark.parametrize("bad", [
    lambda k: k.call(lambda: None, context="hard-irq"),
    lambda k: k.call("not a function"),
    lambda k: k.spawn(0, None),
    lambda k: k.on_interrupt(0, "hard-irq", lambda: None),
    lambda k: k.on_interrupt(0, "nmi", None),
    lambda k: k.on_interrupt(0, "nmi", lambda: None, name=3),
    lambda k: k.on_interrupt(0, "nmi", lambda: None, budget=-1),
])
def test_a_bad_scenario_argument_is_refused_before_it_changes_the_machine(bad):
    k = Kernel(nr_cpus=2)
    k.call(lambda: None)
    log = k.events
    with pytest.raises(ContextError):
        bad(k)
    assert k.events is log
    assert k.call(lambda: 42) == 42  # not left "being set up": the next call runs

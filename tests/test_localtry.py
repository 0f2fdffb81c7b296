"""The v7-v9 per-CPU try lock, ``localtry_lock_t`` (S9.1.1-S9.1.3, S9.2.1), as release 6.15-rc1 of the
last level has it, and memcg's stock on it.  The module exists only at level 6.15 (and machines take a
release only there), so before it every test here fails, as conftest's strict xfail wants."""
import pytest

from tryalloc import Kernel
from tryalloc.include.gfp import GFP_KERNEL
from tryalloc.kernel.sched import inject_interrupt, this_cpu
from tryalloc.mm import memcontrol as M


def rc1(**config):
    return Kernel(nr_cpus=1, release="6.15-rc1", **config)


def localtry():
    from tryalloc.kernel.locking import localtry_lock as L
    return L


@pytest.mark.rule("S9.1.1")
def test_every_localtry_lock_variant_sets_acquired_and_every_unlock_clears_it():
    """S9.1.1 (!RT): the type holds a local_lock_t llock and a per-CPU acquired word, 1 exactly while held,
    whichever lock/unlock pair is used; memcg's stock lock is one on 6.15-rc1 and a local_trylock_t on 6.15."""
    L = localtry()
    k = rc1()
    lt = L.localtry_lock_t("lt", 1)
    assert isinstance(lt.llock, L.local_lock_t) and lt.acquired == [0]

    def pairs():
        seen = []
        for lock, unlock in ((L.localtry_lock, L.localtry_unlock), (L.localtry_lock_irq, L.localtry_unlock_irq)):
            lock(lt)
            seen.append((lt.acquired[0], lt.holder(0) is not None))
            unlock(lt)
            seen.append((lt.acquired[0], lt.holder(0) is not None))
        flags = L.localtry_lock_irqsave(lt)
        seen.append((lt.acquired[0], lt.holder(0) is not None))
        L.localtry_unlock_irqrestore(lt, flags)
        seen.append((lt.acquired[0], lt.holder(0) is not None))
        return seen

    assert k.call(pairs) == [(1, True), (0, False)] * 3
    assert isinstance(k.memcg.stock_lock, L.localtry_lock_t)
    assert isinstance(Kernel(nr_cpus=1).memcg.stock_lock, M.local_trylock_t)


@pytest.mark.rule("S9.1.2")
def test_localtry_trylock_irqsave_fails_on_the_holder_with_irqs_restored_and_on_rt_in_nmi():
    """S9.1.2: !RT, the trylock succeeds with interrupts off when acquired is 0, and an NMI on the holder
    fails with the NMI's interrupt state restored; RT: it fails at once in NMI and hard-IRQ, and in a
    task disables migration and trylocks the per-CPU spinlock, with flags "0"."""
    L = localtry()
    k = rc1()
    lt = L.localtry_lock_t("lt", 1)

    def task():
        flags = L.localtry_trylock_irqsave(lt)
        held = (flags is not None, this_cpu().irqs_disabled, lt.acquired[0])
        got = []
        inject_interrupt("nmi", lambda: got.append((L.localtry_trylock_irqsave(lt), this_cpu().irqs_disabled)))
        L.localtry_unlock_irqrestore(lt, flags)
        return held, got, this_cpu().irqs_disabled, lt.acquired[0]

    assert k.call(task) == ((True, True, 1), [(None, True)], False, 0)
    rt = rc1(preempt_rt=True)
    lr = L.localtry_lock_t("lr", 1)
    assert rt.call(L.localtry_trylock_irqsave, lr, context="nmi") is None
    assert rt.call(L.localtry_trylock_irqsave, lr, context="hardirq") is None

    def rt_task():
        flags = L.localtry_trylock_irqsave(lr)
        inside = (flags.disabled, this_cpu().migrate_disabled > 0, this_cpu().irqs_disabled)
        L.localtry_unlock_irqrestore(lr, flags)
        return inside, this_cpu().migrate_disabled

    assert rt.call(rt_task) == ((False, True, False), 0)
    assert ("localtry_trylock_irqsave", "lr[cpu0]") in {(e[3], str(e[4])) for e in rt.events}  # the spinlock


@pytest.mark.rule("S9.1.3")
def test_on_rt_localtry_lock_irq_is_the_plain_local_lock():
    """S9.1.3: on RT localtry_lock_irq leaves the CPU as the plain local_lock does (migration off,
    interrupts on, the per-CPU spinlock taken); on !RT it turns interrupts off."""
    L = localtry()
    from tryalloc.kernel.locking import local_lock, local_unlock

    def inside(k, lock, unlock):
        lt = L.localtry_lock_t("lt", 1)
        target = lt if lock is L.localtry_lock_irq else lt.llock

        def body():
            lock(target)
            state = (this_cpu().irqs_disabled, this_cpu().migrate_disabled, this_cpu().preempt_count)
            unlock(target)
            return state, (this_cpu().irqs_disabled, this_cpu().migrate_disabled)
        return k.call(body)

    irq = (L.localtry_lock_irq, L.localtry_unlock_irq)
    rt = inside(rc1(preempt_rt=True), *irq)
    assert rt == inside(rc1(preempt_rt=True), local_lock, local_unlock)
    assert rt[0][1] > 0 and not rt[0][0]
    assert inside(rc1(), *irq) == ((True, 0, 0), (False, 0))


@pytest.mark.rule("S9.2.1")
def test_localtry_trylock_disables_only_preemption_and_fails_on_the_holder():
    """S9.2.1: !RT, localtry_trylock raises the preempt count, leaves interrupts on, and succeeds only
    when acquired is 0; a re-entry fails with the count back.  RT: it fails in NMI like the irqsave form."""
    L = localtry()
    k = rc1()
    lt = L.localtry_lock_t("lt", 1)

    def body():
        base = this_cpu().preempt_count
        ok = L.localtry_trylock(lt)
        state = (ok, this_cpu().preempt_count - base, this_cpu().irqs_disabled, lt.acquired[0])
        again = (L.localtry_trylock(lt), this_cpu().preempt_count - base)
        L.localtry_unlock(lt)
        return state, again, this_cpu().preempt_count - base, lt.acquired[0]

    assert k.call(body) == ((True, 1, False, 1), (None, 1), 0, 0)
    assert rc1(preempt_rt=True).call(L.localtry_trylock, L.localtry_lock_t("lr", 1), context="nmi") is None


@pytest.mark.rule("S9.1.2")
def test_on_6_15_rc1_a_spinning_consume_stock_tries_first():
    """v9's patch 4 on the localtry API (6.15-rc1): even a GFP_KERNEL consume_stock tries the lock first,
    where 6.15 takes it at once (S9.4.3)."""
    def ops(k):
        a = M.mem_cgroup_create(k, "a")
        k.call(M.try_charge_memcg, a, GFP_KERNEL, 1)
        k.call(M.consume_stock, a, 1, GFP_KERNEL)
        return [e[3] for e in k.events if e[4] == M.STOCK_LOCK and e[3] != "acquired"]

    assert ops(rc1()) == ["localtry_trylock_irqsave", "local_unlock_irqrestore"]
    assert ops(Kernel(nr_cpus=1)) == ["local_lock_irqsave", "local_unlock_irqrestore"]

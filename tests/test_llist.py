"""The lock-less list: pushes from several CPUs and NMIs interleave but never lose a node."""
from tryalloc import Kernel, explore
from tryalloc.lib.llist import llist_add, llist_del_all, llist_empty, llist_for_each, llist_head, llist_node


def test_add_and_del_all_single_context():
    head = llist_head("deferred")

    def task():
        firsts = [llist_add(llist_node(i), head) for i in range(3)]
        chain = [n.payload for n in llist_for_each(llist_del_all(head))]
        return firsts, chain, llist_empty(head)

    firsts, chain, empty = Kernel(nr_cpus=1).call(task)
    assert firsts == [True, False, False]
    assert chain == [2, 1, 0]  # newest first
    assert empty


def test_concurrent_adds_and_an_nmi_never_lose_a_node():
    """Every interleaving of two CPUs pushing and an NMI pushing in between read and cmpxchg."""
    def setup(k):
        head = llist_head("deferred")
        k.head = head
        k.spawn(0, lambda: llist_add(llist_node("cpu0"), head))
        k.spawn(1, lambda: llist_add(llist_node("cpu1"), head))
        k.on_interrupt(0, "nmi", lambda: llist_add(llist_node("nmi"), head))

    retried = []

    def check(k, result):
        names = sorted(n.payload for n in k.head)
        assert names == ["cpu0", "cpu1", "nmi"][: len(names)] or names == sorted(
            ["cpu0", "cpu1"] + (["nmi"] if result.injections else []))
        assert len(names) == 2 + result.injections
        retried.append(any(e[3] == "llist_add:retry" for e in result.events))

    result = explore(setup, boot=dict(nr_cpus=2), preemption_bound=None, check=check)
    assert result.ok and result.complete
    assert any(retried) and not all(retried)  # some schedules force the cmpxchg retry

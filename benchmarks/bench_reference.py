"""The reference scenarios' figures (issue 13 item 7): per scenario and level, the outcomes, the
executions of the bounded search without and with reduction and their factor, and the time; at the
level before the scenario's patch, the counterexample the search finds.  I1-I5 are checked at every
scheduling point of every search (``tryalloc.mm.reference.search``); one more row measures that
check's cost on scenario (a).

Command: .venv/bin/python benchmarks/bench_reference.py [preemption bound, default 1]
Every factor is printed after asserting that both searches saw the same outcomes.
"""
import os
import platform
import sys
import time

from tryalloc import series
from tryalloc.mm import reference as R

LEVELS = {
    "mixed interrupts": ("0", "1", "2", "3", "4", "5", "6", "6.15"),
    "memcg stock": ("3", "4", "5", "6", "6.15"),
    "llist deferral": ("1", "2", "3", "4", "5", "6", "6.15"),
}


def timed(L, ref, **kw):
    start = time.perf_counter()
    result = R.search(L, ref, stop_on_failure=not ref.applies, **kw)
    result.wall = time.perf_counter() - start
    return result


def main():
    bound = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    print(f"# bench_reference.py — Python {sys.version.split()[0]} on {platform.machine()}, {os.cpu_count()} CPUs; "
          f"command: .venv/bin/python benchmarks/bench_reference.py {bound}\n")
    print(f"preemption bound {bound}; I1-I5 at every point\n")
    print("| scenario | level | outcomes | executions without / with reduction | factor | time (s) |")
    print("|---|---|---|---|---|---|")
    for name, levels in LEVELS.items():
        for level in levels:
            L = series.load(level)
            ref = R.SCENARIOS[name](L)
            full, red = (timed(L, ref, reduce=reduce, preemption_bound=bound) for reduce in (False, True))
            if not ref.applies:
                report = full.shortest
                print(f"| {name} | {level} | counterexample: {type(report).__name__} \"{report.title}\" "
                      f"(replay {report.replay}) | {full.executions} / {red.executions} | | {full.wall:.2f} |")
                continue
            assert full.complete and red.complete and full.ok and red.ok
            assert set(full.outcomes) == set(red.outcomes)
            runs = red.executions + red.pruned
            print(f"| {name} | {level} | {len(full.outcomes)} | {full.executions:,} / {runs:,} | "
                  f"{full.executions / runs:.2f}x | {full.wall:.2f} / {red.wall:.2f} |")
    L = series.load("6.15")
    ref = R.mixed_interrupts(L)
    checked, plain = (timed(L, ref, reduce=False, preemption_bound=bound, invariants=inv) for inv in (True, False))
    assert set(checked.outcomes) == set(plain.outcomes)
    print(f"\nthe per-step check on (a) at 6.15: {checked.wall:.2f} s with it, {plain.wall:.2f} s without "
          f"({checked.wall / plain.wall:.2f}x), {checked.executions:,} executions each")


if __name__ == "__main__":
    main()

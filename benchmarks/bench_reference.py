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

from tryalloc import series
from tryalloc.mm import reference as R

LEVELS = {
    "mixed interrupts": ("0", "1", "2", "3", "4", "5", "6", "6.15"),
    "memcg stock": ("3", "4", "5", "6", "6.15"),
    "llist deferral": ("1", "2", "3", "4", "5", "6", "6.15"),
}


def main():
    bound = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    print(f"# bench_reference.py — Python {sys.version.split()[0]} on {platform.machine()}, {os.cpu_count()} CPUs; "
          f"command: .venv/bin/python benchmarks/bench_reference.py {bound}\n")
    print(f"preemption bound {bound}; I1-I5 at every point\n")
    print("| scenario | level | outcomes | executions without / with reduction | factor | time (s, both) |")
    print("|---|---|---|---|---|---|")
    for name, levels in LEVELS.items():
        for level in levels:
            row = R.summarize(series.load(level), name, bound)  # asserts equal outcomes where it applies
            if not row["applies"]:
                print(f"| {name} | {level} | counterexample: {row['kind']} \"{row['title']}\" "
                      f"(replay {row['replay']}) | {row['executions']} / {row['reduced']} | | {row['seconds']:.2f} |")
                continue
            print(f"| {name} | {level} | {row['outcomes']} | {row['executions']:,} / {row['reduced']:,} | "
                  f"{row['executions'] / row['reduced']:.2f}x | {row['seconds']:.2f} |")
    L = series.load("6.15")
    ref = R.mixed_interrupts(L)
    checked, plain = (R.search(L, ref, reduce=False, preemption_bound=bound, invariants=inv) for inv in (True, False))
    assert set(checked.outcomes) == set(plain.outcomes)
    print(f"\nthe per-step check on (a) at 6.15: {checked.seconds:.2f} s with it, {plain.seconds:.2f} s without "
          f"({checked.seconds / plain.seconds:.2f}x), {checked.executions:,} executions each")


if __name__ == "__main__":
    main()

"""Randomized stress at scale: 10**6 allocations and frees on 4 CPUs with interrupts at seeded points.

Prints the operations per second and the total time; every invariant is checked at the end (a broken
one raises).  Command: .venv/bin/python benchmarks/bench_stress.py [ops] [seed]
"""
import platform
import sys
import time

from tryalloc.mm.stress import stress


def main():
    ops = int(sys.argv[1]) if len(sys.argv) > 1 else 10**6
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    print(f"# bench_stress.py — Python {sys.version.split()[0]} on {platform.machine()}; "
          f"command: .venv/bin/python benchmarks/bench_stress.py {ops} {seed}\n")
    start = time.perf_counter()
    r = stress(ops, nr_cpus=4, seed=seed)
    total = time.perf_counter() - start
    print("| measure | value |\n|---|---|")
    print(f"| operations (allocations + frees, tasks and interrupts) | {r.ops:,} |")
    print(f"| interrupts injected | {r.injections:,} |")
    print(f"| operations per second (the run) | {r.ops_per_second:,.0f} |")
    print(f"| total time including boot and the final checks (s) | {total:.1f} |")
    print("| invariants at the end (conservation, no page held twice, memcg balanced) | hold |")


if __name__ == "__main__":
    main()

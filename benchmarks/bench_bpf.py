"""The sampling workload of the patch-6 chapter: run ``.venv/bin/python benchmarks/bench_bpf.py``.

:func:`tryalloc.book.bpf_scenarios.sampler_workload` on the package as written, !RT and RT, 2 and 4
CPUs, one random schedule each (seeds 0..4): the pages it allocated per second of wall time, the
median of the five seeds (time.perf_counter around the whole call: machine boot, the run with its
scheduler, and the final freeing and checks).  Also the share of page requests that failed for a
lock on RT, from the same runs.
"""
from __future__ import annotations

import statistics
import time

import tryalloc
from tryalloc.book.bpf_scenarios import sampler_workload

ROUNDS = 60


def one(preempt_rt: bool, nr_cpus: int, seed: int) -> tuple[float, dict]:
    t = time.perf_counter()
    run = sampler_workload(tryalloc, preempt_rt, nr_cpus=nr_cpus, rounds=ROUNDS, seed=seed)
    return run["allocated"] / (time.perf_counter() - t), run


def main() -> None:
    print(f"sampler_workload, {ROUNDS} rounds per CPU, median of seeds 0..4")
    print(f"{'machine':<10} {'CPUs':>4} {'pages/s':>9} {'requests':>9} {'allocated':>9} {'lock fails':>10}")
    for preempt_rt in (False, True):
        for nr_cpus in (2, 4):
            rates, runs = zip(*(one(preempt_rt, nr_cpus, seed) for seed in range(5)), strict=True)
            name = "RT" if preempt_rt else "!RT"
            reqs = statistics.median(r["requests"] for r in runs)
            got = statistics.median(r["allocated"] for r in runs)
            fails = sum(r["contention"] for r in runs)
            print(f"{name:<10} {nr_cpus:>4} {statistics.median(rates):>9,.0f} {reqs:>9} {got:>9} {fails:>10}")


if __name__ == "__main__":
    main()

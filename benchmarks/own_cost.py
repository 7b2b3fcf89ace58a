"""dropspec's own time per case, without the framework's: every case runs once for real, its adapter's runs
recorded, then again with those runs replayed from the recording, so what is timed the second time is dropspec's
work alone (recovery, the float64 oracle, fingerprints, checks), undisturbed by the framework's noise.

    PYTHONPATH=. .tox/torch/bin/python benchmarks/own_cost.py torch            # one adapter, in its env's python
    PYTHONPATH=. .tox/torch/bin/python benchmarks/own_cost.py torch -k L2 --top 5

Prints, per case, dropspec's time (the best of ``--repeat`` replays) against the framework's time in the recorded
run, and dropspec's time per phase over all cases. A replay reads the same outputs in the same order, so every
result is the recorded run's; a case whose adapter made no run (a skip) is left out.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
from collections.abc import Callable

from dropspec import engine
from dropspec.heap import keep_freed_memory, no_huge_page_advice
from dropspec.registry import UnknownAdapter, load_adapter

PHASES = ("recover", "fingerprint", "run_calls", "run_cell", "training_sequence", "_random_calls", "check_traces")


def timed(phase: str, fn: Callable, spent: dict[str, float]) -> Callable:
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[phase] += time.perf_counter() - start

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("adapter")
    parser.add_argument("-k", default="", help="only cases whose id contains this")
    parser.add_argument("--repeat", type=int, default=3, help="replays per case; the fastest counts")
    parser.add_argument("--top", type=int, default=10, help="how many of the costliest cases to list")
    args = parser.parse_args()
    keep_freed_memory()  # as the worker process of a matrix run does
    no_huge_page_advice()

    try:
        adapter = load_adapter(args.adapter)
    except UnknownAdapter as exc:
        sys.exit(f"own_cost.py: {exc}")
    reason = adapter.unavailable_reason()
    if reason is not None:
        sys.exit(f"own_cost.py: adapter {args.adapter!r} cannot run in this Python: {reason}")
    cases = [c for c in adapter.cases() if args.k in c.id]
    if not cases:
        listing = f"dropspec run --adapter {args.adapter} --list"
        sys.exit(f"own_cost.py: no case of {args.adapter!r} has {args.k!r} in its id (`{listing}` lists them)")
    real_run = adapter.run
    tape: dict[str, list] = collections.defaultdict(list)

    def record(case, params, calls, seed, training):
        traces = list(real_run(case, params, calls, seed=seed, training=training))
        tape[case.id].append(traces)
        return traces

    adapter.run = record
    framework = {}
    engine.observe(adapter, cases[0])  # imports and first compiles are no case's cost
    tape.clear()
    for case in cases:
        framework[case.id] = engine.observe(adapter, case).framework_seconds

    position: dict[str, int] = {}

    def replay(case, params, calls, seed, training):
        n = position[case.id]
        position[case.id] = n + 1
        return tape[case.id][n]

    adapter.run = replay
    spent: dict[str, float] = collections.defaultdict(float)
    for phase in PHASES:
        setattr(engine, phase, timed(phase, getattr(engine, phase), spent))
    own, phases = {}, collections.defaultdict(float)
    for case in cases:
        if not framework[case.id]:
            continue
        best = None
        for _ in range(args.repeat):
            position[case.id] = 0
            spent.clear()
            start = time.perf_counter()
            engine.observe(adapter, case)
            seconds = time.perf_counter() - start
            if best is None or seconds < best[0]:
                best = (seconds, dict(spent))
        own[case.id] = best[0]
        for phase, seconds in best[1].items():
            phases[phase] += seconds

    shares = sorted((own[c] / framework[c], c) for c in own)
    total_own, total_framework = sum(own.values()), sum(framework[c] for c in own)
    print(f"# dropspec's own time on {args.adapter} ({len(own)} cases, framework runs replayed)\n")
    print(
        f"dropspec {total_own:.2f} s, framework {total_framework:.2f} s (recorded run): "
        f"{total_own / total_framework:.2f}x; per case median {statistics.median(s for s, _ in shares):.2f}x, "
        f"{sum(s > 0.5 for s, _ in shares)} of {len(shares)} above 0.5x\n"
    )
    # phases nest: recover's runs include check_traces, training_sequence its run_calls
    print("| phase (`dropspec.engine`) | dropspec s |\n|---|---|")
    for phase, seconds in sorted(phases.items(), key=lambda kv: -kv[1]):
        print(f"| {phase} | {seconds:.3f} |")
    print()
    print("| case | dropspec ms | framework ms | dropspec / framework |\n|---|---|---|---|")
    for share, case in shares[::-1][: args.top]:
        print(f"| `{case}` | {own[case] * 1e3:.1f} | {framework[case] * 1e3:.1f} | {share:.2f} |")


if __name__ == "__main__":
    main()

"""Does JAX's persistent compilation cache make eager Keras-on-JAX (and Flax) cheaper, and does it change results?

An eager call of ``keras.layers.LSTM`` on the JAX backend traces the layer's ``lax.scan`` afresh, and JAX's
in-memory compile cache is keyed by the traced function, so every call compiles the scan again (one XLA compile
per call, about 85% of the call). The persistent cache is keyed by a hash of the module to compile instead, so the
second identical call finds it, in the same process or in another one. Enabled by three environment variables
(the JAX documentation, "Persistent compilation cache"; names as in jax 0.10.2's ``jax/_src/config.py``)::

    JAX_COMPILATION_CACHE_DIR=DIR                      # enables the cache
    JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0       # default 1 s: the scan compiles in ~0.1 s, never stored
    JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=-1       # no size floor

Two measurements, each without the cache, with a fresh (cold) cache directory, and again with the directory the
cold run filled (warm: across processes):

- ``micro``: one process builds ``keras.layers.LSTM(8, dropout=0.25, recurrent_dropout=0.25)`` at the Keras
  suite's sizes, calls it eagerly in training ``--calls`` times; per call its time and JAX's compile events
  (``jax.monitoring``); the outputs' bytes hashed, to show the cache returns the same numbers.
- ``conformance``: ``dropspec run --adapter keras_jax -k SUBSET`` (or other ``--adapters``) timed; the
  results files compared: every (clause, case) status and message, every observation field, and every recovered
  mask array byte for byte.

    python3 benchmarks/jax_cache.py                      # both, Keras on JAX (about 4 minutes on 2 idle cores)
    python3 benchmarks/jax_cache.py --only micro
    python3 benchmarks/jax_cache.py --only conformance --adapters flax_nnx,flax_linen

Each framework runs in its tox env's python (``.tox/keras_jax``, ``.tox/jax``) with this checkout, or ``--source``
(a ``git archive HEAD`` copy, so that edits made meanwhile stay out of the comparison), on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE_VARS = {"JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1"}
SUBSETS = {  # a fixed subset per adapter: eager layers, the jax_jit mode, cells in a loop, a Dropout layer before
    "keras_jax": ("keras_jax", "lstm-layer-both or lstm-loop or lstm-dropout_before"),
    "flax_nnx": ("jax", "lstm-input"),
    "flax_linen": ("jax", "lstm and not optlstm"),
    "haiku": ("jax", "lstm"),
    "equinox": ("jax", "lstm"),
}
MICRO_STEPS, MICRO_BATCH, MICRO_WIDTH = 8, 16, 8  # keras_cases.STEPS, BATCH, WIDTH


def micro_child(calls: int) -> None:
    """Runs inside .tox/keras_jax: eager training calls of one LSTM layer, printed as one JSON line."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras
    import numpy as np
    from jax import monitoring

    events: dict[str, list[float]] = {}

    def on_duration(name: str, seconds: float, **_: Any) -> None:
        events.setdefault(name.rsplit("/", 1)[-1], []).append(seconds)

    def on_event(name: str, **_: Any) -> None:
        events.setdefault(name.rsplit("/", 1)[-1], []).append(0.0)

    monitoring.register_event_duration_secs_listener(on_duration)
    monitoring.register_event_listener(on_event)
    keras.utils.set_random_seed(0)
    layer = keras.layers.LSTM(MICRO_WIDTH, dropout=0.25, recurrent_dropout=0.25, return_sequences=True)
    layer.build((MICRO_BATCH, MICRO_STEPS, MICRO_WIDTH))
    x = keras.ops.convert_to_tensor(np.random.default_rng(0).random((MICRO_BATCH, MICRO_STEPS, MICRO_WIDTH), "float32"))
    digest, rows = hashlib.sha256(), []
    for _ in range(calls):
        events.clear()
        start, cpu = time.perf_counter(), time.process_time()
        y = np.asarray(layer(x, training=True))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        digest.update(y.tobytes())
        rows.append(
            {
                "s": seconds,
                "cpu": cpu,
                "compiles": len(events.get("backend_compile_duration", [])),
                "compile_s": sum(events.get("backend_compile_duration", [])),
                "hits": len(events.get("cache_hits", [])),
            }
        )
    print(json.dumps({"calls": rows, "sha256": digest.hexdigest()}))


def tox_python(env: str) -> Path:
    python = ROOT / ".tox" / env / "bin" / "python"
    if not python.exists():
        sys.exit(f"{python} is missing: create the env first (`tox -e {env} --notest`)")
    return python


SOURCE = ROOT  # the dropspec on the children's PYTHONPATH (--source)


def environment(cache: Path | None, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")} | extra
    env |= {"PYTHONPATH": str(SOURCE), "PYTHONHASHSEED": "0"}
    if cache is not None:
        env |= {"JAX_COMPILATION_CACHE_DIR": str(cache)} | CACHE_VARS
    return env


def micro(cache: Path | None, calls: int) -> dict[str, Any]:
    out = subprocess.run(
        [str(tox_python("keras_jax")), str(Path(__file__).resolve()), "--child", str(calls)],
        env=environment(cache, {"KERAS_BACKEND": "jax"}),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def conformance(adapter: str, out: Path, cache: Path | None) -> tuple[float, float]:
    """(wall s, CPU s of the run and its worker): CPU time is what other work on a shared machine disturbs least."""
    env_name, subset = SUBSETS[adapter]
    extra = {"KERAS_BACKEND": "jax"} if adapter.startswith("keras") else {}
    command = [str(tox_python(env_name)), "-m", "dropspec.cli", "run", "--adapter", adapter, "--out", str(out)]
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    command += ["-k", subset, "--exit-zero"]
    # cwd: `python -m` puts the working directory first on sys.path, ahead of PYTHONPATH
    subprocess.run(command, env=environment(cache, extra), check=True, capture_output=True, cwd=SOURCE)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return time.perf_counter() - start, cpu


def same_results(adapter: str, a: Path, b: Path) -> tuple[int, int, list[str]]:
    """(cases observed, mask arrays compared, differences): statuses, messages, observations, mask bytes."""
    import numpy as np

    ra, rb = (json.loads((d / f"{adapter}.json").read_text()) for d in (a, b))
    diffs = []
    status = {(r["clause"], r["case"]): (r["status"], r["message"]) for r in rb["results"]}
    for r in ra["results"]:
        if status.get((r["clause"], r["case"])) != (r["status"], r["message"]):
            diffs.append(f"result {r['clause']} :: {r['case']}")
    if len(ra["results"]) != len(rb["results"]):
        diffs.append(f"{len(ra['results'])} results against {len(rb['results'])}")
    cases = arrays = 0
    for cid, ca in ra["cases"].items():
        cb = rb["cases"].get(cid, {})
        if not ca.get("observation"):
            continue
        cases += 1
        oa, ob = ca["observation"], cb.get("observation") or {}
        for key in oa:
            if key not in ("seconds", "framework_seconds") and json.dumps(oa[key]) != json.dumps(ob.get(key)):
                diffs.append(f"observation {cid} {key}")
        if ca.get("masks_file"):
            with np.load(a / ca["masks_file"]) as za, np.load(b / cb["masks_file"]) as zb:
                if sorted(za.files) != sorted(zb.files):
                    diffs.append(f"mask arrays {cid}")
                for name in set(za.files) & set(zb.files):
                    arrays += 1
                    if za[name].dtype != zb[name].dtype or za[name].tobytes() != zb[name].tobytes():
                        diffs.append(f"mask {cid} {name}")
    return cases, arrays, diffs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=("micro", "conformance"))
    parser.add_argument("--calls", type=int, default=8)
    parser.add_argument("--adapters", default="keras_jax", help="comma-separated: " + ", ".join(SUBSETS))
    parser.add_argument("--out", type=Path, help="write the Markdown table here as well")
    parser.add_argument(
        "--source",
        type=Path,
        default=ROOT,
        help="the dropspec checkout the runs import (default this one; a `git archive HEAD` copy keeps edits made"
        " while the benchmark runs out of the comparison)",
    )
    args = parser.parse_args()
    global SOURCE
    SOURCE = args.source.resolve()
    if args.child:
        micro_child(args.child)
        return
    lines = [
        "# JAX's persistent compilation cache (generated by benchmarks/jax_cache.py)",
        "",
        f"{platform.machine()}, {os.cpu_count()} cores shared with other work, Python {platform.python_version()},"
        f" {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. One run each; the machine is shared with other"
        " jobs, so wall seconds move with the load: compare within a table, and prefer the CPU seconds.",
        "",
    ]
    work = Path(tempfile.mkdtemp(prefix="jax_cache_"))
    try:
        if args.only in (None, "micro"):
            cache = work / "micro_cache"
            runs = {"no cache": micro(None, args.calls), "cold cache": micro(cache, args.calls)}
            runs["warm cache (new process)"] = micro(cache, args.calls)
            lines += [
                f"## Eager `keras.layers.LSTM(8, dropout=0.25, recurrent_dropout=0.25)` on JAX, training, "
                f"T={MICRO_STEPS} B={MICRO_BATCH} H={MICRO_WIDTH}, {args.calls} calls in one process",
                "",
                "Per call: wall and CPU seconds (every thread of the process); JAX's backend-compile step (on a"
                " cache hit it loads the stored executable instead of compiling) and the persistent-cache hits, as"
                " `jax.monitoring` reports them.",
                "",
                "| cache | first call: wall / CPU s | later calls: wall / CPU s (median) | backend-compile steps per"
                " later call | their s | cache hits per later call | outputs (sha256) |",
                "|---|---|---|---|---|---|---|",
            ]
            for name, run in runs.items():
                first, later = run["calls"][0], run["calls"][1:]

                def median(key: str, rows: list[dict[str, float]] = later) -> float:
                    return sorted(r[key] for r in rows)[len(rows) // 2]

                lines.append(
                    f"| {name} | {first['s']:.3f} / {first['cpu']:.3f} | {median('s'):.3f} / {median('cpu'):.3f} |"
                    f" {median('compiles'):.0f} | {median('compile_s'):.3f} | {median('hits'):.0f} |"
                    f" {run['sha256'][:12]} |"
                )
            same = len({run["sha256"] for run in runs.values()}) == 1
            lines += ["", f"Outputs of every call identical with and without the cache: **{same}**.", ""]
            print("\n".join(lines), flush=True)
        if args.only in (None, "conformance"):
            adapters = args.adapters.split(",")
            lines += [
                "## `dropspec run -k SUBSET`: wall time, and the results against the run without the cache",
                "",
                "Wall and CPU seconds (the CPU time of the run and its worker process, which other work on a shared"
                " machine disturbs less than wall time) of one run each.",
                "",
                "| adapter | subset (-k) | cases | no cache: wall / CPU s | cold cache: wall / CPU s | "
                "warm cache (new process): wall / CPU s | mask arrays compared | differences |",
                "|---|---|---|---|---|---|---|---|",
            ]
            for adapter in adapters:
                cache, dirs = work / f"{adapter}_cache", {k: work / f"{adapter}_{k}" for k in ("none", "cold", "warm")}
                seconds = {"none": conformance(adapter, dirs["none"], None)}
                seconds["cold"] = conformance(adapter, dirs["cold"], cache)
                seconds["warm"] = conformance(adapter, dirs["warm"], cache)
                cases, arrays, diffs = 0, 0, []
                for k in ("cold", "warm"):
                    cases, n, d = same_results(adapter, dirs["none"], dirs[k])
                    arrays, diffs = arrays + n, diffs + [f"{k}: {x}" for x in d]
                wall_cpu = " | ".join(f"{seconds[k][0]:.0f} / {seconds[k][1]:.0f}" for k in ("none", "cold", "warm"))
                lines.append(
                    f"| {adapter} | `{SUBSETS[adapter][1]}` | {cases} | {wall_cpu} | {arrays} | {len(diffs)} |"
                )
                print(lines[-1], *diffs[:20], sep="\n", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

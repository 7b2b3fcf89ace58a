"""What a case costs against the framework itself: per framework, one LSTM configuration, the ratio

    case time / (framework runs x one bare training forward at the case's sizes)

at the suite's sizes and at T = 100 and T = 1000 (issue 16), and whether recovery stays exact at T = 1000 with
width 512.

- *case time*: ``dropspec.engine.observe`` of the case (inference check, mask recovery, replay, train/eval/train),
  after a warm-up case in the same process (imports and first compiles are no case's cost);
- *framework runs*: the adapter's ``run`` calls the case made; each builds the model, loads parameters and makes
  two or three training or inference calls (``forwards``), so a ratio near ``forwards / runs`` plus the build's
  share means dropspec itself adds little;
- *bare forward*: the model module's own ``call(model, x, h0, c0, training=True)`` on a model built and loaded
  once, the median after one warm-up call, at the case's T, batch and width;
- *build*: the model module's ``build`` + ``load``, the part of a run that is not a forward.

Times are CPU seconds of the process (``time.process_time``, every thread), with wall seconds beside them: on a
shared machine a long case is descheduled often and a short forward rarely, so wall-time ratios move with the load.
Each framework runs with one compute thread (``--threads``; see THREAD_VARS for why).

Exactness at T = 1000, width 512 (batch 8, to bound the float64 oracle's time): on the reference adapter the
recovered masks equal the masks it drew (it draws them from the case's seed, so they can be drawn again here); on
torch, where the drawn masks are inside torch, the replay of the recovered masks through the float64 oracle
matches torch's outputs (``replay_error <= 1``, nothing left unknown) and the fingerprint equals the suite-size
one. Each framework runs in its own tox env's python with this checkout on PYTHONPATH; Keras on JAX and Flax with
the JAX persistent compilation cache as ``tox.ini`` sets it for their envs.

    python3 benchmarks/case_ratio.py                       # every framework (about 15 minutes on 2 idle cores)
    python3 benchmarks/case_ratio.py --only torch,reference --steps 16,100
    python3 benchmarks/case_ratio.py --out benchmarks/CASE_RATIO.md
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
JAX_CACHE = {"JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1"}
# name -> (tox env, adapter, case id, extra environment); one LSTM configuration with dropout per framework
FRAMEWORKS: dict[str, tuple[str, str, str, dict[str, str]]] = {
    "reference": ("reference", "reference", "lstm-variational", {}),
    "torch": ("torch", "torch", "lstmcell-locked-loop-recurrent", {}),
    "keras_tf": ("keras_tf", "keras_tf", "lstm-layer-both-impl2", {"KERAS_BACKEND": "tensorflow"}),
    "keras_jax": ("keras_jax", "keras_jax", "lstm-layer-both-impl2", {"KERAS_BACKEND": "jax", **JAX_CACHE}),
    "keras_torch": ("keras_torch", "keras_torch", "lstm-layer-both-impl2", {"KERAS_BACKEND": "torch"}),
    "flax_linen": ("jax", "flax_linen", "lstm-dropout_before_rnn-broadcast_time", JAX_CACHE),
}
# one compute thread per framework (--threads 1, the default): under load, torch's 2-thread pool spins at every
# barrier while the other thread is descheduled, and a 0.7 ms forward measured 0.001-1.4 s (0.25 CPU s) on this
# machine; with one thread it measured 0.7-1.1 ms. The suite itself runs with each framework's default threads.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
EXACT = ("reference", "torch")  # the adapters whose recovery is checked at T = 1000, width 512
SOURCE = ROOT  # the dropspec checkout the children import (--source)
EXACT_STEPS, EXACT_WIDTH, EXACT_BATCH = 1000, 512, 8


# ---------------------------------------------------------------- inside the framework's env (--child) ----------
def resized(name: str, case: Any, steps: int, batch: int, width: int) -> Any:
    """``case`` at other sizes: the cell, the case's steps and batch, and the sizes its config names."""
    config = json.loads(json.dumps(case.config))
    if name.startswith("keras"):
        config["args"]["units"] = width
        config["input_shape"] = [batch, steps, width]
    elif name == "torch":
        config["args"] |= {"input_size": width, "hidden_size": width}
    elif name == "flax_linen":
        config["cell"]["features"] = width
    elif name != "reference":  # the reference's config names no size
        raise ValueError(f"no resize rule for {name}")
    cell = dataclasses.replace(case.cell, input_size=width, hidden_size=width)
    return dataclasses.replace(
        case, id=f"{case.id}@T{steps}B{batch}W{width}", cell=cell, config=config, steps=steps, batch=batch
    )


class Clock:
    """Wall and CPU seconds (``time.process_time``: every thread of this process). On a machine shared with other
    work the CPU time is the measure: a case of several seconds is descheduled often, a 1 ms forward rarely, so
    wall-time ratios drift with the load while CPU-time ratios do not."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def bare_forward(adapter: Any, case: Any) -> dict[str, float]:
    """Median wall and CPU s of one training forward (after a warm-up call), and of build + load, at the case's
    sizes; the forward repeats until it has run at least 3 times and 0.2 CPU s (at most 25 times)."""
    import numpy as np

    from dropspec.case import CallInputs
    from dropspec.engine import random_params

    rng = np.random.default_rng(0)
    params = random_params(case.cell, rng)
    x = rng.standard_normal((case.steps, case.batch, case.cell.input_size))
    h0 = 0.5 * rng.standard_normal((case.batch, case.cell.hidden_size))
    c0 = 0.5 * rng.standard_normal((case.batch, case.cell.hidden_size))
    builds: list[tuple[float, float]] = []
    if adapter.name == "reference":  # its framework is the float64 oracle: one call, masks drawn as the scheme says
        one = [CallInputs(x=x, h0=h0, c0=c0)]

        def forward(training: bool = True) -> None:
            adapter.run(case, params, one, seed=case.seed, training=training)

        builds = [(0.0, 0.0)]
    else:
        fns = adapter.functions(case)
        for _ in range(2):
            clock = Clock()
            model = fns["build"](fns["CONFIG"], case.seed)
            fns["load"](model, params.w_ih, params.w_hh, params.b_ih, params.b_hh)
            builds.append(clock.read())

        def forward(training: bool = True) -> None:
            fns["call"](model, x, h0, c0, training)

    # warm-up: both paths, as the warm-up case does at the suite's sizes (a jitted apply compiles the inference
    # path apart from the training one, once per shape); the case then pays no compile the suite's sizes would not
    forward(False)
    forward()
    times: list[tuple[float, float]] = []
    while len(times) < 3 or (sum(c for _, c in times) < 0.2 and len(times) < 25):
        clock = Clock()
        forward()
        times.append(clock.read())
    return {
        "forward_s": statistics.median(w for w, _ in times),
        "forward_cpu": statistics.median(c for _, c in times),
        "build_s": statistics.median(w for w, _ in builds),
        "build_cpu": statistics.median(c for _, c in builds),
    }


def drawn_equal_recovered(adapter: Any, case: Any, recovered: Any) -> bool:
    """The reference adapter's masks for the case's seed, drawn again, against the recovered ones (1e-9)."""
    import numpy as np

    from dropspec.engine import CALLS
    from dropspec.masks import canonical

    drawn = adapter.masks(case, CALLS, np.random.default_rng(case.seed))
    for call in range(CALLS):
        want = canonical(case.cell, drawn[call], case.steps, case.batch)
        for site in case.cell.sites:
            a, b = want.get(site), recovered.masks[call].get(site)
            if (a is None) != (b is None):
                return False
            if a is not None and (not np.all(np.isfinite(b)) or np.max(np.abs(np.asarray(a) - b)) > 1e-9):
                return False
    return True


def child(name: str, steps: list[int], exact: tuple[int, int, int] | None) -> None:
    from dropspec.engine import observe
    from dropspec.registry import load_adapter

    _, adapter_name, case_id, _ = FRAMEWORKS[name]
    adapter = load_adapter(adapter_name)
    base = next(c for c in adapter.cases() if c.id == case_id)
    inside = {"forwards": 0, "cpu": 0.0}
    original_run = adapter.run

    def counted_run(case: Any, params: Any, calls: Any, **kwargs: Any) -> Any:
        inside["forwards"] += len(calls)
        clock = Clock()
        try:
            return original_run(case, params, calls, **kwargs)
        finally:
            inside["cpu"] += clock.read()[1]

    adapter.run = counted_run
    observe(adapter, resized(name, base, base.steps, base.batch, base.cell.hidden_size))  # warm-up
    rows = [(t, base.batch, base.cell.hidden_size) for t in steps] + ([exact] if exact else [])
    suite_fingerprint = None
    for t, batch, width in rows:
        case = resized(name, base, t, batch, width)
        bare = bare_forward(adapter, case)
        inside.update(forwards=0, cpu=0.0)
        clock = Clock()
        obs = observe(adapter, case)
        _, case_cpu = clock.read()
        fingerprint = obs.fingerprint.as_dict() if obs.fingerprint is not None else None
        if t == base.steps and width == base.cell.hidden_size:
            suite_fingerprint = fingerprint
        row = {
            "framework": name,
            "case": base.id,
            "T": t,
            "batch": batch,
            "width": width,
            "error": obs.error["type"] + ": " + obs.error["message"][:200] if obs.error else None,
            "runs": obs.runs,
            "forwards": inside["forwards"],
            "case_s": obs.seconds,
            "case_cpu": case_cpu,
            "framework_s": obs.framework_seconds,
            "framework_cpu": inside["cpu"],
            **bare,
            "ratio_cpu": case_cpu / (obs.runs * bare["forward_cpu"]) if obs.runs and bare["forward_cpu"] else None,
            "ratio_wall": obs.seconds / (obs.runs * bare["forward_s"]) if obs.runs else None,
            "replay_ok": obs.replay_error is not None and obs.replay_error <= 1.0 and not obs.replay_unknown,
            "behaviour": obs.behaviour.text if obs.behaviour else None,
        }
        if (t, batch, width) == exact:
            row["exact_check"] = True
            row["same_fingerprint_as_suite_size"] = _structure(fingerprint) == _structure(suite_fingerprint)
            if adapter_name == "reference":
                row["drawn_equal_recovered"] = drawn_equal_recovered(adapter, case, obs.recovered)
        print(json.dumps(row), flush=True)


def _structure(fingerprint: dict[str, Any] | None) -> Any:
    """A fingerprint without its measured numbers (rate, scale, draws, coincidence), which vary with the sizes."""
    if fingerprint is None:
        return None
    keep = ("site", "resample", "gates", "batch", "binary", "directions")
    sites = {k: {f: v.get(f) for f in keep} for k, v in (fingerprint.get("sites") or {}).items()}
    return sites, fingerprint.get("carried_state_dropped")


# ---------------------------------------------------------------- the driver -----------------------------------
def run_framework(name: str, steps: list[int], exact: str, threads: int, cache_dir: Path) -> list[dict[str, Any]]:
    env_name, _, _, extra = FRAMEWORKS[name]
    python = ROOT / ".tox" / env_name / "bin" / "python"
    if not python.exists():
        return [{"framework": name, "error": f"{python} is missing: `tox -e {env_name} --notest` creates it"}]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "KERAS_"))} | extra
    env |= {"PYTHONPATH": str(SOURCE), "PYTHONHASHSEED": "0", "TF_CPP_MIN_LOG_LEVEL": "2"}
    if threads:
        env |= dict.fromkeys(THREAD_VARS, str(threads))
        env["XLA_FLAGS"] = f"--xla_cpu_multi_thread_eigen={'false' if threads == 1 else 'true'}"
        env["XLA_FLAGS"] += f" intra_op_parallelism_threads={threads}"
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" in extra:
        env["JAX_COMPILATION_CACHE_DIR"] = str(cache_dir / env_name)
    command = [
        str(python),
        str(Path(__file__).resolve()),
        "--child",
        name,
        "--steps",
        ",".join(map(str, steps)),
        "--exact",
        exact,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode:
        rows.append({"framework": name, "error": f"exit {done.returncode}: {done.stderr.strip()[-400:]}"})
    for row in rows:
        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict[str, Any]], started: str, threads: int) -> str:
    lines = [
        "# Case time against the framework's own forward (generated by benchmarks/case_ratio.py)",
        "",
        f"{platform.machine()}, {os.cpu_count()} cores shared with other work, Python {platform.python_version()},"
        f" started {started}; one run of the script, each framework in its own tox env's python. The machine was"
        " shared with other jobs, so seconds are noisy and not comparable across rows; the ratios divide times"
        " measured in one process minutes apart, and are taken on CPU time (every thread of the process), which"
        " the load disturbs far less than wall time (the wall-time ratio is shown beside it). "
        + (
            f"Every framework ran with {threads} compute thread(s) (OMP/MKL/TF/XLA variables set by the script;"
            " the suite runs with each framework's default)."
            if threads
            else "Every framework ran with its default threads."
        ),
        "",
        "**ratio** = case CPU time / (runs x one bare training forward's CPU time), the issue's measure. A run builds"
        " the model, loads parameters and makes its forwards (two per run, three for the train/eval/train run), so"
        " the ratio is about forwards/runs + build/forward even where dropspec costs nothing; **per forward** ="
        " case / (forwards x bare forward) removes the first term; **dropspec / framework** = (case - inside the"
        " runs) / inside the runs, CPU time: dropspec's own share (issue target: at most 0.5 on torch and Keras).",
        "",
        "| framework | case | T | batch | width | runs | forwards | bare forward CPU s | build CPU s | case CPU s |"
        " inside runs CPU s | ratio | per forward | dropspec / framework | ratio on wall time | replay exact |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    exact = []
    for r in rows:
        if "T" not in r or r.get("error"):
            where = f"`{r['case']}` | {r['T']}" if "T" in r else "- |"
            lines.append(f"| {r['framework']} | {where} | | | | | | | | | error: {r['error'][:160]} | | | | |")
            continue
        own = (r["case_cpu"] - r["framework_cpu"]) / r["framework_cpu"] if r["framework_cpu"] else float("nan")
        per_forward = r["case_cpu"] / (r["forwards"] * r["forward_cpu"])
        lines.append(
            f"| {r['framework']} | `{r['case']}` | {r['T']} | {r['batch']} | {r['width']} | {r['runs']} |"
            f" {r['forwards']} | {r['forward_cpu']:.4f} | {r['build_cpu']:.4f} | {r['case_cpu']:.2f} |"
            f" {r['framework_cpu']:.2f} | **{r['ratio_cpu']:.1f}** | {per_forward:.2f} | {own:.2f} |"
            f" {r['ratio_wall']:.1f} | {r['replay_ok']} |"
        )
        if r.get("exact_check"):
            exact.append(r)
    sizes = {(r["T"], r["width"], r["batch"]) for r in exact}
    lines += ["", "## Recovery at " + ", ".join(f"T = {t}, width {w}, batch {b}" for t, w, b in sorted(sizes)), ""]
    for r in exact:
        drawn = r.get("drawn_equal_recovered")
        lines.append(
            f"- {r['framework']} `{r['case']}`: replay of the recovered masks through the oracle matches the"
            f" framework: **{r['replay_ok']}**; mask structure as at the suite's size:"
            f" **{r.get('same_fingerprint_as_suite_size')}**"
            + (f"; recovered masks equal the drawn ones (1e-9): **{drawn}**" if drawn is not None else "")
            + f" ({r['runs']} runs, case {r['case_cpu']:.1f} CPU s, {r['case_s']:.1f} wall s)."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument(
        "--exact",
        default=f"{EXACT_STEPS},{EXACT_WIDTH},{EXACT_BATCH}",
        help="T,width,batch of the exactness check (reference and torch); 'none' skips it",
    )
    parser.add_argument("--steps", default="suite,100,1000", help="sequence lengths; 'suite' is the case's own")
    parser.add_argument("--threads", type=int, default=1, help="compute threads per framework; 0: its default")
    parser.add_argument("--only", help="comma-separated framework names: " + ", ".join(FRAMEWORKS))
    parser.add_argument("--out", type=Path, help="write the Markdown table here")
    parser.add_argument(
        "--from-rows",
        type=Path,
        nargs="+",
        help="no runs: the table from rows saved from earlier runs (the JSON lines they print on stderr)",
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=ROOT,
        help="the dropspec checkout the children import (default this one; a `git archive HEAD` copy keeps edits"
        " made while the benchmark runs out of it)",
    )
    args = parser.parse_args()
    global SOURCE
    SOURCE = args.source.resolve()
    if args.child:
        from dropspec.registry import load_adapter

        _, adapter_name, case_id, _ = FRAMEWORKS[args.child]
        suite = next(c.steps for c in load_adapter(adapter_name).cases() if c.id == case_id)
        steps = [suite if s == "suite" else int(s) for s in args.steps.split(",")]
        exact = None
        if args.child in EXACT and args.exact != "none":
            t, width, batch = (int(v) for v in args.exact.split(","))
            exact = (t, batch, width)
        child(args.child, list(dict.fromkeys(steps)), exact)
        return
    names = args.only.split(",") if args.only else list(FRAMEWORKS)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows: list[dict[str, Any]] = []
    if args.from_rows:
        for path in args.from_rows:
            rows += [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
        rows = sorted((r for r in rows if r["framework"] in names), key=lambda r: names.index(r["framework"]))
        started = "(rows from " + ", ".join(p.name for p in args.from_rows) + ")"
    else:
        with tempfile.TemporaryDirectory(prefix="case_ratio_jax_cache_") as cache:
            for name in names:
                rows += run_framework(name, args.steps.split(","), args.exact, args.threads, Path(cache))
    text = table(rows, started, args.threads)
    print(text)
    if args.out:
        args.out.write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

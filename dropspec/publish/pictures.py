"""Pictures of recovered masks: time across, units down, one panel per site and gate.

For each case with masks (``DIR/ADAPTER/CASE.npz``, arrays ``SITE`` of shape
``(calls, gates, T, samples, units)``), one small PNG shows the first samples of call 0 and
call 1 side by side, so per-step vs per-sequence (vertical stripes vs horizontal bands),
shared vs per-gate (identical vs different panels in a row), per-sample vs shared (the two
sample rows) and fresh masks per call are visible at a glance. Unobservable elements (NaN)
are drawn in orange.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .png import GLYPH_H, draw_text, encode_png, text_width

GATE_NAMES = {"rnn": ["h"], "lstm": ["i", "f", "g", "o"], "gru": ["r", "z", "n"]}
RAMP = 200  # palette entries 0..199: a ramp from "dropped" (dark) to "the largest kept value" (light)
NAN, BACKGROUND, TEXT, MUTED = 200, 201, 202, 203
DROPPED_RGB, KEPT_RGB = np.array([27, 42, 74]), np.array([214, 228, 245])
NAN_RGB = (245, 130, 32)


def palette() -> np.ndarray:
    t = np.linspace(0.0, 1.0, RAMP)[:, None]
    ramp = np.round(DROPPED_RGB * (1 - t) + KEPT_RGB * t)
    extra = np.array([NAN_RGB, (255, 255, 255), (40, 40, 48), (120, 124, 135)])
    return np.concatenate([ramp, extra]).astype(np.uint8)


def cell_kind(cell_name: str | None) -> str:
    """``gru_reset_after`` -> ``gru``; unknown names pass through."""
    name = (cell_name or "").lower()
    for kind in GATE_NAMES:
        if name == kind or name.startswith(kind + "_") or name.startswith(kind + "-"):
            return kind
    return name


def gate_labels(cell_name: str | None, gates: int) -> list[str]:
    names = GATE_NAMES.get(cell_kind(cell_name), [])
    if gates == 1:
        return ["all gates" if len(names) > 1 else (names[0] if names else "")]
    if len(names) == gates:
        return [f"gate {g}" for g in names]
    return [f"gate {g}" for g in range(gates)]


def mask_picture(arrays: dict[str, np.ndarray], cell_name: str | None = None, samples: int = 2) -> bytes | None:
    """A PNG of the masks in ``arrays`` (SITE -> (calls, gates, T, samples, units)); None when empty."""
    sites = [(s, np.asarray(a, dtype=float)) for s, a in arrays.items() if np.asarray(a).ndim == 5 and a.size]
    if not sites:
        return None
    calls = min(2, max(a.shape[0] for _, a in sites))
    steps = max(a.shape[2] for _, a in sites)
    units = max(a.shape[4] for _, a in sites)
    n_samples = min(samples, max(a.shape[3] for _, a in sites))
    max_gates = max(a.shape[1] for _, a in sites)
    cs = int(np.clip(64 // max(steps, units, 1), 1, 4))  # pixels per mask element
    pw, ph = steps * cs, units * cs
    gap, call_gap, row_gap, site_gap, margin = 3, 14, 3, 8, 6
    labels = [s for s, _ in sites] + [f"sample {n}" for n in range(n_samples)]
    left = margin + max(text_width(t) for t in labels) + 8
    gate_cols = [gate_labels(cell_name, a.shape[1]) for _, a in sites]
    panel_w = max(pw, max(text_width(g) for cols in gate_cols for g in cols))
    block_w = max_gates * (panel_w + gap) - gap
    width = left + calls * block_w + (calls - 1) * call_gap + margin
    header = margin + GLYPH_H + 4
    block_h = [GLYPH_H + 3 + n_samples * (ph + row_gap) - row_gap for _ in sites]
    legend_h = GLYPH_H + 10
    height = header + sum(block_h) + site_gap * (len(sites) - 1) + 8 + legend_h + margin

    finite = np.concatenate([a[np.isfinite(a)].ravel() for _, a in sites])
    top = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    legend = ((0, "0 dropped"), (RAMP - 1, f"{top:.3g} kept"), (NAN, "unobservable"))
    legend_w = sum(28 + text_width(words) for _, words in legend) + text_width("time >, units down")
    width = max(width, 2 * margin + legend_w)
    canvas = np.full((height, width), BACKGROUND, dtype=np.uint8)

    for call in range(calls):
        x0 = left + call * (block_w + call_gap)
        title = f"call {call}"
        draw_text(canvas, x0 + (block_w - text_width(title)) // 2, margin, title, TEXT)
        canvas[margin + GLYPH_H + 1, x0 : x0 + block_w] = MUTED

    y = header
    for (site, a), cols, bh in zip(sites, gate_cols, block_h):
        draw_text(canvas, margin, y, site, TEXT)
        for call in range(calls):
            x_call = left + call * (block_w + call_gap)
            for g in range(a.shape[1]):
                x = x_call + g * (panel_w + gap)
                draw_text(canvas, x, y, cols[g], MUTED)
                for n in range(n_samples):
                    py = y + GLYPH_H + 3 + n * (ph + row_gap)
                    if call >= a.shape[0] or n >= a.shape[3]:
                        continue
                    m = a[call, g, :, n, :].T  # (units, T): time across, units down
                    idx = np.full(m.shape, NAN, dtype=np.uint8)
                    ok = np.isfinite(m)
                    idx[ok] = np.clip(np.round(m[ok] / top * (RAMP - 1)), 0, RAMP - 1).astype(np.uint8)
                    big = np.kron(idx, np.ones((cs, cs), dtype=np.uint8))
                    canvas[py : py + big.shape[0], x : x + big.shape[1]] = big
        for n in range(n_samples):
            py = y + GLYPH_H + 3 + n * (ph + row_gap)
            draw_text(canvas, margin + 6, py + (ph - GLYPH_H) // 2, f"sample {n}", MUTED)
        y += bh + site_gap

    # legend: the three colours, and which way time runs
    y = height - margin - legend_h + 6
    x = margin
    for index, words in legend:
        canvas[y : y + GLYPH_H - 1, x : x + 10] = index
        draw_text(canvas, x + 14, y, words, TEXT)
        x += 14 + text_width(words) + 14
    draw_text(canvas, x, y, "time >, units down", MUTED)
    return encode_png(canvas, palette())


def write_pictures(runs: list[dict[str, Any]], results_dir: Path, out_dir: Path) -> dict[str, dict[str, str]]:
    """``out_dir/masks/ADAPTER/CASE.png`` for every case whose results saved masks with a site in them,
    and ``CASE-state.png`` for every case whose carried state was measured (``dropspec.growth``).

    Returns ADAPTER -> CASE (``CASE#state`` for the state plot) -> the picture's path relative to ``out_dir``."""
    written: dict[str, dict[str, str]] = {}
    for run in runs:
        name = run["adapter"]
        for case_id, record in run.get("cases", {}).items():
            relative = record.get("masks_file")
            if not relative or not (results_dir / relative).is_file():
                continue
            growth = (record.get("observation") or {}).get("state_growth")
            picture = state_picture(growth) if growth else None
            if picture is not None:
                target = out_dir / "masks" / name / f"{case_id}-state.png"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(picture)
                written.setdefault(name, {})[f"{case_id}#state"] = f"masks/{name}/{case_id}-state.png"
            with np.load(results_dir / relative) as data:
                arrays = {site: data[site] for site in data.files}
            png = mask_picture(arrays, record.get("cell"))
            if png is None:
                continue
            target = out_dir / "masks" / name / f"{case_id}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(png)
            written.setdefault(name, {})[case_id] = f"masks/{name}/{case_id}.png"
    return written


# -- the carried state's norm over time -------------------------------------------------------------------
PLOT_PALETTE = np.array(
    [(255, 255, 255), (40, 40, 48), (200, 204, 212), (27, 42, 74), (120, 124, 135), (214, 96, 20), (245, 190, 140)],
    dtype=np.uint8,
)
WHITE, INK, GRID, PROBE_TRAIN, PROBE_INFER, RANDOM_TRAIN, RANDOM_INFER = range(7)
SERIES = (
    ("probe_training", PROBE_TRAIN, "carry probe, training"),
    ("probe_inference", PROBE_INFER, "carry probe, inference"),
    ("random_training", RANDOM_TRAIN, "random weights, training"),
    ("random_inference", RANDOM_INFER, "random weights, inference"),
)


def _line(canvas: np.ndarray, x0: float, y0: float, x1: float, y1: float, color: int) -> None:
    n = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
    xs = np.round(np.linspace(x0, x1, n + 1)).astype(int)
    ys = np.round(np.linspace(y0, y1, n + 1)).astype(int)
    ok = (xs >= 0) & (xs < canvas.shape[1]) & (ys >= 0) & (ys < canvas.shape[0])
    canvas[ys[ok], xs[ok]] = color
    canvas[np.clip(ys[ok] + 1, 0, canvas.shape[0] - 1), xs[ok]] = color  # two pixels thick


def state_picture(growth: dict[str, Any]) -> bytes | None:
    """A PNG of the state norm per step (log scale): the carry probe and the random weights, each in
    training and in inference; None when no curve was measured."""
    series = [(key, color, words, np.asarray(growth[key], float)) for key, color, words in SERIES if growth.get(key)]
    series = [(k, c, w, v) for k, c, w, v in series if v.size and np.all(np.isfinite(v)) and np.all(v > 0)]
    if not series:
        return None
    logs = np.concatenate([np.log10(v) for *_, v in series])
    low, high = float(np.floor(logs.min())), float(np.ceil(logs.max()))
    high = max(high, low + 1)
    steps = max(v.size for *_, v in series)
    margin, left, plot_w, plot_h = 6, 40, 300, 120
    legend_h = len(series) * (GLYPH_H + 4)
    title = f"{growth.get('state', 'h')} norm per step, x{growth.get('growth_per_step', float('nan')):.3f} per step"
    width, height = left + plot_w + margin, margin + GLYPH_H + 6 + plot_h + GLYPH_H + 10 + legend_h + margin
    canvas = np.full((height, width), WHITE, dtype=np.uint8)
    draw_text(canvas, margin, margin, title, INK)
    top = margin + GLYPH_H + 6

    def xy(step: float, value: float) -> tuple[float, float]:
        x = left + step / max(steps - 1, 1) * (plot_w - 1)
        return x, top + (high - np.log10(value)) / (high - low) * (plot_h - 1)

    for decade in range(int(low), int(high) + 1):
        y = int(round(xy(0, 10.0**decade)[1]))
        canvas[min(y, height - 1), left : left + plot_w] = GRID
        draw_text(canvas, margin, max(y - GLYPH_H // 2, 0), f"1e{decade}", INK)
    canvas[top : top + plot_h, left] = INK
    canvas[top + plot_h - 1, left : left + plot_w] = INK
    draw_text(canvas, left, top + plot_h + 3, "step 0", INK)
    draw_text(canvas, left + plot_w - text_width(f"step {steps - 1}"), top + plot_h + 3, f"step {steps - 1}", INK)
    for _, color, _, values in series:
        points = [xy(t, v) for t, v in enumerate(values)]
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            _line(canvas, x0, y0, x1, y1, color)
    y = top + plot_h + GLYPH_H + 10
    for _, color, words, _ in series:
        canvas[y + 2 : y + GLYPH_H - 2, margin : margin + 12] = color
        draw_text(canvas, margin + 16, y, words, INK)
        y += GLYPH_H + 4
    return encode_png(canvas, PLOT_PALETTE)

"""Pictures of recovered masks and plots of the carried state, drawn with matplotlib as small SVG files.

Mask picture, one per case (``masks/ADAPTER/CASE.svg``): for each site, the first samples of call 0
and call 1, one panel per gate, time across and units down. Per-step vs per-sequence reads as
vertical stripes vs horizontal bands, shared vs per-gate as identical vs different panels in a row,
per-sample vs shared as the two sample rows, fresh masks per call as the two calls differing. Every
colour a picture uses is in its legend: dropped (0), kept and scaled (the value), kept unscaled (1 where
the site drops), not dropped (a site or call without a mask), unobservable (NaN: recovery cannot see
the element, it is never guessed). The masks are drawn as images (a few hundred pixels, embedded in
the SVG), the axes, ticks and words as vectors.

State plot (``masks/ADAPTER/CASE-state.svg``): the carried state's norm per step, log scale, for
the carry probe and the random weights, each in training and in inference (``dropspec.growth``).

matplotlib is the ``report`` extra (``pip install dropspec[report]``); without it no picture is
written and the page says so.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np

GATE_NAMES = {"rnn": ["h"], "lstm": ["i", "f", "g", "o"], "gru": ["r", "z", "n"]}
MAX_CALLS, MAX_SAMPLES = 2, 2
# colours: dark for a dropped element, light for kept; orange is reserved for NaN (unobservable)
DROPPED, NOT_DROPPED, UNSCALED, UNOBSERVABLE = "#1b2a4a", "#e3e6ea", "#6cc0b0", "#f58220"
KEPT = ["#8db8ec", "#c9a2de", "#a8d672", "#f2c14e", "#e88fa0", "#7fd3e8"]  # one per distinct kept value
# matplotlib's defaults made quieter and reproducible: text stays text (small files, selectable),
# no date in the metadata and fixed ids so that a rerun over the same results rewrites identical files
STYLE = {
    "svg.fonttype": "none",
    "svg.hashsalt": "dropspec",
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 9,
    "axes.edgecolor": "#59636e",
    "xtick.color": "#3b434b",
    "ytick.color": "#3b434b",
}


def available() -> str | None:
    """None when pictures can be drawn, else why not (the missing extra and how to install it)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "matplotlib is not installed: `pip install 'dropspec[report]'` (or run `tox -e report`)"
    return None


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


def _svg(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return buffer.getvalue()


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def mask_categories(sites: list[tuple[str, np.ndarray]]) -> tuple[list[tuple[str, str]], dict[str, np.ndarray]]:
    """The legend, as (words, colour) in drawing order, and each site's array of category indices
    (same shape as the masks). A (site, call) slice without a zero and with only ones is 'not dropped';
    a 1 where the site drops elsewhere is 'kept, unscaled'; every other kept value gets its own colour."""
    kept = sorted(
        {
            round(float(v), 4)
            for _, a in sites
            for v in np.unique(a[np.isfinite(a)])
            if v != 0 and round(float(v), 4) != 1
        }
    )
    if len(kept) > len(KEPT):  # more kept values than colours: a ramp would hide which is which, say so instead
        raise ValueError(f"{len(kept)} distinct kept values ({kept[:8]}...): a mask picture shows at most {len(KEPT)}")
    legend: list[tuple[str, str]] = [("dropped (0)", DROPPED)]
    legend += [(f"kept, scaled ×{v:.4g}", KEPT[i]) for i, v in enumerate(kept)]
    legend += [("kept, unscaled (1)", UNSCALED), ("not dropped (1)", NOT_DROPPED), ("unobservable (NaN)", UNOBSERVABLE)]
    index = {words: i for i, (words, _) in enumerate(legend)}
    coded: dict[str, np.ndarray] = {}
    for site, a in sites:
        codes = np.full(a.shape, index["unobservable (NaN)"], dtype=np.int8)
        for call in range(a.shape[0]):
            m, c = a[call], codes[call]
            finite = np.isfinite(m)
            undropped = not np.any(m[finite] == 0) and np.all(np.round(m[finite], 4) == 1)
            c[finite & (m == 0)] = index["dropped (0)"]
            c[finite & (np.round(m, 4) == 1)] = index["not dropped (1)" if undropped else "kept, unscaled (1)"]
            for i, v in enumerate(kept):
                c[finite & (np.round(m, 4) == v)] = index[legend[1 + i][0]]
        coded[site] = codes
    used = sorted({int(i) for codes in coded.values() for i in np.unique(codes)})
    renumber = {old: new for new, old in enumerate(used)}
    lookup = np.zeros(len(legend), dtype=np.int8)
    for old, new in renumber.items():
        lookup[old] = new
    return [legend[i] for i in used], {site: lookup[codes] for site, codes in coded.items()}


# more would shrink an element below about five pixels in the page's side panel; the axis label says what is shown
MAX_STEPS, MAX_UNITS = 12, 8
WIDTH = 7.0  # inches: 672 CSS pixels (matplotlib writes points, a browser draws 4/3 px each), the side panel's width


def _tidy(svg: bytes) -> bytes:
    """matplotlib's SVG without what a browser ignores or repeats: indentation, ids nothing refers to, the
    long font fallback list on every label, and every inline style, written once as a class (matplotlib
    styles each tick and label inline: most of a picture's bytes)."""
    text = svg.decode()
    text = re.sub(r">\s+<", "><", text)
    text = re.sub(r' id="(?:figure|axes|patch|line2d|text|xtick|ytick|legend|matplotlib\.axis)_\d+"', "", text)
    text = re.sub(r"font-family: [^;\"]*", "font-family: sans-serif", text)
    text = re.sub(r' transform="rotate\(-0 [\d.]+ [\d.]+\)"', "", text)  # a rotation by 0 degrees
    # coordinates to 1/100 pt, in geometry attributes only (a label's words keep every digit)
    text = re.sub(
        r' (d|x|y|transform)="([^"]*)"',
        lambda m: f' {m.group(1)}="' + re.sub(r"(\d+\.\d\d)\d+", r"\1", m.group(2)) + '"',
        text,
    )
    classes: dict[str, str] = {}

    def to_class(m: re.Match[str]) -> str:
        return f' class="s{classes.setdefault(m.group(1), str(len(classes)))}"'

    head, sep, body = text.partition("</defs>")
    body = re.sub(r' style="([^"]*)"', to_class, body)
    rules = "".join(f".s{n}{{{style}}}" for style, n in classes.items())
    # an element's own class outranks matplotlib's '*' rule exactly as its inline style did
    head = head.replace("</style>", rules + "</style>", 1)
    return (head + sep + body).encode()


def _frames(boxes: list[tuple[int, int, int, int]]) -> Any:
    """A thin outline around every block, as one path (one SVG element however many blocks): a light
    colour such as 'not dropped' would otherwise melt into the background."""
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path as MplPath

    vertices, codes = [], []
    for x, y, w, h in boxes:
        vertices += [(x, y), (x + w, y), (x + w, y + h), (x, y + h), (x, y)]
        codes += [MplPath.MOVETO, MplPath.LINETO, MplPath.LINETO, MplPath.LINETO, MplPath.CLOSEPOLY]
    return PathPatch(MplPath(vertices, codes), fill=False, edgecolor="#8c959f", linewidth=0.5)


def _axis_ticks(starts: list[int], n: int, labelled: set[int]) -> tuple[list[float], list[str]]:
    """Ticks at the first and last element of every block (the element's centre); the blocks starting at
    ``labelled`` say the index, the others repeat it without words (the blocks are the same size)."""
    ticks, labels = [], []
    for start in starts:
        for i in sorted({0, n - 1}):
            ticks.append(start + i + 0.5)
            labels.append(str(i) if start in labelled else "")
    return ticks, labels


def mask_picture(
    arrays: dict[str, np.ndarray], cell_name: str | None = None, samples: int = MAX_SAMPLES
) -> bytes | None:
    """An SVG of the masks in ``arrays`` (SITE -> (calls, gates, T, samples, units)); None when empty.

    One row per site; in it, call 0 then call 1, one block per gate (time across, units down), the
    samples one under the other. At most ``MAX_STEPS`` steps and ``MAX_UNITS`` units are drawn."""
    sites = [
        (s, np.asarray(a, dtype=float)) for s, a in arrays.items() if np.asarray(a).ndim == 5 and np.asarray(a).size
    ]
    if not sites:
        return None
    import matplotlib
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    full_steps = max(a.shape[2] for _, a in sites)
    full_units = max(a.shape[4] for _, a in sites)
    sites = [(s, a[:MAX_CALLS, :, :MAX_STEPS, :samples, :MAX_UNITS]) for s, a in sites]
    legend, coded = mask_categories(sites)
    cmap = ListedColormap([colour for _, colour in legend])
    norm = BoundaryNorm(np.arange(len(legend) + 1) - 0.5, len(legend))
    calls = max(a.shape[0] for _, a in sites)
    gates = max(a.shape[1] for _, a in sites)
    steps = max(a.shape[2] for _, a in sites)
    n_samples = max(a.shape[3] for _, a in sites)
    units = max(a.shape[4] for _, a in sites)
    # gaps are whole elements: each site is one image, its gaps transparent (masked), so the SVG stays small
    gate_gap, call_gap, sample_gap = 1, max(3, steps // 2), 1
    call_width = gates * steps + (gates - 1) * gate_gap
    width = calls * call_width + (calls - 1) * call_gap
    height = n_samples * units + (n_samples - 1) * sample_gap
    element = min(0.14, (WIDTH - 1.4) / width)  # inches per mask element, 1.4 in for the labels around
    row_height = element * height + 0.75  # the block, its gate names and its step ticks
    cmap = cmap.with_extremes(bad=(0, 0, 0, 0))
    with matplotlib.rc_context(STYLE):
        fig = _figure(element * width + 1.5, row_height * len(sites) + 0.85)
        axes = fig.subplots(len(sites), 1, squeeze=False)[:, 0]
        for ax, (site, a) in zip(axes, sites):
            labels = gate_labels(cell_name, a.shape[1])
            canvas = np.ma.masked_all((height, width), dtype=np.int8)
            x_starts, frames = [], []
            for call in range(a.shape[0]):
                for g in range(a.shape[1]):
                    x0 = call * (call_width + call_gap) + g * (steps + gate_gap)
                    x_starts.append(x0)
                    ax.text(x0, -0.6, labels[g], ha="left", va="bottom", fontsize=8, color="#3b434b")
                    for n in range(a.shape[3]):
                        y0 = n * (units + sample_gap)
                        block = coded[site][call, g, :, n, :].T  # (units, T): time across, units down
                        canvas[y0 : y0 + block.shape[0], x0 : x0 + block.shape[1]] = block
                        frames.append((x0, y0, block.shape[1], block.shape[0]))
            ax.imshow(canvas, cmap=cmap, norm=norm, interpolation="none", extent=(0, width, height, 0))
            ax.add_patch(_frames(frames))
            y_starts = [n * (units + sample_gap) for n in range(n_samples)]
            ax.set_xlim(-0.3, width + 0.3)
            ax.set_ylim(height + 0.3, -0.3)
            ax.set_aspect("auto")
            first_gates = {x for x in x_starts if x % (call_width + call_gap) == 0}
            ax.set_xticks(*_axis_ticks(x_starts, steps, first_gates))
            ax.set_yticks(*_axis_ticks(y_starts, units, set(y_starts)))
            ax.tick_params(length=2, pad=1)
            for spine in ax.spines.values():
                spine.set_visible(False)
            ax.set_ylabel(f"{site}\nunit", rotation=0, ha="right", va="center", fontweight="bold", labelpad=8)
            for n, y0 in enumerate(y_starts):
                if n_samples > 1:
                    ax.text(width + 0.8, y0 + units / 2, f"sample {n}", rotation=90, va="center", fontsize=8)
            shown = f"steps 0-{steps - 1} of {full_steps}" if steps < full_steps else "step"
            ax.set_xlabel(shown + (f" (units 0-{units - 1} of {full_units})" if units < full_units else ""))
        top = axes[0]
        for call in range(calls):
            top.text(
                call * (call_width + call_gap) + call_width / 2,
                -2.2 - 0.02 * height,
                f"call {call}",
                ha="center",
                va="bottom",
                fontweight="bold",
            )
        handles = [Patch(facecolor=colour, edgecolor="#59636e", linewidth=0.5, label=words) for words, colour in legend]
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 3), frameon=False)
        return _tidy(_svg(fig))


def write_pictures(runs: list[dict[str, Any]], results_dir: Path, out_dir: Path) -> dict[str, dict[str, str]]:
    """``out_dir/masks/ADAPTER/CASE.svg`` for every case whose results saved masks with a site in them,
    and ``CASE-state.svg`` for every case whose carried state was measured (``dropspec.growth``).
    Nothing without matplotlib (``available()`` says why).

    Returns ADAPTER -> CASE (``CASE#state`` for the state plot) -> the picture's path relative to ``out_dir``."""
    written: dict[str, dict[str, str]] = {}
    if available() is not None:
        return written
    for run in runs:
        name = run["adapter"]
        for case_id, record in run.get("cases", {}).items():
            growth = (record.get("observation") or {}).get("state_growth")
            plot = state_picture(growth) if growth else None
            if plot is not None:
                target = out_dir / "masks" / name / f"{case_id}-state.svg"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(plot)
                written.setdefault(name, {})[f"{case_id}#state"] = f"masks/{name}/{case_id}-state.svg"
            relative = record.get("masks_file")
            where = Path(run.get("_dir", results_dir))  # each run's own folder: reports merge several
            if not relative or not (where / relative).is_file():
                continue
            with np.load(where / relative) as data:
                arrays = {site: data[site] for site in data.files}
            picture = mask_picture(arrays, record.get("cell"))
            if picture is None:
                continue
            target = out_dir / "masks" / name / f"{case_id}.svg"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(picture)
            written.setdefault(name, {})[case_id] = f"masks/{name}/{case_id}.svg"
    for run in runs:  # pictures of cases that are gone, and the PNGs of earlier versions
        keep = set(written.get(run["adapter"], {}).values())
        folder = out_dir / "masks" / run["adapter"]
        for old in folder.iterdir() if folder.is_dir() else []:
            if old.is_file() and f"masks/{run['adapter']}/{old.name}" not in keep:
                old.unlink()
    return written


# -- the carried state's norm over time -------------------------------------------------------------------
SERIES = (  # key, words, colour, line style: the probe in dark blue, the random weights in orange
    ("probe_training", "carry probe, training", "#1b2a4a", "-"),
    ("probe_inference", "carry probe, inference", "#1b2a4a", ":"),
    ("random_training", "random weights, training", "#d66014", "-"),
    ("random_inference", "random weights, inference", "#d66014", ":"),
)


def state_picture(growth: dict[str, Any]) -> bytes | None:
    """An SVG of the state norm per step (log scale): the carry probe and the random weights, each in
    training and in inference; None when no curve was measured."""
    series = [
        (words, colour, style, np.asarray(growth[key], float))
        for key, words, colour, style in SERIES
        if growth.get(key)
    ]
    series = [s for s in series if s[3].size and np.all(np.isfinite(s[3])) and np.all(s[3] > 0)]
    if not series:
        return None
    import matplotlib

    state = growth.get("state", "h")
    factor = growth.get("growth_per_step")
    with matplotlib.rc_context(STYLE):
        fig = _figure(6.4, 3.0)
        ax = fig.add_subplot()
        for words, colour, style, values in series:
            ax.plot(np.arange(values.size), values, style, color=colour, linewidth=1.6, label=words)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel(f"mean ‖{state}‖ / ‖{state}₀‖")
        ax.grid(True, which="major", color="#d1d9e0", linewidth=0.6)
        ax.set_title(
            f"carried {state}: ×{factor:.4g} per step (carry probe, training)" if factor else f"carried {state}",
            loc="left",
        )
        ax.legend(loc="upper left", frameon=False)
        return _tidy(_svg(fig))

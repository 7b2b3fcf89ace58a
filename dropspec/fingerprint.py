"""A case's fingerprint: per site, how its masks behave, in the spec's vocabulary.

Computed from recovered masks only, so it describes what a framework does, not what it says.
Elements recovery could not observe (``NaN``) are left out of every comparison.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from .masks import all_sites, base_site, merges_carry_into_recurrent, site_key
from .recovery import TOL, first_kept, median
from .reference import GATED_SITES, STEP_SITES, Cell, Masks

COINCIDENCE = 1e-6  # below this chance, two equal masks mean one was reused, not redrawn


@dataclass
class SiteFingerprint:
    site: str
    resample: str  # per_step | per_sequence | reused_across_calls
    gates: str | None  # shared | per_gate; None where the cell has one gate or the site none
    batch: str | None  # per_sample | shared; None with a batch of one
    scale: float  # the value of a kept unit
    rate: float  # the fraction of independent draws that dropped the unit
    draws: int  # how many independent draws ``rate`` counts
    binary: bool  # every value is 0 or ``scale``
    observed: float  # the fraction of elements recovery could see
    coincidence: float = 0.0  # the chance a fresh draw repeats a call's mask exactly
    # bidirectional stacks: whether both directions of a layer see one mask (the reverse one read backwards,
    # as when one dropout acts on the concatenated outputs below) or one each
    directions: str | None = None

    @property
    def scaling(self) -> str:
        return "inverted" if self.scale > 1.0 + TOL else "none"


@dataclass
class Fingerprint:
    sites: dict[str, SiteFingerprint]
    carried_state_dropped: bool

    def as_dict(self) -> dict:
        return {
            "sites": {name: asdict(site) for name, site in self.sites.items()},
            "carried_state_dropped": self.carried_state_dropped,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fingerprint:
        """The inverse of ``as_dict``, for a results file's ``fingerprint``; a field added since the file
        was written takes its default."""
        known = {f.name for f in fields(SiteFingerprint)}
        sites = {}
        for name, site in data["sites"].items():
            try:
                sites[name] = SiteFingerprint(**{k: v for k, v in site.items() if k in known})
            except TypeError as exc:
                raise ValueError(f"fingerprint site {name!r} lacks a field ({exc}); it needs {sorted(known)}") from exc
        return cls(sites=sites, carried_state_dropped=bool(data["carried_state_dropped"]))

    @property
    def memory_dropped(self) -> bool:
        """Whether a mask reaches the state a step carries in memory: a carried state, or (GRU) the state
        fed to each step, which its memory path z * h_{t-1} passes on."""
        return self.carried_state_dropped or any(base_site(n) == "state_in" for n in self.sites)

    def summary(self) -> str:
        if not self.sites:
            return "no masks"
        parts = []
        for s in self.sites.values():
            both = {"shared": "one mask for both directions", "per_direction": "a mask per direction"}
            words = [s.resample, s.gates, s.batch, both.get(s.directions or "")]
            words += [f"scale={s.scale:.4g}", f"rate={s.rate:.3f}"]
            parts.append(f"{s.site}: " + ", ".join(w for w in words if w))
        return "; ".join(parts) + ("; carried state dropped" if self.carried_state_dropped else "")


def _stack(masks: list[Masks], site: str) -> np.ndarray | None:
    """``(calls, gates, T, B, units)`` for any site, or None when no call drops it."""
    arrays = [m.get(site) for m in masks]
    if all(a is None for a in arrays):
        return None
    if site == "weight_hh":
        return _weight_stack(arrays)
    ref = next(a for a in arrays if a is not None)
    out = np.stack([np.asarray(a if a is not None else np.ones_like(ref), dtype=float) for a in arrays])
    return out if site in GATED_SITES else out[:, None]


def _varies(values: np.ndarray, axis: int, scale: float, whole: bool | None = None) -> bool:
    """Whether ``values`` differ along ``axis`` by more than TOL; ``whole``: True where every value is known to be
    finite (None: look for NaN)."""
    if values.shape[axis] < 2:
        return False
    if whole or (whole is None and not np.isnan(values).any()):  # the common case, and several times faster
        return bool(np.any(np.ptp(values, axis=axis) > TOL * max(1.0, scale)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: unobservable elements
        spread = np.nanmax(values, axis=axis) - np.nanmin(values, axis=axis)
    return bool(np.any(spread[np.isfinite(spread)] > TOL * max(1.0, scale)))


def _weight_stack(arrays: list) -> np.ndarray:
    """``(calls, 1, T, B, G*H*H)`` for the weight_hh site: the mask is elementwise over the whole
    matrix, so it has no gate axis (``gates`` is reported as None and ``site_gates`` does not apply)
    and every matrix element is a unit. A call's mask is ``(G*H, H)`` or ``(T, B, G*H, H)``."""
    full = [np.asarray(a, dtype=float) for a in arrays if a is not None]
    lead = next((a.shape[:2] for a in full if a.ndim == 4), (1, 1))
    rows, cols = full[0].shape[-2:]
    shape = (*lead, rows, cols)
    out = np.stack([np.broadcast_to(1.0 if a is None else np.asarray(a, dtype=float), shape) for a in arrays])
    return out.reshape(len(arrays), 1, *lead, rows * cols)


def site_fingerprint(site: str, values: np.ndarray) -> SiteFingerprint:
    """``values`` is ``(calls, gates, T, B, units)``."""
    # most sites are observed whole: then no element needs leaving out, and the passes below read ``values`` as it is
    seen = np.isfinite(values)
    whole = bool(seen.all())
    finite = values.ravel() if whole else values[seen]
    kept = first_kept(finite)
    scale = median(kept) if kept.size else 0.0  # a sample: `binary` checks every value
    off_scale = finite - scale
    np.abs(off_scale, out=off_scale)
    binary = bool(np.all((np.abs(finite) <= TOL) | (off_scale <= TOL * max(1.0, scale))))
    del off_scale
    known = True if whole else None  # not whole: infinite values alone take the same path as finite ones
    per_gate = _varies(values, 1, scale, known)
    per_step = _varies(values, 2, scale, known)
    per_sample = _varies(values, 3, scale, known)
    across_calls = _varies(values, 0, scale, known)
    # one independent draw per element along every axis the masks vary on; along the others the
    # observable values are equal, so nanmax collects them without favouring a blocked gate or step
    draws = values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for axis, varies in ((1, per_gate), (2, per_step), (3, per_sample)):
            if not varies:
                draws = (np.max if whole else np.nanmax)(draws, axis=axis, keepdims=True)
    rate = float(np.mean(np.abs(draws[np.isfinite(draws)]) <= TOL)) if np.isfinite(draws).any() else float("nan")
    # the chance that a fresh draw repeats the first call's mask exactly: with few independent units
    # (a mask shared by the batch over 8 features) a repeat is no evidence of reuse
    per_call = int(np.isfinite(draws[0]).sum())
    coincidence = float((rate**2 + (1 - rate) ** 2) ** per_call) if per_call else 1.0
    if not across_calls and values.shape[0] >= 2 and not per_step:
        resample = "reused_across_calls" if coincidence < COINCIDENCE else "per_sequence"
    else:
        resample = "per_step" if per_step else "per_sequence"
    if not (across_calls or per_step):
        draws = draws[:1]
    draws = draws[np.isfinite(draws)]
    return SiteFingerprint(
        site=site,
        resample=resample,
        gates=None if values.shape[1] < 2 else ("per_gate" if per_gate else "shared"),
        batch=None if values.shape[3] < 2 else ("per_sample" if per_sample else "shared"),
        scale=scale,
        rate=float(np.mean(np.abs(draws) <= TOL)) if draws.size else rate,
        draws=int(draws.size),
        binary=binary,
        observed=1.0 if whole else float(seen.mean()),
        coincidence=coincidence,
    )


def attribute_carried_state(cell: Cell, masks: list[Masks]) -> list[Masks]:
    """For SimpleRNN and LSTM, a dropped returned state with a gate-shared recurrent mask that
    leaves the first step undropped is carried-state dropout: move the recurrent mask of steps
    1..T-1 back to the carried mask of steps 0..T-2 (see masks.canonical)."""
    if not merges_carry_into_recurrent(cell):
        return masks
    carry, rec = _stack(masks, "carry_h"), _stack(masks, "recurrent")
    if carry is None:
        return masks
    if rec is not None:
        first_step_kept = np.all(np.abs(np.nan_to_num(rec[:, :, 0], nan=1.0) - 1.0) <= TOL)
        if _varies(rec, 1, 1.0) or not first_step_kept:
            return masks
    out = []
    for call, m in enumerate(masks):
        shifted = np.array(carry[call, 0])
        if rec is not None:
            shifted[:-1] = rec[call, 0, 1:]
        out.append(m.with_site("carry_h", shifted).with_site("recurrent", None))
    return out


def fill_hidden_carry(cell: Cell, masks: list[Masks]) -> tuple[list[Masks], int]:
    """Where the output mask is one per sequence, a unit whose output is dropped for the whole sequence hides
    its carried-h mask from every probe (the probes' diagonal weights route the carried h only to the unit's own,
    dropped, outputs), yet with dense weights that carried h reaches the other units. Such a hidden element is
    set to the output mask's value at the same place: the hypothesis that one mask serves both sites (ELMo's
    single mask), which the replay with dense weights then tests (common.replay.explained). Returns the masks
    (carried h moved out of the recurrent site, see ``attribute_carried_state``) and how many were set; a
    one-layer cell only, and unchanged where no such element is hidden."""
    moved = attribute_carried_state(cell, masks)
    output, carry = _stack(moved, "output"), _stack(moved, "carry_h")
    if output is None or carry is None or _varies(output, 2, 1.0):
        return masks, 0
    hidden = np.isnan(carry) & np.isfinite(output)
    if not hidden.any():
        return masks, 0
    filled = np.where(hidden, output, carry)
    return [m.with_site("carry_h", filled[call, 0]) for call, m in enumerate(moved)], int(hidden.sum())


def _compare_directions(cell: Cell, masks: list, reverse: int, sites: dict[str, SiteFingerprint]) -> None:
    """Mark the sites both directions of a layer drop as sharing one mask or not: the reverse part's
    masks are in its own time order, so they are flipped before the comparison."""
    for site in GATED_SITES + STEP_SITES:
        forward, backward = _stack([m[reverse - 1] for m in masks], site), _stack([m[reverse] for m in masks], site)
        if forward is None or backward is None or forward.shape != backward.shape:
            continue
        both = np.isfinite(forward) & np.isfinite(backward[:, :, ::-1])
        same = bool(np.all(np.abs(forward - backward[:, :, ::-1])[both] <= TOL))
        for part in (reverse - 1, reverse):
            name = site_key(site, part, cell)
            if name in sites:
                sites[name].directions = "shared" if same else "per_direction"


def fingerprint(cell: Cell, masks: list) -> Fingerprint:
    """The fingerprint of one call's masks per entry of ``masks`` (per layer for a stack: its sites
    are then named ``input@1``, ``input@2``, ...)."""
    if cell.stacked:
        sites, carried = {}, False
        for index in range(cell.parts):
            layer = fingerprint(cell.layer(index), [m[index] for m in masks])
            for name, site in layer.sites.items():
                site.site = site_key(name, index, cell)
                sites[site.site] = site
            carried = carried or layer.carried_state_dropped
        if cell.directions == 2:
            for reverse in range(1, cell.parts, 2):
                _compare_directions(cell, masks, reverse, sites)
        return Fingerprint(sites=sites, carried_state_dropped=carried)
    masks = attribute_carried_state(cell, masks)
    sites = {}
    for site in all_sites(cell):
        values = _stack(masks, site)
        if values is not None:
            sites[site] = site_fingerprint(site, values)
    carried = any(s in sites for s in ("carry_h", "carry_c"))
    return Fingerprint(sites=sites, carried_state_dropped=carried)


def complete(cell: Cell, masks: list) -> tuple[list, int]:
    """Fill unobservable elements from the structure the observable ones show (a gate-shared
    mask from the other gates, a time-invariant mask from the other steps), for a replay.
    Returns the masks and how many elements were still unknown and set to 1."""
    if cell.stacked:
        per_layer, unknown = [], 0
        for index in range(cell.parts):
            filled, missing = complete(cell.layer(index), [m[index] for m in masks])
            per_layer.append(filled)
            unknown += missing
        return [[per_layer[i][call] for i in range(cell.parts)] for call in range(len(masks))], unknown
    filled = [
        Masks(**{k: (None if v is None else np.array(v, dtype=float)) for k, v in m.__dict__.items()}) for m in masks
    ]
    unknown = 0
    for site in all_sites(cell):
        values = _stack(filled, site)
        if values is None or np.isfinite(values).all():
            continue
        fp = site_fingerprint(site, values)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if fp.gates == "shared":
                values = np.where(np.isfinite(values), values, np.nanmax(values, axis=1, keepdims=True))
            if fp.resample != "per_step":
                values = np.where(np.isfinite(values), values, np.nanmax(values, axis=2, keepdims=True))
            if site == "weight_hh" and fp.batch == "shared":  # a weight seen through one sample serves all
                values = np.where(np.isfinite(values), values, np.nanmax(values, axis=3, keepdims=True))
        unknown += int((~np.isfinite(values)).sum())
        values = np.where(np.isfinite(values), values, 1.0)
        for call, m in enumerate(filled):
            if site == "weight_hh":  # back to (G*H, H), or (T, B, G*H, H) when it varies by step or sample
                lead = values.shape[2:4] if values.shape[2:4] != (1, 1) else ()
                rows = len(cell.gates) * cell.hidden_size
                filled[call] = m.with_site(site, values[call, 0].reshape(*lead, rows, cell.hidden_size))
            else:
                filled[call] = m.with_site(site, values[call] if site in GATED_SITES else values[call, 0])
    return filled, unknown


def flat_masks(cell: Cell, call_masks) -> dict[str, np.ndarray]:
    """One call's dropped sites by result name (``input``, or ``input@2`` in a stack)."""
    layers = call_masks if cell.stacked else [call_masks]
    out = {}
    for index, m in enumerate(layers):
        for site in cell.layer(index).sites if cell.stacked else all_sites(cell):
            if m.get(site) is not None:
                out[site_key(site, index, cell)] = np.asarray(m.get(site))
    return out

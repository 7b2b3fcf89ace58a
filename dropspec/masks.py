"""Sampling masks from a scheme's rules, and the canonical form recovered masks are compared in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from .reference import GATED_SITES, Cell, Masks
from .spec import MaskRule, Scheme

#: sites that mask parameters rather than activations; recovery reads them only when a claim names them
WEIGHT_SITES = ("weight_hh",)


def all_sites(cell: Cell) -> tuple[str, ...]:
    """The activation sites of ``cell`` and the weight sites."""
    return (*cell.sites, *WEIGHT_SITES)


def site_shape(cell: Cell, site: str, steps: int, batch: int) -> tuple[int, ...]:
    """The full shape of one call's mask. ``weight_hh`` is ``(T, B, G*H, H)``, so a mask redrawn per
    step or per sample can be written down; one drawn once per call is stored as ``(G*H, H)``."""
    if site == "weight_hh":
        return (steps, batch, len(cell.gates) * cell.hidden_size, cell.hidden_size)
    if site == "input":
        return (len(cell.gates), steps, batch, cell.input_size)
    if site == "recurrent":
        return (len(cell.gates), steps, batch, cell.hidden_size)
    return (steps, batch, cell.hidden_size)


def keep_scale(p: float, scaling: str) -> float:
    """The value of a kept unit in training: 1/(1-p) for inverted dropout, 1 otherwise (test_time, none)."""
    if p >= 1.0:  # every unit dropped (the rate_one mode): no kept unit, and 1/(1-p) would divide by zero
        return 0.0
    return 1.0 / (1.0 - p) if scaling == "inverted" else 1.0


def inference_scale(p: float, scaling: str) -> float:
    """What a site is multiplied by at inference: 1-p where kept units are not scaled up in training but the
    site is scaled at test time (Hinton et al. 2012), else 1."""
    return 1.0 - p if scaling == "test_time" else 1.0


def claimed_rules(rules: Iterable[MaskRule], scaling: str | None) -> list[MaskRule]:
    """A scheme's rules with the scaling a claim declares (``Claim.scaling``); None keeps each rule's own."""
    if scaling is None:
        return list(rules)
    return [rule.model_copy(update={"scaling": scaling}) for rule in rules]


def sample_site(rule: MaskRule, cell: Cell, p: float, steps: int, batch: int, rng: np.random.Generator) -> np.ndarray:
    """One call's mask for one site, drawn as ``rule`` says: values 0 or the keep scale."""
    shape = site_shape(cell, rule.site, steps, batch)
    gated = rule.site in GATED_SITES
    draw = list(shape)
    if gated and rule.gates == "shared":
        draw[0] = 1
    t_axis = 1 if gated else 0
    if rule.resample != "per_step":
        draw[t_axis] = 1
    if rule.batch == "shared":
        draw[t_axis + 1] = 1
    kept = rng.random(tuple(draw)) >= p
    if rule.site == "weight_hh" and draw[0] == draw[1] == 1:
        return kept[0, 0] * keep_scale(p, rule.scaling)  # one mask for the whole call: (G*H, H)
    return np.broadcast_to(kept * keep_scale(p, rule.scaling), shape)


def sample_masks(
    cell: Cell,
    rules: Iterable[MaskRule],
    rates: Mapping[str, float],
    steps: int,
    batch: int,
    calls: int,
    rng: np.random.Generator,
) -> list[Masks]:
    """Masks for ``calls`` consecutive calls; a site whose rate is 0 is not dropped."""
    rules = [r for r in rules if rates.get(r.site, 0.0) > 0.0]
    out: list[Masks] = []
    for call in range(calls):
        masks = Masks()
        for rule in rules:
            if rule.same_as is not None and rates.get(rule.same_as, 0.0) > 0.0:
                mask = masks.get(rule.same_as)  # one mask for two sites, drawn at the first (rules keep the order)
            elif rule.resample == "reused_across_calls" and call > 0:
                mask = out[0].get(rule.site)
            else:
                mask = sample_site(rule, cell, rates[rule.site], steps, batch, rng)
            masks = masks.with_site(rule.site, mask)
        out.append(masks)
    return out


def inference_masks(
    cell: Cell, scheme: Scheme, rates: Mapping[str, float], steps: int, batch: int, scaling: str | None = None
):
    """What a call with ``training=False`` applies under ``scheme``: None (no masks) for ``inference: identity``;
    for ``inference: expectation`` every dropped site's mask replaced by its mean, ``(1 - p)`` times the keep
    scale, so zoneout's update mask becomes ``1 - p`` (``h_t = p h_{t-1} + (1 - p) h~_t``) and an inverted
    dropout mask 1. For a stack, a list with one ``Masks`` (or None) per part. ``scaling`` is the claim's
    declared scaling (``Claim.scaling``; None: each rule's own): a site scaled at test time gets its mean,
    ``1 - p``, under either inference rule."""
    rules = claimed_rules(scheme.masks, scaling)
    if scheme.inference == "identity" and all(rule.scaling != "test_time" for rule in rules):
        return None
    if cell.stacked:
        return [
            inference_masks(cell.layer(i), scheme, layer_rates(rates, i, cell), steps, batch, scaling)
            for i in range(cell.parts)
        ]
    masks = Masks()
    for rule in rules:
        p = float(rates.get(rule.site, 0.0))
        if p > 0.0 and (scheme.inference == "expectation" or rule.scaling == "test_time"):
            shape = (len(cell.gates) * cell.hidden_size, cell.hidden_size) if rule.site == "weight_hh" else None
            shape = shape or site_shape(cell, rule.site, steps, batch)
            masks = masks.with_site(rule.site, np.full(shape, (1.0 - p) * keep_scale(p, rule.scaling)))
    return masks


def merges_carry_into_recurrent(cell: Cell) -> bool:
    """For SimpleRNN and LSTM the carried h feeds only the recurrent matmul, so a carried-h mask at
    step t-1 cannot be told apart from a gate-shared recurrent mask at step t. Only the returned
    state shows it. GRU's carried h also feeds ``z * h``, so there the two are separable."""
    return cell.kind in ("rnn", "lstm")


def canonical(cell: Cell, masks: Masks, steps: int, batch: int) -> Masks:
    """The observationally equivalent form recovery produces: for SimpleRNN and LSTM the carried-h
    mask of steps ``0..T-2`` is folded into the recurrent mask of steps ``1..T-1``."""
    if not merges_carry_into_recurrent(cell) or masks.carry_h is None:
        return masks
    carry = np.asarray(masks.carry_h)
    rec_shape = site_shape(cell, "recurrent", steps, batch)
    recurrent = np.ones(rec_shape) if masks.recurrent is None else np.array(masks.recurrent, dtype=float)
    recurrent[:, 1:] *= carry[:-1]
    final_only = np.ones_like(carry)
    final_only[-1] = carry[-1]
    return Masks(**{**masks.__dict__, "recurrent": recurrent, "carry_h": final_only})


def site_key(site: str, part: int, cell: Cell) -> str:
    """How results name a site: ``input`` in a one-layer cell, ``input@2`` for layer 2 of a stack,
    ``input@2r`` for its reverse direction in a bidirectional stack."""
    if not cell.stacked:
        return site
    return f"{site}@{part // cell.directions + 1}{'r' if cell.is_reverse(part) else ''}"


def base_site(key: str) -> str:
    return key.partition("@")[0]


def part_of(key: str, cell: Cell) -> int | None:
    """The part a ``site@layer[r]`` key names, or None when the key names no part of ``cell``."""
    _, _, where = key.partition("@")
    reverse = where.endswith("r")
    number = where[:-1] if reverse else where
    if not number.isdigit() or not 1 <= int(number) <= cell.layers or (reverse and cell.directions == 1):
        return None
    return (int(number) - 1) * cell.directions + int(reverse)


def layer_rates(rates: Mapping[str, float], part: int, cell: Cell) -> dict[str, float]:
    """The rates of one part, from a claim whose keys are ``site`` or ``site@layer[r]``."""
    if not cell.stacked:
        return {key: p for key, p in rates.items() if "@" not in key}
    return {base_site(key): p for key, p in rates.items() if "@" in key and part_of(key, cell) == part}


def sample_case_masks(
    cell: Cell,
    rules: Iterable[MaskRule],
    rates: Mapping[str, float],
    steps: int,
    batch: int,
    calls: int,
    rng: np.random.Generator,
) -> list:
    """``sample_masks`` for a cell or a stack: per call a ``Masks``, or for a stack a list per layer."""
    rules = list(rules)
    if not cell.stacked:
        return sample_masks(cell, rules, rates, steps, batch, calls, rng)
    per_layer = [
        sample_masks(cell.layer(i), rules, layer_rates(rates, i, cell), steps, batch, calls, rng)
        for i in range(cell.parts)
    ]
    return [[per_layer[i][call] for i in range(cell.parts)] for call in range(calls)]


def canonical_case(cell: Cell, masks, steps: int, batch: int):
    """``canonical`` for a cell or, layer by layer, for a stack."""
    if not cell.stacked:
        return canonical(cell, masks, steps, batch)
    return [canonical(cell.layer(i), m, steps, batch) for i, m in enumerate(masks)]

"""Call modes: *how* a layer is called, an axis of the suite beside its configuration.

Real deviations live in how a layer is called: compiled, unrolled, stateful, reloaded from disk, under a
precision policy, with a batch of one. A case is a configuration times a call mode. Adapters declare
which modes they support and for which of their configurations (``expand``); the model module reads
``config["mode"]`` and calls the layer that way. The engine holds every mode to the masks of the same
configuration called eagerly (``common.modes.masks``; reloads: ``common.modes.reload``). The boundary-rate modes
(kind ``"rate"``) change the case itself: every nonzero rate, in the claim and in the framework's arguments
(``set_rates``), becomes 0, 0.01, 0.9 or 1.0; the scheme's site clauses and ``common.rates.*`` judge them. Which
CONFIG keys hold the framework's arguments is the adapter's knowledge, not the core's: an adapter that asks for a
rate mode declares them (``rate_keys``, ``keep_keys``; see ``declared_rates``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .adapter import Adapter
from .case import CALLS, Case

EAGER = "eager"


@dataclass(frozen=True)
class Mode:
    name: str
    kind: str  # compiled | unrolled | stateful | masked | seed_argument | reload | precision | batch | rate
    words: str  # how the mode reads in a label, after the configuration
    batch: int | None = None  # a mode that fixes the batch size
    # a mode that sizes the batch instead: the narrowest site, one mask per sample (per sequence, shared by the
    # gates), then holds at least this many units over a run's calls (``batch_for``)
    draws: int | None = None
    rate: float | None = None  # a boundary-rate mode: every nonzero rate of the case set to this value


MODES: dict[str, Mode] = {
    m.name: m
    for m in (
        Mode("tf_function", "compiled", "called in a tf.function"),
        Mode("jit_compile", "compiled", "called in a tf.function(jit_compile=True)"),
        Mode("jax_jit", "compiled", "jax.jit of the stateless call"),
        Mode("torch_compile", "compiled", "torch.compile"),
        Mode("torch_script", "compiled", "torch.jit.script"),
        Mode("torch_trace", "compiled", "torch.jit.trace"),
        Mode("flax_jit", "compiled", "jax.jit of the apply"),
        Mode("flax_vmap", "compiled", "jax.vmap over the batch"),
        Mode("unroll", "unrolled", "unroll=True"),
        Mode("stateful", "stateful", "stateful=True, states carried across batches"),
        Mode("masked", "masked", "with a mask of all-valid steps"),
        Mode("packed", "masked", "as a PackedSequence"),
        Mode("seed_argument", "seed_argument", "with an explicit seed= argument"),
        Mode("reload_saved", "reload", "saved and reloaded (model.save, load_model)"),
        Mode("reload_config", "reload", "rebuilt from get_config / from_config"),
        Mode("reload_state_dict", "reload", "rebuilt and loaded from a state_dict"),
        Mode("mixed_float16", "precision", "under the mixed_float16 policy"),
        Mode("bfloat16", "precision", "under a bfloat16 policy"),
        Mode("autocast", "precision", "under torch.autocast(bfloat16)"),
        Mode("batch_one", "batch", "with a batch of one", batch=1),
        # boundary rates (the "0, a tiny rate, a large one, and 1.0"): every nonzero rate of the case set to
        # the mode's rate. Tiny is 0.01, not 1e-3: recovery reads a kept unit's value to 1e-3 (recovery.probes.TOL),
        # so 1/(1-1e-3) could not be told from an unscaled 1 and the scale clause could not fail. Its batch holds
        # 2048 draws of the narrowest site over the two calls, however the framework draws: about 20 dropped units
        # (none at all: p = 0.99^2048 < 1e-8). That is a batch of 128 for 8 units, 64 for 16.
        Mode("rate_zero", "rate", "with every rate set to 0", rate=0.0),
        Mode("rate_tiny", "rate", "with every rate set to 0.01 (a batch of {batch})", rate=0.01, draws=2048),
        Mode("rate_large", "rate", "with every rate set to 0.9", rate=0.9),
        Mode("rate_one", "rate", "with every rate set to 1.0", rate=1.0),
        # the modes of PaddlePaddle, Haiku, Equinox and TF's DropoutWrapper, whose names the ones above do not fit
        Mode("paddle_to_static", "compiled", "compiled with paddle.jit.to_static(full_graph=True)"),
        Mode("sequence_length", "masked", "with sequence_length= the length of every sequence (all steps valid)"),
        Mode("haiku_jit", "compiled", "jax.jit of the transformed apply"),
        Mode("haiku_vmap", "compiled", "jax.vmap of the transformed apply over the batch"),
        Mode("eqx_filter_jit", "compiled", "in eqx.filter_jit"),
        Mode("eqx_serialise", "reload", "saved and restored (eqx.tree_serialise_leaves, tree_deserialise_leaves)"),
        Mode("static_rnn", "unrolled", "run by tf.compat.v1.nn.static_rnn"),
        Mode("scan_unroll", "unrolled", "with every step unrolled (unroll= the number of steps)"),
    )
}
RATE_MODES = tuple(name for name, m in MODES.items() if m.rate is not None)  # the boundary rates


class UnknownMode(ValueError):
    pass


def mode(name: str) -> Mode:
    try:
        return MODES[name]
    except KeyError:
        raise UnknownMode(f"unknown call mode {name!r}; known: {', '.join(sorted(MODES))}") from None


def with_mode(case: Case, name: str, adapter: Adapter | type[Adapter]) -> Case:
    """``case`` called in mode ``name``: its id and label say so, its config carries ``mode`` for the model
    module, and it joins the mode group of ``case`` (whose eager masks it must keep). Flag and rate groups
    stay with the eager cases, so no other clause compares across modes. ``adapter``: the adapter whose case it
    is; a boundary-rate mode rewrites the CONFIG keys it declares (``declared_rates``)."""
    m = mode(name)
    claim, config, title = case.claim, case.config, case.title
    if m.rate is not None:  # a boundary rate: the claim and the framework's own arguments take the new rate
        claim = replace(claim, rates={site: m.rate if p > 0 else p for site, p in claim.rates.items()})
        drop, keep = declared_rates(adapter, name)
        config = set_rates(config, m.rate, drop, keep)
        if config == case.config and any(p > 0 and p != m.rate for p in case.claim.rates.values()):
            raise UndeclaredRates(
                f"{_named(adapter)}: the mode {name!r} changes no rate in the CONFIG of case {case.id!r}, whose claim "
                f"drops {case.claim.rates}: none of its keys is among rate_keys {sorted(drop)} or keep_keys "
                f"{sorted(keep)}; add the key that holds the case's rate to the declaration"
            )
        title = replace(case, config=config).title if not case.label else rate_in_label(case, m.rate, keep)
    batch = batch_for(m, case)
    return replace(
        case,
        id=f"{case.id}+{name}",
        label=f"{title}, {m.words.format(batch=batch)}",
        claim=claim,
        config={**config, "mode": name},
        mode=name,
        # a boundary rate changes the masks on purpose: no clause compares it with the eager call
        mode_group=None if m.rate is not None else case.id,
        flag_group=None,
        rate_group=None,
        batch=batch,
    )


def batch_for(m: Mode, case: Case) -> int:
    """The batch of ``case`` called in mode ``m``: the mode's own; or, for a mode with ``draws``, the case's batch
    raised to the smallest that gives the narrowest site ``m.draws`` units over the calls when each sample draws
    one mask for it (a site drawn per step or per gate has more); else the case's."""
    if m.draws is not None:
        narrowest = min(case.cell.input_size, case.cell.hidden_size)
        return max(case.batch, math.ceil(m.draws / (CALLS * narrowest)))
    return m.batch or case.batch


class UndeclaredRates(ValueError):
    """An adapter asks for a boundary-rate mode without saying which of its CONFIG keys hold its rates."""


def _named(adapter: Adapter | type[Adapter]) -> str:
    cls = adapter if isinstance(adapter, type) else type(adapter)
    return f"adapter {adapter.name!r} ({cls.__module__}.{cls.__qualname__})"


def declared_rates(adapter: Adapter | type[Adapter], name: str) -> tuple[frozenset[str], frozenset[str]]:
    """The CONFIG keys (at any depth) that ``adapter`` declares as its framework's rate arguments: ``rate_keys``,
    whose value is a drop probability p (Keras' ``dropout=``, torch's ``p``), and ``keep_keys``, whose value is a
    keep probability 1 - p (TF's ``input_keep_prob``). Only the adapter knows its framework's argument names, so
    the boundary-rate mode ``name`` refuses an adapter that declares neither."""
    drop, keep = getattr(adapter, "rate_keys", None), getattr(adapter, "keep_keys", None)
    if drop is None and keep is None:
        cls = adapter if isinstance(adapter, type) else type(adapter)
        raise UndeclaredRates(
            f"{_named(adapter)} asks for the boundary-rate mode {name!r} but does not declare which of its CONFIG "
            f"keys hold its rates: give {cls.__qualname__} the class attributes rate_keys (the keys whose value is a "
            "drop probability, e.g. frozenset({'dropout'})) and keep_keys (those whose value is a keep probability "
            "1 - p; frozenset() if none), named as the model module reads them from CONFIG, at any depth"
        )
    return frozenset(drop or ()), frozenset(keep or ())


def set_rates(config: Mapping[str, Any], rate: float, drop: frozenset[str], keep: frozenset[str]) -> dict[str, Any]:
    """``config`` with every nonzero drop probability (a key of ``drop``) set to ``rate`` and every keep
    probability below 1 (a key of ``keep``) set to 1 - ``rate``, in nested dicts too: the rates a user would
    change, written as the framework's own arguments."""

    def one(key: str, value: Any) -> Any:
        if isinstance(value, Mapping):
            return set_rates(value, rate, drop, keep)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return value
        if key in keep:
            return _keep(rate) if value < 1 else value
        if key in drop and value > 0:
            return rate
        return value

    return {key: one(key, value) for key, value in config.items()}


def rate_in_label(case: Case, rate: float, keep: frozenset[str] = frozenset()) -> str:
    """``case.label`` with its one nonzero rate, as written there (``dropout=0.25``, ``Dropout(0.25)``), replaced by
    ``rate``, and a keep probability written ``KEY=0.75`` (``KEY`` in ``keep``) by ``1 - rate``; unchanged where the
    claim's nonzero rates differ (the mode's words then say what changed)."""
    rates = {p for p in case.claim.rates.values() if p > 0}
    if len(rates) != 1:
        return case.label
    old = rates.pop()
    label = re.sub(rf"(?<![\w.]){re.escape(repr(old))}(?![\d])", repr(rate), case.label)
    for key in keep:
        label = re.sub(rf"\b{re.escape(key)}={re.escape(repr(_keep(old)))}(?![\d])", f"{key}={_keep(rate)!r}", label)
    return label


def _keep(rate: float) -> float:
    """``1 - rate`` as a user writes it: 0.1 for a rate of 0.9, not 0.09999999999999998."""
    return round(1.0 - rate, 12)


def expand(
    cases: Sequence[Case], modes: Mapping[str, Callable[[Case], bool]], adapter: Adapter | type[Adapter]
) -> list[Case]:
    """Every case of ``adapter``, followed by its variants in each mode whose predicate selects it. A case with
    variants becomes the eager member of their mode group."""
    out: list[Case] = []
    for case in cases:
        variants = [with_mode(case, name, adapter) for name, selects in modes.items() if selects(case)]
        grouped = any(v.mode_group is not None for v in variants)
        out.append(replace(case, mode_group=case.id) if grouped else case)
        out.extend(variants)
    return out

"""Call modes: *how* a layer is called, an axis of the suite beside its configuration.

Real deviations live in how a layer is called: compiled, unrolled, stateful, reloaded from disk, under a
precision policy, with a batch of one. A case is a configuration times a call mode. Adapters declare
which modes they support and for which of their configurations (``expand``); the model module reads
``config["mode"]`` and calls the layer that way. The engine holds every mode to the masks of the same
configuration called eagerly (``common.modes.masks``; reloads: ``common.modes.reload``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from .case import Case

EAGER = "eager"


@dataclass(frozen=True)
class Mode:
    name: str
    kind: str  # compiled | unrolled | stateful | masked | seed_argument | reload | precision | batch
    words: str  # how the mode reads in a label, after the configuration
    batch: int | None = None  # a mode that fixes the batch size


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


class UnknownMode(ValueError):
    pass


def mode(name: str) -> Mode:
    try:
        return MODES[name]
    except KeyError:
        raise UnknownMode(f"unknown call mode {name!r}; known: {', '.join(sorted(MODES))}") from None


def with_mode(case: Case, name: str) -> Case:
    """``case`` called in mode ``name``: its id and label say so, its config carries ``mode`` for the model
    module, and it joins the mode group of ``case`` (whose eager masks it must keep). Flag and rate groups
    stay with the eager cases, so no other clause compares across modes."""
    m = mode(name)
    return replace(
        case,
        id=f"{case.id}+{name}",
        label=f"{case.title}, {m.words}",
        config={**case.config, "mode": name},
        mode=name,
        mode_group=case.id,
        flag_group=None,
        rate_group=None,
        batch=m.batch or case.batch,
    )


def expand(cases: Sequence[Case], modes: Mapping[str, Callable[[Case], bool]]) -> list[Case]:
    """Every case, followed by its variants in each mode whose predicate selects it. A case with variants
    becomes the eager member of their mode group."""
    out: list[Case] = []
    for case in cases:
        variants = [with_mode(case, name) for name, selects in modes.items() if selects(case)]
        out.append(replace(case, mode_group=case.id) if variants else case)
        out.extend(variants)
    return out

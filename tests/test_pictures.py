"""Mask pictures and state plots: SVG from matplotlib, every colour drawn is in the legend, small files."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest

from dropspec.publish.pictures import KEPT, NOT_DROPPED, UNOBSERVABLE, UNSCALED, mask_categories, mask_picture

image = pytest.importorskip("matplotlib.image", reason="pictures need the report extra: pip install 'dropspec[report]'")


def drawn_colours(svg: bytes) -> set[str]:
    """Every opaque colour in the mask images embedded in ``svg``, as #rrggbb."""
    colours = set()
    for data in re.findall(rb"data:image/png;base64,([A-Za-z0-9+/=\s]+)", svg):
        rgba = image.imread(io.BytesIO(base64.b64decode(b"".join(data.split()))), format="png")
        opaque = rgba[rgba[..., 3] > 0][:, :3]
        colours |= {"#" + "".join(f"{round(255 * float(v)):02x}" for v in px) for px in np.unique(opaque, axis=0)}
    return colours


def legend(svg: bytes) -> dict[str, str]:
    """The figure legend's entries, words -> #rrggbb, read back from the SVG: each entry is a patch (a path
    whose style class fills it with the colour) followed by its text."""
    text = svg.decode()
    styles = dict(re.findall(r"\.(s\d+)\{([^}]*)\}", text))
    entries = re.findall(r'<path d="[^"]*" class="(s\d+)"/>(?:</g>)?<g><text[^>]*>([^<]+)</text>', text)
    fills = {cls: re.search(r"fill: (#[0-9a-f]{6})", styles[cls]) for cls, _ in entries}
    return {words: fills[cls].group(1) for cls, words in entries if fills[cls]}


def masks(calls: int = 2, gates: int = 3, steps: int = 8, samples: int = 4, units: int = 8) -> np.ndarray:
    return np.full((calls, gates, steps, samples, units), 4 / 3, np.float32)


def test_every_colour_drawn_is_in_the_legend() -> None:
    recurrent = masks()
    recurrent[0, 0, :, 0, :2] = 0.0  # dropped
    recurrent[0, 1, :, 0, 5] = np.nan  # unobservable
    recurrent[1, 2, :, 1, 3] = 1.0  # kept but not scaled, where the site drops
    state = np.ones_like(recurrent)  # a site that drops nothing
    svg = mask_picture({"recurrent": recurrent, "state": state}, "gru_reset_before")
    assert svg is not None and svg.startswith(b"<?xml")
    words = legend(svg)
    assert set(words) == {
        "dropped (0)",
        "kept, scaled ×1.333",
        "kept, unscaled (1)",
        "not dropped (1)",
        "unobservable (NaN)",
    }, words
    assert words["unobservable (NaN)"] == UNOBSERVABLE and words["not dropped (1)"] == NOT_DROPPED
    assert drawn_colours(svg) == set(words.values())
    assert "gate n" in svg.decode() and "call 1" in svg.decode() and "sample 1" in svg.decode()
    assert len(svg) < 30_000
    assert mask_picture({}, "lstm") is None


def test_a_picture_shows_only_the_colours_it_uses() -> None:
    input_ = masks(gates=1)
    input_[:, :, :, :, ::2] = 0.0
    svg = mask_picture({"input": input_}, "lstm")
    assert set(legend(svg)) == {"dropped (0)", "kept, scaled ×1.333"}
    assert drawn_colours(svg) == set(legend(svg).values())
    assert "all gates" in svg.decode()


def test_categories_name_each_kept_value() -> None:
    a = masks(gates=1)
    a[0, 0, :, 0, 0] = 0.0
    a[1] = 2.0  # a second scale in call 1
    a[1, 0, :, 0, 0] = 0.0
    names, coded = mask_categories([("input", a)])
    assert [n for n, _ in names] == ["dropped (0)", "kept, scaled ×1.333", "kept, scaled ×2"]
    assert [c for _, c in names][1:] == KEPT[:2] and UNSCALED not in [c for _, c in names]
    assert coded["input"][0, 0, 0, 0, 0] == 0 and coded["input"][1, 0, 0, 1, 1] == 2
    too_many = masks(gates=1, units=10)
    too_many[0, 0, 0, 0, :] = np.arange(1, 11) * 0.3
    with pytest.raises(ValueError, match="distinct kept values"):
        mask_categories([("input", too_many)])


def test_long_sequences_are_cut_and_the_axis_says_so() -> None:
    svg = mask_picture({"input": masks(gates=1, steps=40, units=32)}, "rnn")
    assert b"steps 0-11 of 40" in svg and b"units 0-7 of 32" in svg

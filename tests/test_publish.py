"""The spec document, the mask pictures, the page's data and ``dropspec explain``."""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path

import numpy as np
import pytest

from dropspec.publish.explain import ExplainError, explain
from dropspec.publish.pictures import NAN, mask_picture
from dropspec.publish.png import encode_png
from dropspec.publish.repro import NO_REPRO
from dropspec.publish.specdoc import differences
from dropspec.spec import default_spec

from .published import ADAPTERS, REFERENCE_CASES, REPRO_MARK, build, cli


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build(tmp_path_factory.mktemp("publish"))


def decode_png(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(indices, palette) of a palette PNG written by encode_png."""
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = np.frombuffer(data[pos : pos + 4], ">u4")
        kind = data[pos + 4 : pos + 8]
        chunks[kind] = chunks.get(kind, b"") + data[pos + 8 : pos + 8 + int(length)]
        pos += 12 + int(length)
    width, height = (int(v) for v in np.frombuffer(chunks[b"IHDR"][:8], ">u4"))
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(height, width + 1)
    assert np.all(rows[:, 0] == 0)
    return rows[:, 1:], np.frombuffer(chunks[b"PLTE"], np.uint8).reshape(-1, 3)


def test_spec_render_has_an_anchor_for_every_clause(tmp_path: Path) -> None:
    done = cli("spec", "render", "--out", "doc", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "doc" / "index.html").read_text()
    md = (tmp_path / "doc" / "spec.md").read_text()
    spec = default_spec()
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "anchors must be unique"
    for scheme, clause in spec.clauses():
        assert f'id="{clause.id}"' in html and f'<a id="{clause.id}"></a>' in md
        assert clause.text in md and clause.level in md
        assert f'id="scheme-{scheme.id}"' in html
    compare = (tmp_path / "doc" / "compare.html").read_text()
    for scheme in spec.schemes.values():
        if scheme.id != "common":
            assert f'href="index.html#scheme-{scheme.id}"' in compare


def test_spec_render_defaults_to_reports_spec(tmp_path: Path) -> None:
    done = cli("spec", "render", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "reports" / "spec" / "index.html").is_file()
    assert (tmp_path / "reports" / "spec" / "compare.md").is_file()


def test_the_comparison_says_how_schemes_differ() -> None:
    spec = default_spec()
    variational, semeniuta = spec.scheme("variational"), spec.scheme("semeniuta")
    said = "\n".join(differences(variational, semeniuta))
    assert "candidate" in said and "input" in said and "recurrent" in said
    assert differences(variational, variational) == []
    said = "\n".join(differences(variational, spec.scheme("variational_untied")))
    assert "gates" in said and "one per gate" in said


def test_png_encoder_round_trips() -> None:
    indices = np.arange(30, dtype=np.uint8).reshape(5, 6) % 4
    palette = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    got, pal = decode_png(encode_png(indices, palette))
    assert np.array_equal(got, indices) and np.array_equal(pal, palette)
    with pytest.raises(ValueError):
        encode_png(indices + 10, palette)


def test_mask_picture_shows_nan_in_its_own_colour() -> None:
    masks = np.ones((2, 3, 8, 4, 8), np.float32) * (4 / 3)
    masks[0, 0, :, 0, :2] = 0.0
    masks[0, 1, :, 0, 5] = np.nan
    png = mask_picture({"recurrent": masks}, "gru_reset_before")
    assert png is not None
    indices, palette = decode_png(png)
    assert (indices == NAN).any() and (indices == 0).any()
    assert tuple(palette[NAN]) != tuple(palette[0]) and tuple(palette[NAN]) != tuple(palette[NAN - 1])
    assert mask_picture({}, "lstm") is None


def test_report_writes_the_page_pictures_and_spec(published: tuple[Path, Path]) -> None:
    results, reports = published
    for name in ("matrix.json", "matrix.md", "index.html", "spec/index.html", "spec/spec.md", "spec/compare.html"):
        assert (reports / name).is_file(), name
    pictures = sorted((reports / "masks").rglob("*.png"))
    assert {p.stem for p in (reports / "masks" / "reference").glob("*.png")} == set(REFERENCE_CASES) - {"lstm-none"}
    assert pictures and max(p.stat().st_size for p in pictures) < 12_000  # small: they are committed
    html = (reports / "index.html").read_text()
    assert "<script src" not in html and '<link rel="stylesheet"' not in html  # opens from disk, offline
    data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S).group(1))
    assert data["extras"]["reference"]["lstm-variational"]["picture"] == "masks/reference/lstm-variational.png"
    assert data["extras"]["with_repro"]["rnn-variational"]["repro"].startswith(REPRO_MARK)
    assert data["matrix"]["cells"]["common.seed.reproducible"]["missing_framework"]["verdict"] == "no_data"


def test_explain_is_a_bug_report(published: tuple[Path, Path]) -> None:
    results, _ = published
    spec = default_spec()
    _, clause = spec.clause("variational.input.time_invariant")
    done = cli("explain", "per_step", "lstm-variational", clause.id, "--results", "results", cwd=results.parent)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    data = json.loads((results / "per_step.json").read_text())
    result = next(r for r in data["results"] if r["case"] == "lstm-variational" and r["clause"] == clause.id)
    assert result["status"] == "fail"
    assert clause.text in text and clause.source in text and "MUST" in text
    assert result["message"] in text and "per_step" in text
    for name, version in data["versions"].items():
        assert f"{name}:** {version}" in text
    assert "## Repro" in text and "dropspec run --adapter per_step" in text
    assert NO_REPRO in text


def test_explain_embeds_the_adapters_repro(published: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    results, _ = published
    monkeypatch.setenv("DROPSPEC_ADAPTERS", ADAPTERS)
    text = explain("with_repro", "rnn-variational", "common.seed.reproducible", results)
    assert REPRO_MARK in text and "```python" in text
    text = explain("with_repro", "rnn-zaremba", "common.seed.reproducible", results)
    assert NO_REPRO in text and REPRO_MARK not in text


def test_explain_names_what_is_missing(published: tuple[Path, Path]) -> None:
    results, _ = published
    with pytest.raises(ExplainError, match="no results for adapter 'nope'.*reference"):
        explain("nope", "x", "common.seed.reproducible", results)
    with pytest.raises(ExplainError, match="no case 'x'.*lstm-variational"):
        explain("reference", "x", "common.seed.reproducible", results)
    with pytest.raises(ExplainError, match="unknown clause"):
        explain("reference", "lstm-variational", "no.such.clause", results)
    done = cli("explain", "reference", "x", "common.seed.reproducible", "--results", "results", cwd=results.parent)
    assert done.returncode == 2 and "no case 'x'" in done.stderr


def test_a_cell_counts_every_status_in_words() -> None:
    from dropspec.publish.statuses import WORDS, cell_summary

    counts = {"pass": 5, "xfail": 27, "error": 3, "not_applicable": 40}
    assert cell_summary(counts) == "27 deviate (known) · 3 crash · 5 pass"
    assert cell_summary({"pass": 1, "fail": 1, "skip": 2, "not_measured": 2}) == (
        "1 deviates · 1 passes · 2 not measured · 2 skipped"
    )
    assert cell_summary({"not_applicable": 4}) == "n/a" and cell_summary({}) == "no data"
    assert cell_summary({"not_applicable": 0, "pass": 0}) == "no data"
    assert cell_summary({"pass": 2, "surprise": 1}) == "2 pass · 1 surprise"  # an unknown status is not hidden
    assert WORDS["xfail"] == "deviates (known)" and WORDS["error"] == "crash"

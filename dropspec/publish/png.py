"""A tiny PNG writer (palette images, NumPy and zlib only) and a 5x8 bitmap font for labels.

No imaging library: the pictures are small indexed images, one byte per pixel, compressed
with zlib, and labelled with the font below, so the core never needs matplotlib or Pillow.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

# Each glyph is 8 rows of 5 pixels, "#" set; rows 0-6 hold the letter, row 7 the descenders.
_GLYPHS = {
    "a": ".....|.....|.###.|....#|.####|#...#|.####|.....",
    "b": "#....|#....|#.##.|##..#|#...#|#...#|####.|.....",
    "c": ".....|.....|.###.|#....|#....|#...#|.###.|.....",
    "d": "....#|....#|.##.#|#..##|#...#|#...#|.####|.....",
    "e": ".....|.....|.###.|#...#|#####|#....|.###.|.....",
    "f": "..##.|.#..#|.#...|###..|.#...|.#...|.#...|.....",
    "g": ".....|.....|.####|#...#|#...#|.####|....#|.###.",
    "h": "#....|#....|#.##.|##..#|#...#|#...#|#...#|.....",
    "i": "..#..|.....|.##..|..#..|..#..|..#..|.###.|.....",
    "j": "...#.|.....|..##.|...#.|...#.|...#.|#..#.|.##..",
    "k": "#....|#....|#..#.|#.#..|##...|#.#..|#..#.|.....",
    "l": ".##..|..#..|..#..|..#..|..#..|..#..|.###.|.....",
    "m": ".....|.....|##.#.|#.#.#|#.#.#|#...#|#...#|.....",
    "n": ".....|.....|#.##.|##..#|#...#|#...#|#...#|.....",
    "o": ".....|.....|.###.|#...#|#...#|#...#|.###.|.....",
    "p": ".....|.....|####.|#...#|#...#|####.|#....|#....",
    "q": ".....|.....|.####|#...#|#...#|.####|....#|....#",
    "r": ".....|.....|#.##.|##..#|#....|#....|#....|.....",
    "s": ".....|.....|.####|#....|.###.|....#|####.|.....",
    "t": ".#...|.#...|###..|.#...|.#...|.#..#|..##.|.....",
    "u": ".....|.....|#...#|#...#|#...#|#..##|.##.#|.....",
    "v": ".....|.....|#...#|#...#|#...#|.#.#.|..#..|.....",
    "w": ".....|.....|#...#|#...#|#.#.#|#.#.#|.#.#.|.....",
    "x": ".....|.....|#...#|.#.#.|..#..|.#.#.|#...#|.....",
    "y": ".....|.....|#...#|#...#|#...#|.####|....#|.###.",
    "z": ".....|.....|#####|...#.|..#..|.#...|#####|.....",
    "0": ".###.|#...#|#..##|#.#.#|##..#|#...#|.###.|.....",
    "1": "..#..|.##..|..#..|..#..|..#..|..#..|.###.|.....",
    "2": ".###.|#...#|....#|...#.|..#..|.#...|#####|.....",
    "3": "#####|...#.|..#..|...#.|....#|#...#|.###.|.....",
    "4": "...#.|..##.|.#.#.|#..#.|#####|...#.|...#.|.....",
    "5": "#####|#....|####.|....#|....#|#...#|.###.|.....",
    "6": "..##.|.#...|#....|####.|#...#|#...#|.###.|.....",
    "7": "#####|....#|...#.|..#..|.#...|.#...|.#...|.....",
    "8": ".###.|#...#|#...#|.###.|#...#|#...#|.###.|.....",
    "9": ".###.|#...#|#...#|.####|....#|...#.|.##..|.....",
    " ": ".....|.....|.....|.....|.....|.....|.....|.....",
    "_": ".....|.....|.....|.....|.....|.....|#####|.....",
    "-": ".....|.....|.....|.###.|.....|.....|.....|.....",
    "+": ".....|..#..|..#..|#####|..#..|..#..|.....|.....",
    "=": ".....|.....|#####|.....|#####|.....|.....|.....",
    ":": ".....|.....|..#..|.....|.....|..#..|.....|.....",
    ".": ".....|.....|.....|.....|.....|.##..|.##..|.....",
    ",": ".....|.....|.....|.....|.....|..#..|..#..|.#...",
    "(": "...#.|..#..|.#...|.#...|.#...|..#..|...#.|.....",
    ")": ".#...|..#..|...#.|...#.|...#.|..#..|.#...|.....",
    "/": ".....|....#|...#.|..#..|.#...|#....|.....|.....",
    ">": "#....|.#...|..#..|...#.|..#..|.#...|#....|.....",
    "?": ".###.|#...#|...#.|..#..|..#..|.....|..#..|.....",
}
GLYPH_W, GLYPH_H, ADVANCE = 5, 8, 6
FONT: dict[str, np.ndarray] = {
    ch: np.array([[c == "#" for c in row] for row in rows.split("|")], dtype=bool) for ch, rows in _GLYPHS.items()
}


def text_width(text: str) -> int:
    return max(len(text) * ADVANCE - 1, 0)


def draw_text(canvas: np.ndarray, x: int, y: int, text: str, color: int) -> None:
    """Writes ``text`` into the index image ``canvas`` with its top-left corner at (x, y), clipped."""
    for n, ch in enumerate(text.lower()):
        glyph = FONT.get(ch, FONT["?"])
        x0 = x + n * ADVANCE
        y1, x1 = min(y + GLYPH_H, canvas.shape[0]), min(x0 + GLYPH_W, canvas.shape[1])
        if x0 >= canvas.shape[1] or y >= canvas.shape[0] or x0 < 0 or y < 0:
            continue
        region = canvas[y:y1, x0:x1]
        region[glyph[: y1 - y, : x1 - x0]] = color


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(indices: np.ndarray, palette: np.ndarray) -> bytes:
    """An 8-bit palette PNG of ``indices`` (H, W) with ``palette`` (N <= 256, 3) RGB colours."""
    indices = np.ascontiguousarray(indices, dtype=np.uint8)
    palette = np.asarray(palette, dtype=np.uint8)
    if indices.ndim != 2 or palette.ndim != 2 or palette.shape[1] != 3 or not 0 < len(palette) <= 256:
        raise ValueError("encode_png needs (H, W) indices and an (N<=256, 3) palette")
    if indices.size and int(indices.max()) >= len(palette):
        raise ValueError("an index is outside the palette")
    height, width = indices.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), indices], axis=1)  # filter type 0 on every row
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"PLTE", palette.tobytes())
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 9))
        + _chunk(b"IEND", b"")
    )


def decode_png_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG, read from its header."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    return width, height

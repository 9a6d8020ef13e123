"""Procedural product photos, rendered with numpy and Pillow.

A photo shows one *view* of an item (``front``, ``monogram``, ``hardware`` or ``label``). The item
is its house's signature moved by the item's six flaw deviations (``_flaws.py``), drawn only where
the view shows them. On top come the nuisances a real phone photo has: background, framing and
zoom, pattern phase, lighting and colour cast, wear, sensor noise, blur and JPEG compression.

All geometry is in *design pixels* of a 96 px image and scaled to ``size``, so a larger image shows
the same scene in more detail.
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from couturier.marketplace._catalog import Brand
from couturier.marketplace._flaws import NATURAL_SIGMA, VIEWS, VISIBILITY
from couturier.marketplace._scenarios import Camera

__all__ = ["PhotoSpec", "render_photo"]

_VIEW_INDEX = {v: i for i, v in enumerate(VIEWS)}
_BACKGROUNDS = np.array(
    [[236, 236, 232], [222, 214, 200], [250, 250, 250], [180, 150, 115], [205, 210, 215]],
    dtype=np.float32,
)
_THREAD = np.array([238, 228, 205], dtype=np.float32)
_WEAR_BLOTCHES = {"new": (0, 0), "excellent": (0, 1), "good": (1, 2), "fair": (2, 4)}


class PhotoSpec:
    """What one photo shows: the brand, category, view, the item's flaws, condition."""

    __slots__ = ("brand", "category", "condition", "flaws", "view")

    def __init__(
        self, brand: Brand, category: str, view: str, flaws: np.ndarray, condition: str
    ) -> None:
        self.brand = brand
        self.category = category
        self.view = view
        # keep only what this view shows: the rest is drawn at the signature
        self.flaws = np.where(VISIBILITY[_VIEW_INDEX[view]], flaws, 0.0)
        self.condition = condition


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    c = (np.arange(size, dtype=np.float32) + 0.5) * (96.0 / size) - 48.0
    y, x = np.meshgrid(c, c, indexing="ij")
    return x, y


def render_photo(spec: PhotoSpec, rng: np.random.Generator, camera: Camera, size: int) -> bytes:
    """Render ``spec`` as JPEG bytes. ``rng`` draws every nuisance; same rng state, same bytes."""
    gx, gy = _grid(size)
    zoom = rng.uniform(0.97, 1.03)
    dx, dy = rng.uniform(-4.0, 4.0, size=2)
    x = (gx - dx) / zoom
    y = (gy - dy) / zoom
    px = zoom * size / 96.0  # image pixels per design pixel, for anti-aliasing
    b = spec.brand
    f = spec.flaws
    canvas_rgb = np.asarray(b.canvas_rgb, np.float32) + np.float32(f[3] * 255.0) * np.asarray(
        b.colour_direction, np.float32
    )
    hw_rgb = np.asarray(b.hardware_rgb, np.float32) + np.float32(f[5] * 255.0) * np.asarray(
        b.hardware_direction, np.float32
    )
    glyph_rgb = np.asarray(b.glyph_rgb, np.float32)
    bg = _BACKGROUNDS[rng.integers(len(_BACKGROUNDS))] * rng.uniform(0.92, 1.05)
    img = np.broadcast_to(bg, (*x.shape, 3)).copy()
    phase = rng.uniform(0.0, 1.0, size=2)
    spacing = b.spacing_px * (1.0 + f[0])
    angle = b.rotation_deg + f[1]
    aspect = float(np.exp(f[2]))
    stitches = b.stitches_per_100px * (1.0 + f[4])

    if spec.view == "front":
        inside, hw_mask = _silhouette(spec.category, x, y, px)
        tex = _monogram(x, y, spacing * 0.55, angle, b.glyph, 1.0, phase, canvas_rgb, glyph_rgb, px)
        shade = 1.0 - 0.12 * (y / 48.0)[..., None]
        _over(img, tex * shade, inside)
        _over(img, _metal(x, y, hw_rgb), hw_mask)
    elif spec.view == "monogram":
        tex = _monogram(x, y, spacing, angle, b.glyph, aspect, phase, canvas_rgb, glyph_rgb, px)
        img = tex
    elif spec.view == "hardware":
        strap = np.clip((22.0 - np.abs(y)) * px, 0.0, 1.0)
        plain = np.broadcast_to(np.asarray(b.canvas_rgb, np.float32), img.shape)
        _over(img, plain, strap)
        for y0 in (-17.0, 17.0):
            _over(img, _THREAD, _stitch_line(x, y, y0, stitches, phase[0], px))
        ring = np.hypot(x - 4.0, y)
        _over(img, _metal(x, y, hw_rgb), np.clip((5.0 - np.abs(ring - 17.0)) * px, 0.0, 1.0))
    else:  # label
        tag = np.clip((np.minimum(40.0 - np.abs(x), 30.0 - np.abs(y))) * px, 0.0, 1.0)
        _over(img, np.broadcast_to(canvas_rgb, img.shape), tag)
        logo = _glyph_alpha(b.glyph, x / 34.0 * aspect, (y + 6.0) / 34.0 / aspect, 34.0 * px)
        _over(img, glyph_rgb, logo)
        _over(img, glyph_rgb, _wordmark(b.name, size, zoom, dx, dy))
        for y0 in (-25.0, 25.0):
            _over(img, _THREAD, _stitch_line(x, y, y0, stitches, phase[0], px) * tag)

    lo, hi = _WEAR_BLOTCHES[spec.condition]
    for _ in range(int(rng.integers(lo, hi + 1))):
        cx, cy = rng.uniform(-36.0, 36.0, size=2)
        r = rng.uniform(4.0, 11.0)
        d = np.clip((r - np.hypot(x - cx, y - cy)) / r, 0.0, 1.0)
        img *= (1.0 - rng.uniform(0.05, 0.15) * d)[..., None]

    light = rng.uniform(0.86, 1.12)
    theta = rng.uniform(0.0, 2 * np.pi)
    g = rng.uniform(0.0, 0.12) / 48.0
    grad = gx * float(g * np.cos(theta)) + gy * float(g * np.sin(theta)) + float(light)
    img *= grad[..., None]
    warm = rng.normal(0.0, 0.015) + camera.warm_cast
    img *= np.array([1.0 + warm, 1.0, 1.0 - warm], dtype=np.float32)
    img += rng.standard_normal(size=img.shape, dtype=np.float32) * np.float32(
        2.5 * camera.noise_scale
    )
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    radius = (rng.uniform(0.2, 0.7) + camera.extra_blur) * size / 96.0
    pil = pil.filter(ImageFilter.GaussianBlur(radius))
    out = io.BytesIO()
    pil.save(out, format="JPEG", quality=camera.jpeg_quality)
    return out.getvalue()


def _over(img: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> None:
    # img += (colour - img) * a, in place and in float32
    a = alpha[..., None].astype(np.float32, copy=False)
    diff = np.subtract(colour, img, dtype=np.float32)
    diff *= a
    img += diff


def _monogram(  # noqa: PLR0913 - the pattern's geometry and colours, per pixel grid; a hot path
    x: np.ndarray,
    y: np.ndarray,
    spacing: float,
    angle_deg: float,
    glyph: str,
    aspect: float,
    phase: np.ndarray,
    canvas: np.ndarray,
    ink: np.ndarray,
    px: float,
) -> np.ndarray:
    t = np.deg2rad(angle_deg)
    c, s = float(np.cos(t) / spacing), float(np.sin(t) / spacing)
    u = x * c + y * s + float(phase[0])
    v = y * c - x * s + float(phase[1])
    fu = (u - np.floor(u) - 0.5) * aspect
    fv = (v - np.floor(v) - 0.5) / aspect
    alpha = _glyph_alpha(glyph, fu, fv, spacing * px)
    return canvas * (1.0 - alpha[..., None]) + ink * alpha[..., None]


def _glyph_alpha(glyph: str, u: np.ndarray, v: np.ndarray, cell_px: float) -> np.ndarray:
    """Anti-aliased coverage of ``glyph`` in cell coordinates (the cell spans [-0.5, 0.5))."""
    d = _glyph_sdf(glyph, u, v)
    return np.clip(0.5 - d * cell_px, 0.0, 1.0)


def _glyph_sdf(glyph: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au, av = np.abs(u), np.abs(v)
    if glyph == "ring":
        return np.abs(np.hypot(u, v) - 0.24) - 0.07
    if glyph == "disc":
        return np.hypot(u, v) - 0.24
    if glyph == "diamond":
        return (au + av - 0.32) * 0.7071
    if glyph == "square":
        return np.maximum(au, av) - 0.22
    if glyph == "cross":
        return np.minimum(np.maximum(au - 0.32, av - 0.08), np.maximum(au - 0.08, av - 0.32))
    if glyph == "chevron":
        return np.maximum(np.abs(v + 0.08 - 0.7 * au) - 0.08, au - 0.32)
    if glyph == "triangle":
        return np.maximum(0.866 * au + 0.5 * v, -v) - 0.16
    r = np.hypot(u, v)
    a = np.arctan2(v, u)
    if glyph == "star4":
        return r - (0.12 + 0.22 * np.abs(np.cos(2 * a)) ** 3)
    if glyph == "star6":
        return r - (0.16 + 0.14 * np.cos(6 * a))
    # quatrefoil
    return r - (0.22 + 0.09 * np.cos(4 * a))


def _stitch_line(
    x: np.ndarray, y: np.ndarray, y0: float, per_100px: float, phase: float, px: float
) -> np.ndarray:
    line = np.clip((1.1 - np.abs(y - y0)) * px, 0.0, 1.0)
    t = x * per_100px / 100.0 + phase
    dash = np.clip((0.3 - np.abs(t - np.floor(t) - 0.5)) * 4.0, 0.0, 1.0)
    return line * dash


def _metal(x: np.ndarray, y: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    shade = np.cos(np.arctan2(y, x) + np.float32(0.8)) * np.float32(0.28) + np.float32(0.72)
    return rgb * shade[..., None]


def _silhouette(
    category: str, x: np.ndarray, y: np.ndarray, px: float
) -> tuple[np.ndarray, np.ndarray]:
    """Coverage of the item and of its hardware in the front view."""
    if category == "bag":
        half_w = 24.0 + 0.18 * (y + 8.0)
        body = np.maximum(np.abs(x) - half_w, np.abs(y - 12.0) - 20.0)
        handle = np.maximum(np.abs(np.hypot(x, y + 8.0) - 17.0) - 2.5, y + 8.0)
        d = np.minimum(body, handle)
        hw = np.hypot(x, y + 2.0) - 4.5
    elif category == "small_leather_goods":
        q = np.maximum(np.stack([np.abs(x) - 30.0, np.abs(y) - 16.0]), 0.0)
        d = np.hypot(q[0], q[1]) - 5.0
        hw = np.hypot(x - 22.0, y) - 4.0
    elif category == "shoes":
        sole = np.hypot(x / 38.0, (y - 6.0) / 14.0) - 1.0
        d = np.minimum(sole * 14.0, np.maximum(np.abs(x - 28.0) - 6.0, np.abs(y - 20.0) - 8.0))
        hw = np.hypot(x + 14.0, y - 2.0) - 4.0
    elif category == "watch":
        case = np.hypot(x, y) - 21.0
        strap = np.maximum(np.abs(x) - 11.0, np.abs(y) - 48.0)
        d = np.minimum(case, strap)
        hw = np.abs(np.hypot(x, y) - 19.5) - 2.5
    else:  # scarf
        d = (np.abs(x) + np.abs(y) - 40.0) * 0.7071
        hw = np.abs(np.hypot(x, y - 26.0) - 4.5) - 1.5
    return np.clip(0.5 - d * px, 0.0, 1.0), np.clip(0.5 - hw * px, 0.0, 1.0)


@lru_cache(maxsize=64)
def _wordmark_mask(name: str, size: int) -> np.ndarray:
    scale = size / 96.0
    canvas = Image.new("L", (size, size), 0)
    font = ImageFont.load_default(size=max(6, round(7 * scale)))
    draw = ImageDraw.Draw(canvas)
    text = name.upper()
    width = draw.textlength(text, font=font)
    draw.text(((size - width) / 2, size / 2 + 14 * scale), text, fill=255, font=font)
    return np.asarray(canvas, dtype=np.float32) / 255.0


def _wordmark(name: str, size: int, zoom: float, dx: float, dy: float) -> np.ndarray:
    mask = _wordmark_mask(name, size)
    shift = (round(dy * size / 96.0), round(dx * size / 96.0))
    return np.roll(mask, shift, axis=(0, 1))


def sigma_units(deviation: np.ndarray) -> np.ndarray:
    """Deviations in natural units -> multiples of each flaw's natural sigma."""
    return np.asarray(deviation) / NATURAL_SIGMA

"""The image model's network: a small CNN in plain torch, a score and an embedding per photo.

Input: one photo as ``uint8`` pixels ``(n, 96, 96, 3)`` (what :func:`decode_photo` returns)
and its *context*, ``brand_id * 4 + view`` (:func:`context_codes`; the flaws are deviations
from a house's signature, and each view shows different ones). Outputs: ``logit``
(counterfeit, per photo), ``embedding`` (64 numbers, what retrieval compares) and ``points``
(per photographable control point, ``POINTS``: the logit that an expert would fail it, read
only where the photo's view shows that point).

Design, from the simulator's story (``docs/simulator.md``):

* log pixels: lighting multiplies a photo, so in log space it is an offset that the
  convolutions' zero-sum filters ignore;
* two branches. Pixels: convolutions, then global average pooling, for colours and local
  shapes (glyph aspect). Spectrum: the magnitude of the photo's 2-D Fourier transform (a
  fixed matrix product, so it exports to ONNX as MatMul), then convolutions that keep
  position, because the flaws that matter most are periodic: the monogram lattice's spacing
  and angle and the stitch density move the spectrum's peaks, whatever the pattern's phase
  or the framing. On 20k listings the spectrum branch took listing PR-AUC after one epoch
  from 0.33 (pixels only) to 0.72;
* FiLM by context: per house and view, a scale and shift of the pooled features, so "what
  is normal" is learned per house;
* an auxiliary head names the house from the pooled features (training only);
* the control-point heads, on the conditioned embedding: a fail logit per point (served: the
  per-point suspicion) and, for the measurable points, the measurement in house-standardized
  units (training only). They are what the experts' reports supervise (``image_model.py``).

How it is trained: ``image_model.py``; exported, quantized and packaged: ``_image_onnx.py``.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from couturier.errors import InvalidInputError
from couturier.marketplace import CONTROL_POINTS, MAX_BRANDS, VIEWS

__all__ = [
    "CONTEXTS",
    "EMBEDDING_DIM",
    "MEASURED",
    "MODEL_NAME",
    "POINTS",
    "SPECTRUM_GRID",
    "VISIBLE",
    "build_network",
    "context_codes",
]

#: The image model's name in the registry.
MODEL_NAME = "authentication-image"
EMBEDDING_DIM = 64
CONTEXTS = MAX_BRANDS * len(VIEWS)
#: The spectrum branch's maps are pooled to this grid (frequency rows x columns) before its
#: dense layer: a quarter of the unpooled 22 x 12 grid's weights, less overfitting.
SPECTRUM_GRID = (11, 6)
_VIEW_CODE = {v: i for i, v in enumerate(VIEWS)}
#: The control points a photo can show, in the order of the ``points`` output.
POINTS: tuple[str, ...] = tuple(p.name for p in CONTROL_POINTS if p.views)
#: The measurable ones among them, in the order of the training-only ``measures`` head.
MEASURED: tuple[str, ...] = tuple(p.name for p in CONTROL_POINTS if p.views and p.measurable)
#: VISIBLE[view index, point index]: that view shows that point.
VISIBLE = np.array([[v in p.views for p in CONTROL_POINTS if p.views] for v in VIEWS], dtype=bool)


def context_codes(brand_ids: Any, views: Any) -> np.ndarray:
    """``brand_id * 4 + view index``, refusing an unknown brand or view."""
    b = np.asarray(brand_ids, dtype=np.int64).reshape(-1)
    names = np.asarray(views, dtype=object).reshape(-1)
    unknown = [v for v in set(names.tolist()) if v not in _VIEW_CODE]
    if unknown:
        raise InvalidInputError(
            f"view {unknown[0]!r} is not a photo view; accepted: {', '.join(VIEWS)}",
            field="view",
        )
    if len(b) and (b.min() < 0 or b.max() >= MAX_BRANDS):
        raise InvalidInputError(
            f"brand_id {int(b.max() if b.max() >= MAX_BRANDS else b.min())} is outside "
            f"0..{MAX_BRANDS - 1}, the houses this model knows",
            field="brand_id",
        )
    return b * len(VIEWS) + np.array([_VIEW_CODE[v] for v in names], dtype=np.int64)


def build_network(crop: int, widths: tuple[int, int, int, int, int], dropout: float) -> Any:
    """A fresh, untrained :class:`PhotoNet` for photos centre-cropped to ``crop`` pixels.

    ``widths`` are the pixel branch's channels, layer by layer; ``dropout`` applies to the
    pooled features during training. ``forward(image, context) -> (logit, embedding,
    points)``; training calls ``encode`` and ``head`` apart to add its auxiliary losses.
    """
    import torch
    from torch import nn
    from torch.nn import functional as F  # noqa: N812

    def conv(i: int, o: int, stride: int) -> list[nn.Module]:
        return [
            nn.Conv2d(i, o, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(o),
            nn.ReLU(),
        ]

    n = crop
    w = widths
    k = torch.arange(n, dtype=torch.float64)
    angle = torch.outer(k, k) * 2 * np.pi / n
    half = n // 2 + 1
    hann = torch.hann_window(n, periodic=False, dtype=torch.float64)

    class PhotoNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # pixels: colours and local shapes, pooled over the whole photo
            self.pixels = nn.Sequential(
                *conv(3, w[0], 2),
                *conv(w[0], w[1], 1),
                nn.MaxPool2d(2),
                *conv(w[1], w[2], 1),
                nn.MaxPool2d(2),
                *conv(w[2], w[3], 1),
                nn.MaxPool2d(2),
                *conv(w[3], w[4], 1),
            )
            # spectrum: where the periodic structure's peaks are (spacing, angle, stitches)
            self.spectrum = nn.Sequential(
                *conv(1, 8, 1),
                *conv(8, 16, 2),
                *conv(16, 32, 2),
                nn.AdaptiveAvgPool2d(SPECTRUM_GRID),
                nn.Flatten(),
                nn.Linear(32 * SPECTRUM_GRID[0] * SPECTRUM_GRID[1], w[4]),
            )
            self.dropout = nn.Dropout(dropout)
            # the 2-D DFT of a real n x n image as two matrix products, P = L @ gray @ R with
            # L = [cos; sin] (2n x n) and R = [cos | sin] over the non-negative column
            # frequencies (n x 2h): right first is ~25% fewer multiply-adds than left first
            cos, sin = torch.cos(angle).float(), torch.sin(angle).float()
            self.register_buffer("left", torch.cat([cos, sin]), persistent=False)
            self.register_buffer(
                "right", torch.cat([cos[:, :half], sin[:, :half]], 1), persistent=False
            )
            self.register_buffer("window", torch.outer(hann, hann).float(), persistent=False)
            self.film = nn.Embedding(CONTEXTS, 4 * w[4])
            nn.init.zeros_(self.film.weight)
            self.hidden = nn.Linear(2 * w[4], EMBEDDING_DIM)
            self.out = nn.Linear(EMBEDDING_DIM, 1)
            # what an expert would fail, per control point; what they would measure (training)
            self.points = nn.Linear(EMBEDDING_DIM, len(POINTS))
            self.measures = nn.Linear(EMBEDDING_DIM, len(MEASURED))
            # training only: which house is this? (learns each house's signature)
            self.house = nn.Linear(2 * w[4], MAX_BRANDS)

        def forward(self, image: Any, context: Any) -> tuple[Any, Any, Any]:
            logit, embedding = self.head(self.encode(image), context)
            return logit, embedding, self.points(embedding)

        def encode(self, image: Any) -> Any:
            """Pooled features of both branches, before the context conditions them."""
            if image.shape[1] != n:  # serving: the centre crop; training passes random crops
                o = (image.shape[1] - n) // 2
                image = image[:, o : o + n, o : o + n]
            x = torch.log(image.permute(0, 3, 1, 2).float() + 4.0) - 4.5
            gray = x.mean(1)
            window, left, right = (
                cast(torch.Tensor, b) for b in (self.window, self.left, self.right)
            )
            gray = (gray - gray.mean((1, 2), keepdim=True)) * window
            p = left @ (gray @ right)  # [[c g ch, c g sh], [s g ch, s g sh]]
            re = p[:, :n, :half] - p[:, n:, half:]
            im = p[:, :n, half:] + p[:, n:, :half]
            spectrum = torch.log1p(torch.sqrt(re * re + im * im + 1e-6)).unsqueeze(1)
            pooled = torch.cat([self.pixels(x).mean((2, 3)), self.spectrum(spectrum)], 1)
            return self.dropout(pooled)

        def head(self, pooled: Any, context: Any) -> tuple[Any, Any]:
            gamma, beta = self.film(context).chunk(2, 1)
            embedding = F.relu(self.hidden(pooled * (1.0 + gamma) + beta))
            return self.out(embedding).squeeze(1), embedding

    return PhotoNet()

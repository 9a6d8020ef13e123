"""Listing photos: checked, decoded and brought to the image model's input size.

Every photo that reaches a model passes :func:`decode_photo` first, in training and in serving,
so a photo that is not an image, is empty, is too large in bytes or in pixels (a decompression
bomb) is refused with the field and the rule before any work starts.

>>> decode_photo(jpeg_bytes).shape                                    # doctest: +SKIP
(96, 96, 3)
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from couturier.errors import InvalidInputError

__all__ = ["PhotoLimits", "decode_photo", "decode_photos"]

#: The image model's input: square RGB photos of this many pixels a side.
INPUT_SIZE = 96


@dataclass(frozen=True)
class PhotoLimits:
    """What a photo may be. Defaults suit phone photos; the model sees them at 96 px."""

    max_bytes: int = 8 * 1024 * 1024
    max_pixels: int = 24_000_000  # width x height; above it a decoder could be made to explode
    min_side: int = 32
    formats: tuple[str, ...] = ("JPEG", "PNG", "WEBP")


DEFAULT_LIMITS = PhotoLimits()


def decode_photo(
    data: bytes, *, field: str = "photo", limits: PhotoLimits = DEFAULT_LIMITS
) -> np.ndarray:
    """JPEG/PNG/WebP bytes -> ``uint8`` array ``(96, 96, 3)``, or :class:`InvalidInputError`."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidInputError(
            f"{field} is a {type(data).__name__}; a photo is the bytes of a JPEG, PNG or WebP file",
            field=field,
        )
    if len(data) == 0:
        raise InvalidInputError(
            f"{field} is empty (0 bytes); send the photo's file content", field=field
        )
    if len(data) > limits.max_bytes:
        raise InvalidInputError(
            f"{field} has {len(data):,} bytes; the limit is {limits.max_bytes:,}; "
            "send a smaller or more compressed photo",
            field=field,
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > limits.max_pixels:
                raise InvalidInputError(
                    f"{field} is {width}x{height} pixels; the limit is {limits.max_pixels:,} "
                    "pixels; resize it before sending",
                    field=field,
                )
            if img.format not in limits.formats:
                raise InvalidInputError(
                    f"{field} is {img.format}; accepted formats: {', '.join(limits.formats)}",
                    field=field,
                )
            if min(width, height) < limits.min_side:
                raise InvalidInputError(
                    f"{field} is {width}x{height} pixels; each side needs at least "
                    f"{limits.min_side} pixels for the model to see the item",
                    field=field,
                )
            rgb = img.convert("RGB")  # decodes: truncated files fail here
    except InvalidInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidInputError(
            f"{field} claims more pixels than a decoder should expand; the limit is "
            f"{limits.max_pixels:,} pixels; resize it before sending",
            field=field,
        ) from None
    except UnidentifiedImageError:
        raise InvalidInputError(
            f"{field} is not a readable image; send a JPEG, PNG or WebP file", field=field
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidInputError(
            f"{field} could not be decoded ({exc}); the file is truncated or corrupt; "
            "send it again",
            field=field,
        ) from None
    if rgb.size != (INPUT_SIZE, INPUT_SIZE):
        rgb = _center_square(rgb).resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)


def decode_photos(
    photos: Sequence[bytes], *, field: str = "photos", limits: PhotoLimits = DEFAULT_LIMITS
) -> np.ndarray:
    """Many photos -> ``(n, 96, 96, 3)``; the error names the first bad one (``photos[3]``)."""
    out = np.empty((len(photos), INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)
    for i, data in enumerate(photos):
        out[i] = decode_photo(data, field=f"{field}[{i}]", limits=limits)
    return out


def _center_square(img: Image.Image) -> Image.Image:
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return img.crop((left, top, left + side, top + side))

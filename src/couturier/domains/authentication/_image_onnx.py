"""The image model outside torch: ONNX export, static int8, ONNX Runtime scoring, packaging.

The registry keeps the fp32 ONNX model (checked against torch by :func:`torch_reference`) with
its int8 variant beside it (``model.int8.onnx``); the package's ``serving_variant`` names the
one that serves. Serving and the recipe's evaluation both score through :func:`run_onnx`.
"""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from couturier.domains.authentication._image_net import EMBEDDING_DIM, MODEL_NAME, POINTS
from couturier.marketplace import VIEWS

if TYPE_CHECKING:  # the registry (MLflow) is needed to package a model, not to train one
    from couturier.registry import ModelPackage

__all__ = ["export_onnx", "package", "quantize_int8", "run_onnx", "torch_reference"]


def run_onnx(
    sess: Any, images: np.ndarray, contexts: np.ndarray, batch: int = 256
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logits, embeddings and control-point fail logits (``POINTS`` columns; NaN from a model
    exported before it had them) from an ONNX Runtime session, ``batch`` photos a call."""
    names = ["logit", "embedding", "points"]
    has_points = "points" in {o.name for o in sess.get_outputs()}
    out: list[list[np.ndarray]] = [[], [], []]
    for i in range(0, len(images), batch):
        got = sess.run(
            names if has_points else names[:2],
            {"image": images[i : i + batch], "context": contexts[i : i + batch]},
        )
        if not has_points:
            got.append(np.full((len(got[0]), len(POINTS)), np.nan, np.float32))
        for part, value in zip(out, got, strict=True):
            part.append(value)
    if not out[0]:
        return (
            np.empty(0, np.float32),
            np.empty((0, EMBEDDING_DIM), np.float32),
            np.empty((0, len(POINTS)), np.float32),
        )
    logits, embeddings, points = (np.concatenate(part) for part in out)
    return logits, embeddings, points


def torch_reference(net: Any) -> Any:
    """The framework's prediction function for the registry's parity check: inputs -> logit."""
    import torch

    def predict(sample: dict[str, np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            logit = net(torch.from_numpy(sample["image"]), torch.from_numpy(sample["context"]))[0]
        return np.asarray(logit.numpy())

    return predict


def export_onnx(net: Any) -> bytes:
    """ONNX (opset 17, dynamic batch): inputs ``image`` uint8 NHWC and ``context`` int64.

    Uses torch's TorchScript exporter: the newer ``dynamo`` exporter needs ``onnxscript``,
    which this plain CNN does not need. Batch norm is folded into the convolutions.
    """
    import torch

    buf = io.BytesIO()
    image = torch.zeros((2, 96, 96, 3), dtype=torch.uint8)
    context = torch.zeros(2, dtype=torch.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation notices
        torch.onnx.export(
            net.eval(),
            (image, context),
            buf,  # type: ignore[arg-type]  # a file-like object is accepted
            input_names=["image", "context"],
            output_names=["logit", "embedding", "points"],
            dynamic_axes={
                "image": {0: "n"},
                "context": {0: "n"},
                "logit": {0: "n"},
                "embedding": {0: "n"},
                "points": {0: "n"},
            },
            opset_version=17,
            dynamo=False,
        )
    return buf.getvalue()


def quantize_int8(onnx_model: bytes, calibration: dict[str, np.ndarray], batch: int = 64) -> bytes:
    """Static int8 (QDQ, per-channel weights) with ONNX Runtime, calibrated on real photos.

    Convolutions, dense layers, and the ReLUs and max-pools between them are quantized (with
    only the convolutions, each ReLU sat between a dequantize and a quantize: 1.6x instead of
    1.8x). Three things stay float: the Fourier transform's matrix products and the context
    lookup (a spectrum peak moved by a rounding is a false flaw; quantizing the products cost
    0.015 ROC-AUC), and convolutions over a single channel (the spectrum's first), where ONNX
    Runtime's int8 kernel took 6.4 ms a batch of 64 against float's 3.4.
    """
    import tempfile
    from pathlib import Path

    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            n = len(calibration["image"])
            self._batches = iter(
                {k: v[i : i + batch] for k, v in calibration.items()} for i in range(0, n, batch)
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src, pre, out = (Path(tmp) / n for n in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        src.write_bytes(onnx_model)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        graph = onnx.load(str(pre)).graph
        shapes = {w.name: list(w.dims) for w in graph.initializer}  # conv weights: o, i, kh, kw
        one_channel = [
            node.name
            for node in graph.node
            if node.op_type == "Conv" and shapes.get(node.input[1], [0, 0])[1] == 1
        ]
        quantize_static(
            str(pre),
            str(out),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["Conv", "Gemm", "Relu", "MaxPool"],
            nodes_to_exclude=one_channel,
        )
        return out.read_bytes()


def package(
    net: Any,
    fp32: bytes,
    int8: bytes,
    images: np.ndarray,
    contexts: np.ndarray,
    serving_variant: str,
) -> ModelPackage:
    """The fp32 model for the registry, with its int8 variant beside it as an artifact."""
    from couturier.registry import ModelPackage

    return ModelPackage(
        name=MODEL_NAME,
        onnx_model=fp32,
        features=["image", "context"],
        reference=torch_reference(net),
        sample={"image": images, "context": contexts.astype(np.int64)},
        output="logit",
        preprocessing={
            "image": "uint8 RGB (n, 96, 96, 3): decode_photo() of a JPEG, PNG or WebP",
            "context": "brand_id * 4 + view index; views in order " + ", ".join(VIEWS),
        },
        tolerance=1e-3,  # float32 convolutions and a Fourier transform, summed in another order
        description="per-photo counterfeit logit, a 64-d embedding and a fail logit per "
        "control point the photo shows; CNN on pixels and their Fourier spectrum, conditioned "
        "on house and view",
        artifacts={"model.int8.onnx": int8},
        extra={"serving_variant": serving_variant},
    )

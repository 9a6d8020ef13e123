"""ONNX parity and latency: what a model must show before it may enter the registry."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from couturier.registry.types import ModelPackage

__all__ = ["ParityReport", "check_parity", "describe_io", "measure_latency", "session"]


@dataclass(frozen=True)
class ParityReport:
    passed: bool
    max_abs_error: float
    tolerance: float
    rows: int
    detail: str


def session(onnx_model: bytes, threads: int = 1) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(onnx_model, sess_options=opts, providers=["CPUExecutionProvider"])


def feeds(sess: Any, x: np.ndarray | dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A single array goes to the first input as float32; a dict goes by name, as it is."""
    if isinstance(x, dict):
        return dict(x)
    return {sess.get_inputs()[0].name: np.asarray(x).astype(np.float32)}


def _run(sess: Any, output: str, x: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
    (out,) = sess.run([output], feeds(sess, x))
    return np.asarray(out)


def check_parity(package: ModelPackage) -> ParityReport:
    """Framework outputs vs ONNX Runtime outputs on the package's sample."""
    x = package.sample if isinstance(package.sample, dict) else np.asarray(package.sample)
    rows = package.rows()
    try:
        sess = session(package.onnx_model)
        got = _run(sess, package.output, x)
    except Exception as exc:  # an unloadable or unrunnable graph fails parity, with the reason
        return ParityReport(
            False,
            float("inf"),
            package.tolerance,
            rows,
            f"ONNX Runtime could not run the model: {type(exc).__name__}: {exc}",
        )
    want = np.asarray(package.reference(x))
    if got.shape != want.shape:
        return ParityReport(
            False,
            float("inf"),
            package.tolerance,
            rows,
            f"output {package.output!r} has shape {got.shape}, the framework's {want.shape}",
        )
    err = float(np.max(np.abs(got.astype(float) - want.astype(float)))) if got.size else 0.0
    ok = err <= package.tolerance
    return ParityReport(
        ok,
        err,
        package.tolerance,
        rows,
        f"max |onnx - framework| = {err:.3g} over {rows} rows "
        f"({'within' if ok else 'beyond'} {package.tolerance:g})",
    )


def measure_latency(
    onnx_model: bytes, output: str, row: np.ndarray | dict[str, np.ndarray], runs: int = 300
) -> float:
    """Single-row p99 in ms, one thread, after a warm-up."""
    sess = session(onnx_model)
    x: np.ndarray | dict[str, np.ndarray]
    if isinstance(row, dict):
        x = row
    else:
        x = np.asarray(row, dtype=np.float32).reshape(1, -1) if np.ndim(row) == 1 else row[:1]
    for _ in range(30):
        _run(sess, output, x)
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        _run(sess, output, x)
        samples.append(time.perf_counter() - t)
    return float(np.percentile(samples, 99) * 1000)


def describe_io(onnx_model: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Input and output names, element types and shapes, as serving needs them."""
    sess = session(onnx_model)

    def spec(arg: Any) -> dict[str, Any]:
        return {
            "name": arg.name,
            "type": arg.type,
            "shape": [d if isinstance(d, int) else None for d in arg.shape],
        }

    return [spec(a) for a in sess.get_inputs()], [spec(a) for a in sess.get_outputs()]

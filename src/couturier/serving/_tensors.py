"""Open Inference Protocol (KServe v2) tensors: JSON in, numpy arrays out, and back.

A request input is ``{"name", "shape", "datatype", "data"}``; ``data`` is flat or nested, in
row-major order. Every rule broken names the input (``inputs[1].data``), the rule and the fix.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from couturier.errors import InvalidInputError

__all__ = [
    "DATATYPES",
    "InferInput",
    "InferOutputRequest",
    "InferRequest",
    "onnx_to_datatype",
    "to_array",
    "to_binary_output",
    "to_output",
]

#: OIP datatype -> numpy dtype.
DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(bool),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
}
_NAMES = {v: k for k, v in DATATYPES.items()}
_ONNX = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}
#: Largest tensor one request may carry, in elements (a 64 x 96 x 96 x 3 batch is 1.8M).
MAX_ELEMENTS = 8_000_000


class InferInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any] = Field(default_factory=list)


class InferOutputRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[InferInput]
    outputs: list[InferOutputRequest] | None = None


def onnx_to_datatype(onnx_type: str) -> str:
    return _ONNX.get(onnx_type, onnx_type)


def to_array(
    item: InferInput, index: int, expected: dict[str, Any] | None, raw: memoryview | None = None
) -> np.ndarray:
    """One request input as a numpy array, checked against the model's declared input.

    ``raw``: its values as the binary tensor extension sends them (row-major, little-endian).
    """
    where = f"inputs[{index}]"
    dtype = DATATYPES.get(item.datatype)
    if dtype is None:
        raise InvalidInputError(
            f"{where}.datatype {item.datatype!r} is not supported; accepted: "
            f"{', '.join(DATATYPES)}",
            field=f"{where}.datatype",
        )
    if expected is not None and item.datatype != expected["datatype"]:
        raise InvalidInputError(
            f"{where} ({item.name}) is {item.datatype}; the model takes {expected['datatype']}",
            field=f"{where}.datatype",
        )
    if any(d < 0 for d in item.shape):
        raise InvalidInputError(
            f"{where}.shape {item.shape} has a negative dimension", field=f"{where}.shape"
        )
    size = math.prod(item.shape)
    if size > MAX_ELEMENTS:
        raise InvalidInputError(
            f"{where}.shape {item.shape} holds {size:,} elements; the limit is {MAX_ELEMENTS:,}; "
            "send smaller batches",
            field=f"{where}.shape",
        )
    if expected is not None:
        want = expected["shape"]
        if len(want) != len(item.shape) or any(
            w not in (-1, None) and w != g for w, g in zip(want, item.shape, strict=False)
        ):
            raise InvalidInputError(
                f"{where} ({item.name}) has shape {item.shape}; the model takes {want} "
                "(-1: any size)",
                field=f"{where}.shape",
            )
    if raw is not None:
        if len(raw) != size * dtype.itemsize:
            raise InvalidInputError(
                f"{where}.parameters.binary_data_size is {len(raw)} bytes; shape {item.shape} "
                f"of {item.datatype} needs {size * dtype.itemsize}",
                field=f"{where}.parameters.binary_data_size",
            )
        flat = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype, copy=False)
    else:
        try:
            flat = np.asarray(item.data, dtype=dtype).reshape(-1)
        except (ValueError, TypeError, OverflowError):
            raise InvalidInputError(
                f"{where}.data does not hold {item.datatype} values (numbers, or booleans for "
                "BOOL)",
                field=f"{where}.data",
            ) from None
        if flat.size != size:
            raise InvalidInputError(
                f"{where}.data has {flat.size} values; shape {item.shape} needs {size}",
                field=f"{where}.data",
            )
    # NaN is a legitimate "missing" for tree models; infinity never is
    if dtype.kind == "f" and np.isinf(flat).any():
        raise InvalidInputError(
            f"{where}.data holds infinity; send finite numbers (NaN, or null in JSON, for missing)",
            field=f"{where}.data",
        )
    return flat.reshape(item.shape)


def _typed(value: np.ndarray) -> tuple[np.ndarray, str]:
    array = np.asarray(value)
    datatype = _NAMES.get(array.dtype, "FP32")
    if datatype == "FP32" and array.dtype != np.float32:
        array = array.astype(np.float32)
    return array, datatype


def to_output(name: str, value: np.ndarray) -> dict[str, Any]:
    """One output as a JSON tensor (NaN as null)."""
    array, datatype = _typed(value)
    data = array.reshape(-1).tolist()
    if array.dtype.kind == "f":  # JSON has no NaN: send null
        data = [None if np.isnan(x) else x for x in data]
    return {"name": name, "shape": list(array.shape), "datatype": datatype, "data": data}


def to_binary_output(name: str, value: np.ndarray) -> tuple[dict[str, Any], bytes]:
    """One output for the binary tensor extension: its description and its raw bytes."""
    array, datatype = _typed(value)
    blob = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    described = {
        "name": name,
        "shape": list(array.shape),
        "datatype": datatype,
        "parameters": {"binary_data_size": len(blob)},
    }
    return described, blob

"""Serving speed: single-row Open Inference Protocol infer of a small tabular ONNX model.

    python benchmarks/serving.py --out benchmarks/results/serving.json [--seconds 10]

One run, one machine, one load generator (wrk from Debian: 1 thread, 32 connections, the same
OIP JSON body): couturier's server, a plain FastAPI handler running the same ONNX file, and a
bare no-op ASGI app (the ceiling of uvicorn itself), each in its own uvicorn process with one
worker; plus in-process ONNX Runtime calls per second. Writes JSON shaped like issue 6's
``tabular`` section.

Not measured yet (recorded as such in the JSON, never silently dropped): MLServer, BentoML and
Ray Serve (each needs its own virtual environment), the CNN batching runs, /v1/authenticate,
the swap and surge runs.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request  # at module level: handler annotations must resolve

FEATURES = 38  # as wide as the authentication listing model
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[{body}]]
"""


def _model(path: Path) -> np.ndarray:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, FEATURES)).astype(np.float32)
    y = (x[:, 0] + rng.normal(size=2000) > 1).astype(int)
    model = LogisticRegression(max_iter=500).fit(x, y)
    onx = to_onnx(model, x[:1], options={id(model): {"zipmap": False}}, target_opset=17)
    path.write_bytes(onx.SerializeToString())
    return x


# ---- the servers under test (run in their own processes) ----------------------------------
def _couturier_app(model: Path) -> Any:
    from couturier.serving import LoadedVersion, ModelRepository, create_app

    repository = ModelRepository()
    repository.add(LoadedVersion.from_onnx("tabular", 1, model.read_bytes(), {}, threads=1))
    return create_app(repository, expected=["tabular"])


def _fastapi_plain_app(model: Path) -> Any:
    """What a team writes in an afternoon: parse the OIP body, run ONNX Runtime, answer."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    app = FastAPI()

    @app.post("/v2/models/tabular/infer")
    async def infer(request: Request) -> dict[str, Any]:
        body = await request.json()
        item = body["inputs"][0]
        x = np.asarray(item["data"], dtype=np.float32).reshape(item["shape"])
        (p,) = sess.run(["probabilities"], {item["name"]: x})
        return {
            "model_name": "tabular",
            "outputs": [
                {
                    "name": "probabilities",
                    "shape": list(p.shape),
                    "datatype": "FP32",
                    "data": p.ravel().tolist(),
                }
            ],
        }

    return app


async def _noop_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while True:  # drain the body
        message = await receive()
        if not message.get("more_body"):
            break
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"outputs": []}'})


def _serve(kind: str, port: int, model: Path) -> None:
    import uvicorn

    app = {"couturier": _couturier_app, "fastapi_plain": _fastapi_plain_app}.get(kind)
    uvicorn.run(
        app(model) if app else _noop_app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )


# ---- the load ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _wrk(url: str, script: Path, seconds: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", "-c32", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": round(rps, 1),
        "p50_ms": round(p50, 3),
        "p99_ms": round(p99, 3),
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve, args.port, args.model)
        return
    if args.out is None:
        parser.error("--out is required")
    work = Path(tempfile.mkdtemp(prefix="couturier-serving-bench-"))
    model = work / "tabular.onnx"
    x = _model(model)
    body = json.dumps(
        {
            "inputs": [
                {"name": "X", "shape": [1, FEATURES], "datatype": "FP32", "data": x[0].tolist()}
            ]
        }
    )
    script = work / "post.lua"
    script.write_text(WRK_SCRIPT.replace("{body}", body))
    tabular: dict[str, Any] = {}
    for kind in ("noop_asgi", "fastapi_plain", "couturier"):
        port = _free_port()
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, "--port", str(port), "--model", str(model)]
        )
        try:
            _wait(port)
            url = f"http://127.0.0.1:{port}/v2/models/tabular/infer"
            _wrk(url, script, 2)  # warm-up
            tabular[kind] = _wrk(url, script, args.seconds)
            print(kind, tabular[kind], flush=True)
        finally:
            proc.terminate()
            proc.wait(10)
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    row = x[:1]
    for _ in range(1000):
        sess.run(["probabilities"], {"X": row})
    n, t = 20000, time.perf_counter()
    for _ in range(n):
        sess.run(["probabilities"], {"X": row})
    tabular["inprocess_ort"] = {"calls_per_s": round(n / (time.perf_counter() - t), 1)}
    not_run = "not measured yet: needs its own virtual environment (issue 6)"
    for peer in ("mlserver", "bentoml", "rayserve"):
        tabular[peer] = {"error": not_run}
    c, plain, noop = tabular["couturier"], tabular["fastapi_plain"], tabular["noop_asgi"]
    result = {
        "tabular": tabular,
        "ratios": {
            "couturier_over_fastapi_plain": round(c["rps"] / plain["rps"], 3),
            "couturier_over_noop": round(c["rps"] / noop["rps"], 3),
        },
        "load": "wrk -t1 -c32, one uvicorn worker per server, single-row OIP JSON body",
        "seconds": args.seconds,
    }
    print(json.dumps(result, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

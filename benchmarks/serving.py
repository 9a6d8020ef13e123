"""Serving speed and reliability, peers and ceilings in the same run (issue 6).

    python benchmarks/serving.py --out benchmarks/results/serving.json [--seconds 10]
        [--only tabular,peers,cnn,swaps,surge,authenticate] [--authenticate-home DIR]

One machine, one load generator (wrk from Debian), JSON results:

* ``tabular``: single-row OIP infer of a 38-feature ONNX logistic regression, wrk 1 thread and
  32 connections: couturier, a plain FastAPI handler, a bare no-op ASGI app (uvicorn's
  ceiling), MLServer, BentoML and Ray Serve (``serving_peers.py``: each in a virtual
  environment of its own, created on first use), all on the same ONNX file, one process each;
  plus in-process ONNX Runtime calls per second. A peer that cannot start is recorded with
  its error.
* ``cnn``: the authentication image model's architecture (untrained weights: speed does not
  depend on them), one 96 x 96 photo per request sent with the binary tensor extension, 64
  connections: couturier with dynamic batching vs with batching off, and in-process ONNX
  Runtime on batches of 64.
* ``swaps``: 10 champion moves in a registry while wrk loads the server that follows it.
* ``surge``: the CNN server under about 3x its saturation (192 connections, shed requests come
  straight back): the share answered 503, the p99 of the admitted requests (a probe client's
  own timings), and the seconds until the probe sees normal latency after the surge.
* ``authenticate``: ``POST /v1/authenticate`` of a demo marketplace's listing (``couturier
  demo`` in a fresh home unless ``--authenticate-home`` names one): its saturation rate, then
  its p99 at half of it, against the sum of its stages' single-request times.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request  # at module level: handler annotations must resolve

from _results import write_result  # beside this script, on sys.path when it runs
from serving_peers import PEERS  # beside this script, on sys.path when it runs

FEATURES = 38  # as wide as the authentication listing model
SECTIONS = ("tabular", "peers", "cnn", "swaps", "surge", "authenticate")
WRK_JSON = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "rb"); wrk.body = f:read("*all"); f:close()
"""
WRK_BINARY = """
wrk.method = "POST"
wrk.headers["Inference-Header-Content-Length"] = "{head}"
local f = io.open("{body}", "rb"); wrk.body = f:read("*all"); f:close()
"""
# open loop-ish pacing for a target rate: each connection waits before its next request
WRK_DELAY = "\nfunction delay() return {ms} end\n"


# ---- models -------------------------------------------------------------------------------
def _tabular(path: Path) -> tuple[np.ndarray, np.ndarray, Any]:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, FEATURES)).astype(np.float32)
    y = (x[:, 0] + rng.normal(size=2000) > 1).astype(int)
    model = LogisticRegression(max_iter=500).fit(x, y)
    onx = to_onnx(model, x[:1], options={id(model): {"zipmap": False}}, target_opset=17)
    path.write_bytes(onx.SerializeToString())
    return x, y, model


def _cnn(path: Path) -> None:
    import torch

    from couturier.domains.authentication import image_model

    torch.manual_seed(0)
    net = image_model._build(image_model.ImageTrainConfig())  # untrained: same cost
    path.write_bytes(image_model.export_onnx(net))


# ---- the servers under test (each in its own process: --serve KIND) -----------------------
def _couturier_app(model: Path, name: str, batching: dict[str, Any], home: str | None) -> Any:
    from couturier.serving import Batching, LoadedVersion, ModelRepository, create_app

    if home:  # serve the registry's champion and follow its moves
        from couturier.registry import ModelRegistry
        from couturier.settings import Settings

        settings = Settings(home=Path(home))
        registry = ModelRegistry(settings)
        try:
            repository = ModelRepository.from_registry(registry, [name], threads=1)
        finally:
            registry.close()
        return create_app(
            repository,
            expected=[name],
            batching=Batching(**batching),
            registry=lambda: ModelRegistry(settings),
            follow_interval_s=0.2,
        )
    repository = ModelRepository()
    repository.add(LoadedVersion.from_onnx(name, 1, model.read_bytes(), {}, threads=1))
    return create_app(repository, expected=[name], batching=Batching(**batching))


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


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    if args.serve == "couturier":
        app = _couturier_app(args.model, args.name, json.loads(args.batching), args.home)
    elif args.serve == "fastapi_plain":
        app = _fastapi_plain_app(args.model)
    else:
        app = _noop_app
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


# ---- processes and load -------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before listening")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port} after {timeout:.0f} s")


@contextmanager
def _process(command: list[str], port: int, timeout: float = 60, **popen: Any) -> Iterator[None]:
    proc = subprocess.Popen(command, start_new_session=True, **popen)
    try:
        _wait(port, proc, timeout)
        yield
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _couturier(
    port: int,
    model: Path,
    name: str,
    batching: dict[str, Any] | None = None,
    home: Path | None = None,
) -> Any:
    command = [sys.executable, __file__, "--serve", "couturier", "--port", str(port)]
    command += ["--model", str(model), "--name", name, "--batching", json.dumps(batching or {})]
    if home is not None:
        command += ["--home", str(home)]
    return _process(command, port)


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _wrk(url: str, script: Path, seconds: float, connections: int = 32) -> dict[str, Any]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    failed = sum(map(int, re.findall(r"\d+", socket_errors.group(1)))) if socket_errors else 0
    return {
        "rps": round(rps, 1),
        "p50_ms": round(p50, 3),
        "p99_ms": round(p99, 3),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": failed,
    }


def _script(
    work: Path, name: str, body: bytes, head: int | None = None, delay_ms: float = 0
) -> Path:
    path = work / f"{name}.body"
    path.write_bytes(body)
    template = WRK_JSON if head is None else WRK_BINARY
    text = template.replace("{body}", str(path)).replace("{head}", str(head))
    if delay_ms:
        text += WRK_DELAY.replace("{ms}", f"{delay_ms:.1f}")
    script = work / f"{name}.lua"
    script.write_text(text)
    return script


def _request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    status, _, answer = _timed(port, method, path, body, headers)
    if status != 200:
        raise RuntimeError(f"{method} {path} answered {status}: {answer[:300]!r}")
    return answer


def _timed(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, float, bytes]:
    """One request on a fresh connection: (status, seconds, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    start = time.perf_counter()
    try:
        conn.request(method, path, body, headers or {})
        response = conn.getresponse()
        answer = response.read()
        return response.status, time.perf_counter() - start, answer
    finally:
        conn.close()


# ---- sections -----------------------------------------------------------------------------
def tabular(work: Path, model: Path, x: np.ndarray, seconds: int, peers: bool) -> dict[str, Any]:
    body = {"inputs": [{"name": "X", "shape": [1, FEATURES], "datatype": "FP32", "data": []}]}
    body["inputs"][0]["data"] = x[0].tolist()
    script = _script(work, "tabular", json.dumps(body).encode())
    path = "/v2/models/tabular/infer"
    result: dict[str, Any] = {}

    def measure(kind: str) -> None:
        _wrk(f"http://127.0.0.1:{port}{path}", script, 2)  # warm-up
        result[kind] = _wrk(f"http://127.0.0.1:{port}{path}", script, seconds)
        print(kind, result[kind], flush=True)

    for kind in ("noop_asgi", "fastapi_plain"):
        port = _free_port()
        command = [sys.executable, __file__, "--serve", kind, "--port", str(port)]
        with _process([*command, "--model", str(model)], port):
            measure(kind)
    port = _free_port()
    with _couturier(port, model, "tabular"):
        measure("couturier")
    for peer in PEERS:
        if not peers:
            result[peer.name] = {"error": "not run (--only without peers)"}
            continue
        try:
            versions = peer.install()
            port = _free_port()
            proc = peer.start(work, model, port)
            try:
                _wait(port, proc, peer.start_timeout_s)
                status = 0
                deadline = time.time() + peer.start_timeout_s
                while status != 200 and time.time() < deadline:  # listening is not ready
                    try:
                        status, _, _ = _timed(
                            port, "POST", path, script.with_suffix(".body").read_bytes()
                        )
                    except OSError:
                        status = 0
                    if status != 200:
                        time.sleep(1)
                if status != 200:
                    raise RuntimeError(f"answers {status} to the infer body")
                measure(peer.name)
                result[peer.name]["versions"] = versions
            finally:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                peer.cleanup()
        except Exception as exc:  # recorded, never silently dropped
            log = work / peer.name / "server.log"
            tail = log.read_text(errors="replace")[-600:] if log.exists() else ""
            result[peer.name] = {"error": f"{type(exc).__name__}: {exc}", "log_tail": tail}
            print(peer.name, "failed:", exc, flush=True)
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
    result["inprocess_ort"] = {"calls_per_s": round(n / (time.perf_counter() - t), 1)}
    measured = [result[p.name]["rps"] for p in PEERS if "rps" in result[p.name]]
    c, plain = result["couturier"], result["fastapi_plain"]
    result["ratios"] = {
        "couturier_over_fastapi_plain": round(c["rps"] / plain["rps"], 3),
        "couturier_over_noop": round(c["rps"] / result["noop_asgi"]["rps"], 3),
        "couturier_over_best_peer": round(c["rps"] / max(measured), 3) if measured else None,
        "p99_vs_fastapi_plain": round(c["p99_ms"] / plain["p99_ms"], 3),
    }
    return result


def _cnn_request() -> tuple[bytes, int]:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (1, 96, 96, 3), dtype=np.uint8)
    context = np.zeros(1, np.int64)
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "image",
                    "shape": [1, 96, 96, 3],
                    "datatype": "UINT8",
                    "parameters": {"binary_data_size": image.nbytes},
                },
                {
                    "name": "context",
                    "shape": [1],
                    "datatype": "INT64",
                    "parameters": {"binary_data_size": context.nbytes},
                },
            ],
            "outputs": [{"name": "logit"}],
        }
    ).encode()
    return head + image.tobytes() + context.tobytes(), len(head)


def cnn(work: Path, model: Path, seconds: int) -> dict[str, Any]:
    body, head = _cnn_request()
    script = _script(work, "cnn", body, head)
    url_path = "/v2/models/cnn/infer"
    result: dict[str, Any] = {"connections": 64}
    for kind, batching in (
        ("unbatched", {"max_batch": 1}),  # every request is a full batch: run alone
        ("batched", {"max_batch": 64, "max_wait_ms": 5.0, "max_queue_ms": 1000.0}),
    ):
        port = _free_port()
        with _couturier(port, model, "cnn", batching):
            url = f"http://127.0.0.1:{port}{url_path}"
            _wrk(url, script, 2, 64)
            result[kind] = _wrk(url, script, seconds, 64)
        print("cnn", kind, result[kind], flush=True)
    from couturier.registry._packaging import session

    sess = session(model.read_bytes(), 1)
    rng = np.random.default_rng(0)
    feeds = {
        "image": rng.integers(0, 256, (64, 96, 96, 3), dtype=np.uint8),
        "context": np.zeros(64, np.int64),
    }
    sess.run(["logit"], feeds)
    runs, t = 10, time.perf_counter()
    for _ in range(runs):
        sess.run(["logit"], feeds)
    inprocess = 64 * runs / (time.perf_counter() - t)
    result |= {
        "batched_rps": result["batched"]["rps"],
        "unbatched_rps": result["unbatched"]["rps"],
        "inprocess_rps": round(inprocess, 1),
        "batched_over_unbatched": round(result["batched"]["rps"] / result["unbatched"]["rps"], 2),
        "batched_over_inprocess": round(result["batched"]["rps"] / inprocess, 3),
        "threads": "one ONNX Runtime intra-op thread everywhere",
    }
    return result


def swaps(work: Path, model: Path, x: np.ndarray, y: np.ndarray, seconds: int) -> dict[str, Any]:
    """10 champion moves while wrk loads the server following the registry."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    from couturier.evaluation import evaluate
    from couturier.registry import GatePolicy, ModelPackage, ModelRegistry
    from couturier.settings import Settings

    settings = Settings(home=work / "swaps-home")
    registry = ModelRegistry(settings)
    policy = GatePolicy(min_improvement=-1.0, max_ece=None, latency_budget_ms=50.0)
    features = [f"f{i}" for i in range(FEATURES)]
    try:
        for seed in (0, 1):
            m = LogisticRegression(max_iter=500, C=1.0 + seed).fit(x, y)
            onx = to_onnx(m, x[:1], options={id(m): {"zipmap": False}}, target_opset=17)
            package = ModelPackage(
                name="tabular",
                onnx_model=onx.SerializeToString(),
                features=features,
                reference=m.predict_proba,
                sample=x[:200],
                output="probabilities",
            )
            champion = registry.alias_version("tabular", "champion")
            ev = evaluate(y, m.predict_proba(x)[:, 1], {}, "bench")
            with registry.start_run("bench", "tabular") as run:
                run.log_evaluation(ev)
                v = registry.register(
                    package,
                    ev,
                    run=run,
                    policy=policy,
                    champion_evaluation=ev if champion else None,
                )
            registry.promote("tabular", v.version, "champion", actor="bench", reason="setup")
        body = {"inputs": [{"name": "X", "shape": [1, FEATURES], "datatype": "FP32"}]}
        body["inputs"][0]["data"] = x[0].tolist()
        script = _script(work, "swaps", json.dumps(body).encode())
        port = _free_port()
        moves = 10
        with _couturier(port, model, "tabular", home=settings.home):
            url = f"http://127.0.0.1:{port}/v2/models/tabular/infer"
            load: dict[str, Any] = {}
            duration = max(seconds, moves + 4)
            runner = threading.Thread(
                target=lambda: load.update(_wrk(url, script, duration)), daemon=True
            )
            runner.start()
            time.sleep(1.5)
            for i in range(moves):  # back and forth between the two versions
                if i % 2 == 0:
                    registry.rollback("tabular", actor="bench", reason=f"swap {i}")
                else:
                    registry.promote("tabular", 2, "champion", actor="bench", reason=f"swap {i}")
                time.sleep(0.8)
            runner.join()
            metrics = _request(port, "GET", "/metrics").decode()
        swapped = sum(
            float(v)
            for v in re.findall(
                r'couturier_swaps_total\{model="tabular",outcome="ok",role="champion"\} (\S+)',
                metrics,
            )
        )
    finally:
        registry.close()
    failed = load["non_2xx"] + load["socket_errors"]
    return {"count": moves, "swapped": int(swapped), "failed": failed, "load": load}


def _latency_buckets(port: int, code: str) -> dict[float, float]:
    """The server's own latency histogram of the CNN infer route for one status code."""
    from prometheus_client.parser import text_string_to_metric_families

    text = _request(port, "GET", "/metrics").decode()
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "couturier_request_seconds_bucket" and (
                sample.labels.get("model") == "cnn" and sample.labels.get("code") == code
            ):
                buckets[float(sample.labels["le"])] = sample.value
    return buckets


def _quantile(before: dict[float, float], after: dict[float, float], q: float) -> float | None:
    """q-quantile of the requests observed between two scrapes (linear within a bucket)."""
    edges = sorted(after)
    counts = [after[e] - before.get(e, 0.0) for e in edges]
    if not counts or counts[-1] <= 0:
        return None
    want, lower, below = q * counts[-1], 0.0, 0.0
    for edge, cumulative in zip(edges, counts, strict=True):
        if cumulative >= want:
            if edge == float("inf"):
                return lower
            return lower + (edge - lower) * (want - below) / max(cumulative - below, 1e-9)
        lower, below = edge, cumulative
    return lower


def surge(work: Path, model: Path, seconds: int, saturation_rps: float | None) -> dict[str, Any]:
    """The CNN server at ~3x its saturation: shed fast, admitted bounded, recover at once."""
    body, head = _cnn_request()
    batching = {"max_batch": 64, "max_wait_ms": 5.0, "max_queue_ms": 150.0}
    headers = {"Inference-Header-Content-Length": str(head)}
    path = "/v2/models/cnn/infer"
    port = _free_port()
    with _couturier(port, model, "cnn", batching):
        url = f"http://127.0.0.1:{port}{path}"
        script = _script(work, "surge-saturate", body, head)
        if saturation_rps is None:
            _wrk(url, script, 2, 64)
            saturation_rps = _wrk(url, script, seconds, 64)["rps"]
        baseline = sorted(_timed(port, "POST", path, body, headers)[1] for _ in range(30))
        normal = baseline[len(baseline) // 2]
        # 3x the connections that saturate it, unpaced: a shed request comes straight back,
        # so the offered rate ends up well over 3x saturation (reported)
        connections = 192
        probes: list[tuple[float, int, float]] = []  # (time, status, seconds)
        stop = threading.Event()

        def probe() -> None:
            while not stop.is_set():
                status, took, _ = _timed(port, "POST", path, body, headers)
                probes.append((time.perf_counter(), status, took))
                time.sleep(0.01)

        before = {c: _latency_buckets(port, c) for c in ("200", "503")}
        prober = threading.Thread(target=probe, daemon=True)
        prober.start()
        start = time.perf_counter()
        load = _wrk(url, script, seconds, connections)
        surge_end = time.perf_counter()
        time.sleep(5)
        stop.set()
        prober.join()
        after = {c: _latency_buckets(port, c) for c in ("200", "503")}
    during = [p for p in probes if start <= p[0] <= surge_end]
    after_surge = [p for p in probes if p[0] > surge_end]
    recovered = next(
        (
            p[0] - surge_end
            for i, p in enumerate(after_surge)
            if all(q[1] == 200 and q[2] < 3 * normal for q in after_surge[i : i + 5])
        ),
        None,
    )
    admitted = _quantile(before["200"], after["200"], 0.99)
    shed = _quantile(before["503"], after["503"], 0.99)
    offered = load["rps"]  # requests answered per second, 200s and 503s alike
    return {
        "saturation_rps": saturation_rps,
        "offered_rps": offered,
        "offered_over_saturation": round(offered / saturation_rps, 2),
        "shed_fraction": round(load["non_2xx"] / max(1.0, offered * seconds), 3),
        "admitted_p99_ms": None if admitted is None else round(admitted * 1000, 1),
        "shed_p99_ms": None if shed is None else round(shed * 1000, 2),
        "probe_shed_fraction": round(sum(p[1] != 200 for p in during) / max(1, len(during)), 3),
        "normal_p50_ms": round(normal * 1000, 2),
        "recovery_s": None if recovered is None else round(max(0.0, recovered), 2),
        "wrk": load,
        "max_queue_ms": batching["max_queue_ms"],
        "note": "admitted and shed p99 from the server's own latency histogram (by status code)",
    }


def authenticate(work: Path, seconds: int, home: Path | None) -> dict[str, Any]:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ}
    result: dict[str, Any] = {}
    if home is None:
        home = work / "demo-home"
        env["COUTURIER_HOME"] = str(home)
        t = time.perf_counter()
        subprocess.run(
            [str(bin_dir / "couturier"), "demo"], env=env, check=True, capture_output=True
        )
        result["demo_seconds"] = round(time.perf_counter() - t, 1)
    env["COUTURIER_HOME"] = str(home)
    from couturier.marketplace import Marketplace

    market = Marketplace(home / "marketplace" / "demo")
    listings = market.read(
        "listings", ["listing_id", "seller_id", "product_id", "brand_id", "category"]
    )
    photos = market.read("photos", ["listing_id", "view", "image"])
    row = listings.iloc[-1]
    mine = photos[photos["listing_id"] == row["listing_id"]]
    request: dict[str, Any] = {
        **{k: (int(row[k]) if k != "category" else str(row[k])) for k in listings.columns},
        "photos": [
            {"view": v, "data": base64.b64encode(bytes(b)).decode()}
            for v, b in zip(mine["view"], mine["image"], strict=True)
        ],
    }
    body = json.dumps(request).encode()
    port = _free_port()
    command = [str(bin_dir / "couturier"), "serve", "--port", str(port), "--no-follow"]
    with _process(command, port, 120, env=env, stdout=subprocess.DEVNULL):
        headers = {"Content-Type": "application/json"}
        stages: list[float] = []
        each: dict[str, list[float]] = {}
        for _ in range(100):  # one request at a time: each stage's single-request time
            ms = json.loads(_request(port, "POST", "/v1/authenticate", body, headers))["latency_ms"]
            stages.append(
                ms["decode"] + ms["features"] + ms["image_model"] + ms["retrieval_fusion"]
            )
            for stage, value in ms.items():
                each.setdefault(stage, []).append(value)
        stage_sum = float(np.median(stages))
        result["stages_p50_ms"] = {k: round(float(np.median(v)), 3) for k, v in each.items()}
        url = f"http://127.0.0.1:{port}/v1/authenticate"
        script = _script(work, "authenticate", body)
        _wrk(url, script, 2, 8)
        saturated = _wrk(url, script, seconds, 8)
        rate = saturated["rps"] / 2
        # Half the saturation rate, two arrival patterns. Evenly spaced: one connection that
        # pauses between requests so it offers the rate. Bunched: four connections pausing
        # independently, so requests sometimes arrive together and queue.
        alone = _wrk(url, script, 3, 1)
        delay = max(0.0, 1000 / rate - alone["p50_ms"])
        even = _wrk(url, _script(work, "auth-even", body, delay_ms=delay), seconds, 1)
        delay4 = max(0.0, 4000 / rate - alone["p50_ms"])
        bunched = _wrk(url, _script(work, "auth-bunched", body, delay_ms=delay4), seconds, 4)
    result |= {
        "photos": len(request["photos"]),
        "stage_sum_ms": round(stage_sum, 2),
        "saturation_rps": saturated["rps"],
        "half_load": even,
        "half_load_bunched": bunched,
        "p99_ms": even["p99_ms"],
        "p99_over_stage_sum": round(even["p99_ms"] / stage_sum, 2),
        "bunched_p99_over_stage_sum": round(bunched["p99_ms"] / stage_sum, 2),
        "stage_sum": "median over 100 single requests of decode + features + image model + "
        "retrieval/fusion as the answer reports them (features and image model overlap)",
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--only", default=",".join(SECTIONS))
    parser.add_argument("--authenticate-home", type=Path)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--name", default="tabular", help=argparse.SUPPRESS)
    parser.add_argument("--batching", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args)
        return
    if args.out is None:
        parser.error("--out is required")
    only = set(args.only.split(","))
    work = Path(tempfile.mkdtemp(prefix="couturier-serving-bench-"))
    model = work / "tabular.onnx"
    x, y, _ = _tabular(model)
    result: dict[str, Any] = {
        "load": "wrk (Debian), 1 thread; one uvicorn worker per server",
        "seconds": args.seconds,
        "cpus": os.cpu_count(),
    }
    if "tabular" in only:
        result["tabular"] = tabular(work, model, x, args.seconds, "peers" in only)
    if only & {"cnn", "surge"}:
        cnn_model = work / "cnn.onnx"
        _cnn(cnn_model)
    if "cnn" in only:
        result["cnn"] = cnn(work, cnn_model, args.seconds)
    if "swaps" in only:
        result["swaps"] = swaps(work, model, x, y, args.seconds)
        print("swaps", result["swaps"], flush=True)
    if "surge" in only:
        saturation = result.get("cnn", {}).get("batched_rps")
        result["surge"] = surge(work, cnn_model, args.seconds, saturation)
        print("surge", result["surge"], flush=True)
    if "authenticate" in only:
        result["authenticate"] = authenticate(work, args.seconds, args.authenticate_home)
        print("authenticate", result["authenticate"], flush=True)
    print(json.dumps(result, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_result(args.out, result)


if __name__ == "__main__":
    main()

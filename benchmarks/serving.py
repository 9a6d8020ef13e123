"""Serving speed and reliability, peers and ceilings in the same run (issue 6).

    python benchmarks/serving.py --out benchmarks/results/serving.json [--seconds 10]
        [--only tabular,peers,cnn,swaps,surge,authenticate] [--authenticate-home DIR]

One machine, one load generator (wrk from Debian), JSON results:

* ``tabular``: single-row OIP infer of a 38-feature ONNX logistic regression, wrk 1 thread and
  32 connections: a bare no-op ASGI app (no model), a plain FastAPI handler, and under each of
  uvicorn and Granian in alternating rounds (``servers``, decision 0017) the model-only ASGI
  app (parse the same OIP JSON, run the same ONNX Runtime call, answer: the ceiling for this
  model) and couturier; MLServer, BentoML and Ray Serve (``serving_peers.py``: each in a
  virtual environment of its own, created on first use), all on the same ONNX file, one
  process each; plus in-process ONNX Runtime calls per second. A peer that cannot start is
  recorded with its error.
* ``cnn``: the authentication image model's architecture (untrained weights: speed does not
  depend on them), one 96 x 96 photo per request sent with the binary tensor extension, 64
  connections: couturier with dynamic batching vs with batching off, and in-process ONNX
  Runtime on batches of 64.
* ``swaps``: 10 champion moves in a registry while wrk loads the server that follows it.
* ``surge``: the CNN server offered 3x its saturation rate by an open-loop client (requests
  sent at their scheduled times whatever the server does): the share answered 503, the p99 of
  the admitted requests, and the seconds until latency is normal again after the surge.
* ``authenticate``: ``POST /v1/authenticate`` of a demo marketplace's listing (``couturier
  demo`` in a fresh home unless ``--authenticate-home`` names one): its saturation rate, its
  p99 at half of it against the p99 of the same graph called in process at that rate
  (``inprocess_p99_ms``), and the same server under uvicorn.
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
SERVERS = ("uvicorn", "granian")  # the HTTP servers compared (decision 0017)
ROUNDS = 3  # alternating rounds of that comparison
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


def _model_only_app(model: Path) -> Any:
    """The ceiling for this model: a bare ASGI app, no framework, that parses the same OIP JSON
    body (stdlib json), runs the same ONNX Runtime call on the event loop (all outputs) and
    answers them as JSON tensors. No checks, no metrics: a ceiling for this model, not a proof
    that no server could go faster (a faster JSON parser would)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    headers = [(b"content-type", b"application/json")]
    names = [o.name for o in sess.get_outputs()]
    types = {"f": "FP32", "i": "INT64"}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        item = json.loads(b"".join(chunks))["inputs"][0]
        x = np.asarray(item["data"], dtype=np.float32).reshape(item["shape"])
        outputs = [  # every output, as the request names none (what couturier answers too)
            {"name": name, "shape": list(v.shape), "datatype": types[v.dtype.kind], "data": v}
            for name, v in zip(names, sess.run(names, {item["name"]: x}), strict=True)
        ]
        for output in outputs:
            output["data"] = output["data"].ravel().tolist()
        payload = json.dumps({"model_name": "tabular", "outputs": outputs}).encode()
        length = [(b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers + length})
        await send({"type": "http.response.body", "body": payload})

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


def _app(kind: str, model: Path, name: str, batching: str, home: str | None) -> Any:
    if kind == "couturier":
        return _couturier_app(model, name, json.loads(batching), home)
    if kind == "fastapi_plain":
        return _fastapi_plain_app(model)
    if kind == "model_only_asgi":
        return _model_only_app(model)
    return _noop_app


def granian_app() -> Any:
    """Granian's factory (``--factory``): it imports its target in its worker, so the app's
    arguments travel in the environment."""
    options = json.loads(os.environ["COUTURIER_BENCH_APP"])
    return _app(**{**options, "model": Path(options["model"])})


def _serve(args: argparse.Namespace) -> None:
    options = {"kind": args.serve, "model": str(args.model), "name": args.name}
    options |= {"batching": args.batching, "home": args.home}
    if args.server == "granian":
        from granian.constants import Interfaces, Loops
        from granian.server import Server

        os.environ["COUTURIER_BENCH_APP"] = json.dumps(options)
        sys.path.insert(0, str(Path(__file__).parent))
        Server(
            "serving:granian_app",
            address="127.0.0.1",
            port=args.port,
            interface=Interfaces.ASGI,
            workers=1,
            loop=Loops.uvloop,
            factory=True,
            log_access=False,
            working_dir=Path(__file__).parent,
        ).serve()
        return
    import uvicorn

    app = _app(**{**options, "model": args.model})
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
    server: str = "granian",  # what ``couturier serve`` runs (decision 0017)
) -> Any:
    command = [sys.executable, __file__, "--serve", "couturier", "--port", str(port)]
    command += ["--model", str(model), "--name", name, "--batching", json.dumps(batching or {})]
    command += ["--server", server]
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
def _loaded(port: int, script: Path, path: str, seconds: int) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}{path}"
    _wrk(url, script, 2)  # warm-up
    return _wrk(url, script, seconds)


def _servers(model: Path, script: Path, path: str, seconds: int) -> dict[str, Any]:
    """The HTTP servers compared (decision 0017): the model-only ceiling and couturier under
    each, ``ROUNDS`` rounds, the order reversed every other round (this machine is noisy);
    each cell is its median round by req/s, and ``rounds`` keeps every round."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {s: {} for s in SERVERS}
    cells = [(server, kind) for server in SERVERS for kind in ("model_only_asgi", "couturier")]
    for i in range(ROUNDS):
        for server, kind in cells if i % 2 == 0 else cells[::-1]:
            port = _free_port()
            command = [sys.executable, __file__, "--serve", kind, "--port", str(port)]
            command += ["--model", str(model), "--server", server]
            with _process(command, port):
                runs[server].setdefault(kind, []).append(_loaded(port, script, path, seconds))
            print(server, kind, runs[server][kind][-1], flush=True)
    medians = {
        server: {kind: sorted(r, key=lambda m: m["rps"])[len(r) // 2] for kind, r in by.items()}
        for server, by in runs.items()
    }
    return {**medians, "rounds": runs}


def _peer(peer: Any, work: Path, model: Path, script: Path, path: str, seconds: int) -> Any:
    """A peer server on the same model, or the reason it could not be measured."""
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
            return {**_loaded(port, script, path, seconds), "versions": versions}
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            peer.cleanup()
    except Exception as exc:  # recorded, never silently dropped
        log = work / peer.name / "server.log"
        tail = log.read_text(errors="replace")[-600:] if log.exists() else ""
        print(peer.name, "failed:", exc, flush=True)
        return {"error": f"{type(exc).__name__}: {exc}", "log_tail": tail}


def tabular(work: Path, model: Path, x: np.ndarray, seconds: int, peers: bool) -> dict[str, Any]:
    body = {"inputs": [{"name": "X", "shape": [1, FEATURES], "datatype": "FP32", "data": []}]}
    body["inputs"][0]["data"] = x[0].tolist()
    script = _script(work, "tabular", json.dumps(body).encode())
    path = "/v2/models/tabular/infer"
    result: dict[str, Any] = {}
    for kind in ("noop_asgi", "fastapi_plain"):  # uvicorn's ceiling; what a team writes
        port = _free_port()
        command = [sys.executable, __file__, "--serve", kind, "--port", str(port)]
        with _process([*command, "--model", str(model)], port):
            result[kind] = _loaded(port, script, path, seconds)
        print(kind, result[kind], flush=True)
    servers = result["servers"] = _servers(model, script, path, seconds)
    ceiling = max(SERVERS, key=lambda s: servers[s]["model_only_asgi"]["rps"])
    result["model_only_asgi"] = {**servers[ceiling]["model_only_asgi"], "server": ceiling}
    result["couturier"] = {**servers["granian"]["couturier"], "server": "granian"}
    for peer in PEERS:
        if peers:
            result[peer.name] = _peer(peer, work, model, script, path, seconds)
            print(peer.name, result[peer.name], flush=True)
        else:
            result[peer.name] = {"error": "not run (--only without peers)"}
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
    granian, uvicorn = servers["granian"], servers["uvicorn"]  # medians by cell
    result["ratios"] = {
        "couturier_over_model_only": round(c["rps"] / result["model_only_asgi"]["rps"], 3),
        "granian_over_uvicorn_rps": {
            k: round(granian[k]["rps"] / uvicorn[k]["rps"], 3) for k in granian
        },
        "granian_over_uvicorn_p99": {
            k: round(granian[k]["p99_ms"] / uvicorn[k]["p99_ms"], 3) for k in granian
        },
        "couturier_uvicorn_over_model_only": round(
            uvicorn["couturier"]["rps"] / result["model_only_asgi"]["rps"], 3
        ),
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


class _Connection:
    """One kept-alive HTTP/1.1 connection of the open-loop client: one request at a time,
    answers read by Content-Length (what couturier always sends). asyncio's protocol API, no
    client library: at thousands of requests a second on 2 cores, aiohttp's own cost made the
    client, not the server, set the pace (its send lag reached seconds)."""

    def __init__(self, reader: Any, writer: Any) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, request: bytes) -> tuple[int, bool]:
        """The answer's status, and whether the connection can take another request."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length: *(\d+)", head)
        await self.reader.readexactly(int(length.group(1)) if length else 0)
        return int(head[9:12]), re.search(rb"(?im)^connection: *close", head) is None


async def _open_loop(
    port: int, request: bytes, phases: list[tuple[float, float]]
) -> list[tuple[float, float, int, float]]:
    """Requests at a fixed arrival rate, whatever the server does (an open loop): ``phases``
    are (requests per second, seconds). Each request starts at its scheduled time on a free
    kept-alive connection or a new one, never waiting for an earlier answer. Returns
    (scheduled s, sent s, status, seconds from sent to answered) per request; status 0 is a
    transport failure or no answer within 10 s. The collector is off while it runs: a client
    pause would show as the server's latency. Times are perf_counter's (uvloop's clock counts
    whole milliseconds)."""
    import asyncio
    import gc

    clock = time.perf_counter
    out: list[tuple[float, float, int, float]] = []
    idle: list[_Connection] = []

    async def one(at: float) -> None:
        sent = clock()
        connection = None

        async def answer() -> tuple[int, bool]:
            nonlocal connection
            if idle:
                connection = idle.pop()
            else:
                connection = _Connection(*await asyncio.open_connection("127.0.0.1", port))
            return await connection.send(request)

        try:
            status, reusable = await asyncio.wait_for(answer(), 10)
            if reusable:
                idle.append(connection)  # type: ignore[arg-type]
            else:
                connection.writer.close()  # type: ignore[union-attr]
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            status = 0
            if connection is not None:
                connection.writer.close()
        out.append((at - t0, sent - t0, status, clock() - sent))

    tasks = []
    gc.disable()
    t0 = at = clock()
    for rate, seconds in phases:
        end = at + seconds
        while at < end:
            if at > clock():
                await asyncio.sleep(at - clock())
            tasks.append(asyncio.create_task(one(at)))
            at += 1 / rate
    await asyncio.gather(*tasks)
    gc.enable()
    for connection in idle:
        connection.writer.close()
    return sorted(out)


def surge(work: Path, model: Path, seconds: int, saturation_rps: float | None) -> dict[str, Any]:
    """The CNN server offered 3x its saturation rate by an open-loop client: the share shed
    (503), the p99 of the admitted requests, and how soon after the surge it is normal again.

    Phases: half the saturation rate for 3 s (normal latency), 3x for ``seconds``, half again
    for 5 s (recovery: the first 100 ms window after the surge that starts a second of windows
    with no request shed or failed and a p99 under 3x normal's)."""
    import uvloop

    body, head = _cnn_request()
    batching = {"max_batch": 64, "max_wait_ms": 5.0, "max_queue_ms": 150.0}
    path = "/v2/models/cnn/infer"
    port = _free_port()
    with _couturier(port, model, "cnn", batching):
        url = f"http://127.0.0.1:{port}{path}"
        if saturation_rps is None:
            script = _script(work, "surge-saturate", body, head)
            _wrk(url, script, 2, 64)
            saturation_rps = _wrk(url, script, seconds, 64)["rps"]
        calm, peak = saturation_rps / 2, saturation_rps * 3
        phases = [(calm, 3.0), (peak, float(seconds)), (calm, 5.0)]
        request = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
            f"Inference-Header-Content-Length: {head}\r\n\r\n"
        ).encode() + body
        uvloop.run(_open_loop(port, request, [(calm, 2.0)]))  # warm-up
        answers = uvloop.run(_open_loop(port, request, phases))
    rows = np.asarray(answers)  # scheduled, sent, status, seconds
    surge_from, surge_to = 3.0, 3.0 + seconds
    before = rows[rows[:, 0] < surge_from]
    during = rows[(rows[:, 0] >= surge_from) & (rows[:, 0] < surge_to)]
    after = rows[rows[:, 0] >= surge_to]
    normal_p99 = float(np.percentile(before[before[:, 2] == 200, 3], 99))
    admitted = during[during[:, 2] == 200]
    windows = []  # (start, healthy) of each 100 ms window after the surge
    for w in np.arange(surge_to, surge_to + 5.0, 0.1):
        inside = after[(after[:, 0] >= w) & (after[:, 0] < w + 0.1)]
        ok = inside[inside[:, 2] == 200]
        healthy = len(inside) > 0 and len(ok) == len(inside)
        windows.append((w, healthy and float(np.percentile(ok[:, 3], 99)) < 3 * normal_p99))
    recovered = next(
        (w for i, (w, _) in enumerate(windows) if all(h for _, h in windows[i : i + 10])), None
    )
    lag = during[:, 1] - during[:, 0]
    return {
        "saturation_rps": saturation_rps,
        "offered_rps": round(len(during) / seconds, 1),
        "offered_over_saturation": round(len(during) / seconds / saturation_rps, 2),
        "requests": len(during),
        "shed_fraction": round(float(np.mean(during[:, 2] == 503)), 3),
        "failed": int(np.sum((during[:, 2] != 200) & (during[:, 2] != 503))),
        "admitted_rps": round(len(admitted) / seconds, 1),
        "admitted_p99_ms": round(float(np.percentile(admitted[:, 3], 99)) * 1000, 1),
        "shed_p99_ms": round(float(np.percentile(during[during[:, 2] == 503, 3], 99)) * 1000, 1)
        if np.any(during[:, 2] == 503)
        else None,
        "normal_p99_ms": round(normal_p99 * 1000, 1),
        "recovery_s": None if recovered is None else round(float(recovered - surge_to), 2),
        "after_failed": int(np.sum(after[:, 2] == 0)),
        "client_lag_p99_ms": round(float(np.percentile(lag, 99)) * 1000, 1),
        "max_queue_ms": batching["max_queue_ms"],
        "load": "open loop (asyncio streams on uvloop, evenly spaced arrivals): 0.5x "
        "saturation 3 s, 3x for the surge, 0.5x 5 s; latency from sent to answered",
    }


def _authenticate_inprocess(home: Path, body: bytes, rate: float, seconds: int) -> dict[str, Any]:
    """The same graph on the same request, called in this process at the same even rate: the
    service ``/v1/authenticate`` mounts (features, image model, reference search, fusion, the
    prediction log), built by ``build_service`` as ``mount`` builds it, the body parsed as the
    route parses it.
    What HTTP, the server and the framework add is the rest of the served p99 (and wrk's share
    of the cores: this runs alone)."""
    import asyncio
    import gc

    import uvloop

    from couturier.domains.authentication.service import AuthenticateRequest, build_service
    from couturier.registry import ModelRegistry
    from couturier.serving import Metrics, ServiceContext
    from couturier.settings import Settings

    settings = Settings(home=home)
    registry = ModelRegistry(settings)
    try:
        context = ServiceContext(settings=settings, registry=registry, metrics=Metrics())
        service = build_service(context)
    finally:
        registry.close()

    async def run() -> list[float]:
        async def once() -> float:
            t = time.perf_counter()
            request = AuthenticateRequest.model_validate_json(body)
            await service.authenticate(request, service.from_base64(request))
            return time.perf_counter() - t

        for _ in range(50):  # warm-up, as wrk's two seconds warm the server
            await once()
        took, interval = [], 1 / rate
        start = next_at = time.perf_counter()
        while next_at - start < seconds:
            took.append(await once())
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        return took

    gc.collect()  # as the server's lifespan does before its first request (docs/serving.md)
    gc.freeze()
    took = np.asarray(uvloop.run(run())) * 1000  # the servers' loop
    return {
        "requests": len(took),
        "rps": round(len(took) / seconds, 1),
        "p50_ms": round(float(np.percentile(took, 50)), 3),
        "p99_ms": round(float(np.percentile(took, 99)), 3),
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
    serve = [str(bin_dir / "couturier"), "serve", "--no-follow", "--port"]
    with _process([*serve, str(port)], port, 120, env=env, stdout=subprocess.DEVNULL):
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
    # the same server under uvicorn (decision 0017): saturation, and the p99 at the same rate
    port = _free_port()
    uvicorn_serve = [*serve, str(port), "--server", "uvicorn"]
    with _process(uvicorn_serve, port, 120, env=env, stdout=subprocess.DEVNULL):
        url = f"http://127.0.0.1:{port}/v1/authenticate"
        _wrk(url, script, 2, 8)
        uvicorn = {"saturation_rps": _wrk(url, script, seconds, 8)["rps"]}
        uvicorn["half_load"] = _wrk(
            url, _script(work, "auth-even", body, delay_ms=delay), seconds, 1
        )
    inprocess = _authenticate_inprocess(home, body, rate, seconds)
    result["uvicorn"] = uvicorn
    result |= {
        "photos": len(request["photos"]),
        "inprocess": inprocess,
        "inprocess_p99_ms": inprocess["p99_ms"],
        "p99_over_inprocess_p99": round(even["p99_ms"] / inprocess["p99_ms"], 2),
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
    parser.add_argument("--server", default="uvicorn", help=argparse.SUPPRESS)
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
        "load": "wrk (Debian), 1 thread; one worker per server",
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

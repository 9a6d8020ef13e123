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

Both servers share this machine's cores, so the remote p99 pays for the tier competing with the
front for them, besides the network hop: an upper bound of a separate tier's cost, not a
cluster's measurement. Without ``--home`` a fresh demo home is made first (minutes).

Not measured here yet (issue 17): ``rolling_restart`` (3 replicas behind HAProxy) and
``ray_tier`` (the Ray Serve deployment).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _results import write_result  # beside this script, on sys.path when it runs
from online_store_outage import IN_A_ROW, Load, _demo_home, _phase, _recovery, _request_body
from serving import _free_port, _process, _timed, _wait

PATH = "/v1/authenticate"
HEADERS = {"Content-Type": "application/json"}
IMAGE_MODEL = "authentication-image"
TARGETS = {"remote_p99_over_in_process": 2.0, "tier_down_non_2xx": 0}


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


def run(home: Path, seconds: float, clients: int) -> dict[str, Any]:
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
    remote = _phase(answers, up, killed)
    down = _phase(answers, killed, restarting)
    degraded = sum(1 for a in answers if killed <= a.done < restarting and a.degraded)
    ratio = round(remote["p99_ms"] / in_process["p99_ms"], 2)
    return {
        "clients": clients,
        "phase_seconds": seconds,
        "listing_id": listing_id,
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
        "targets": {
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
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--home", type=Path, help="a demo home (default: make one)")
    args = parser.parse_args()
    result: dict[str, Any] = {"cpus": os.cpu_count()}
    home = args.home
    if home is None:
        t = time.perf_counter()
        home = _demo_home(Path(tempfile.mkdtemp(prefix="couturier-production-bench-")))
        result["demo_seconds"] = round(time.perf_counter() - t, 1)
    result["home"] = str(home.absolute())  # --home this to skip the demo next time
    result |= run(home.absolute(), args.seconds, args.clients)
    print(json.dumps(result, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_result(args.out, result)


if __name__ == "__main__":
    main()

"""``couturier serve`` as a process: Granian's main process in place of the command (decision
0017), and SIGTERM answering the request in flight before the process exits, which is what a
rolling update relies on (the manifests' pre-stop drain, then SIGTERM)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support.servers import free_port


def _ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            if requests.get(f"{url}/v2/health/live", timeout=2).status_code == 200:
                return
        except requests.RequestException:  # not listening yet
            pass
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)


def _head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_sigterm_answers_the_request_in_flight_then_exits(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    couturier = str(Path(sys.executable).parent / "couturier")
    with log.open("w") as out:
        proc = subprocess.Popen(
            [couturier, "serve", "--port", str(port), "--no-follow"],
            env={**os.environ, "COUTURIER_HOME": str(tmp_path / "home")},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _ready(f"http://127.0.0.1:{port}", proc, log)
        # the command became Granian's main process: same pid, so the signal reaches it
        assert "granian" in Path(f"/proc/{proc.pid}/cmdline").read_text(errors="replace")
        body = b'{"inputs": [{"name": "X", "shape": [1], "datatype": "FP32", "data": [0]}]}'
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(
                b"POST /v2/models/absent/infer HTTP/1.1\r\nHost: test\r\n"
                b"Content-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body[:10]
            )
            time.sleep(0.5)  # the request has begun: the server is reading its body
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            sock.sendall(body[10:])
            head = _head(sock)
        # answered in full (the model is absent: a 404 problem), not reset
        assert head.startswith(b"HTTP/1.1 404"), (head, log.read_text()[-2000:])
        assert proc.wait(30) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

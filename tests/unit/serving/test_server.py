"""``couturier serve`` as a process: Granian's main process in place of the command (decision
0017), and SIGTERM answering the request in flight before the process exits, which is what a
rolling update relies on (the manifests' pre-stop drain, then SIGTERM)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from couturier.errors import InvalidParameterError
from couturier.serving.server import listen_address
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


def _answer(sock: socket.socket) -> tuple[bytes, bytes]:
    """One whole HTTP answer from ``sock``: its head and its body (by Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed before an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?im)^content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed {length - len(body)} bytes short: {head!r}"
        body += chunk
    return head, body


def _refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


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
            start_new_session=True,  # the worker too is stopped at the end, whatever happens
        )
    try:
        _ready(f"http://127.0.0.1:{port}", proc, log)
        # the command became Granian's main process: same pid, so the signal reaches it
        assert "granian" in Path(f"/proc/{proc.pid}/cmdline").read_text(errors="replace")
        body = b'{"inputs": [{"name": "X", "shape": [1], "datatype": "FP32", "data": [0]}]}'
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: test\r\n\r\n")
            assert _answer(sock)[0].startswith(b"HTTP/1.1 200")  # a connection in use
            sock.sendall(
                b"POST /v2/models/absent/infer HTTP/1.1\r\nHost: test\r\n"
                b"Content-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body[:10]
            )
            time.sleep(0.3)  # the request has begun: the server is reading its body
            os.kill(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while not _refused(port):  # shutting down: no new connection is taken
                assert time.monotonic() < deadline, log.read_text()[-2000:]
                time.sleep(0.05)
            sock.sendall(body[10:])
            head, answer = _answer(sock)
        # answered in full (the model is absent: a 404 problem naming it), not reset
        assert head.startswith(b"HTTP/1.1 404"), (head, log.read_text()[-2000:])
        assert b"absent" in answer
        assert proc.wait(30) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_the_listen_address_is_an_ip_address() -> None:
    assert listen_address("0.0.0.0") == "0.0.0.0"
    assert listen_address("localhost") in ("127.0.0.1", "::1")  # a name is resolved
    with pytest.raises(InvalidParameterError, match="--host 'no such host!'"):
        listen_address("no such host!")


def test_the_infer_path_alone_leaves_the_service_unimported() -> None:
    """A Ray tier replica imports ``couturier.serving._infer``: the package's names are loaded
    on first use, so neither the service nor Feast comes with it (seconds per replica)."""
    probe = (
        "import sys, couturier.serving._infer, couturier.serving as s; "
        "assert 'couturier.serving._app' not in sys.modules and 'feast' not in sys.modules; "
        "s.create_app; assert 'couturier.serving._app' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=120)

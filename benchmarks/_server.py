"""`couturier serve` on a home, for a benchmark: started, waited for, stopped.

with couturier_server(home) as url:
    ...  # load it with wrk
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["couturier_server", "free_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def couturier_server(
    home: Path,
    ready_s: float = 300.0,
    *,
    ready_path: str = "/v2/health/ready",
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """The server's URL once ``ready_path`` answers 200; its log is ``home/serve.log``.
    ``env``: more environment variables for the server."""
    import requests

    port = free_port()
    env = {**os.environ, "COUTURIER_HOME": str(home), **(env or {})}
    log = (home / "serve.log").open("w")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "couturier"), "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_s
        while True:
            try:
                if requests.get(f"{url}{ready_path}", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"the server did not become ready; see {home / 'serve.log'}")
            time.sleep(1)
        yield url
    finally:
        server.terminate()
        server.wait(30)
        log.close()

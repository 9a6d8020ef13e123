"""A model served by another server, called over the Open Inference Protocol: a tier of its own.

::

    RemoteModel.infer ──(breaker open: refused at once)──> RemoteModelError
          │
          └─> POST {url}/v2/models/{name}[/versions/{v}]/infer   (binary tensor extension)
                 one attempt: at most ``timeout_s``; a connection refused or reset, or a
                 502/503/504, is retried once while the retry budget allows
                 ──> outputs as numpy arrays, or RemoteModelError (the caller degrades)

The server at ``url`` may be another couturier, Triton, KServe or the Ray Serve tier: all speak
the protocol's REST form and its binary tensor extension. Asking for the version the caller was
built with (``version=``) keeps a graph's components consistent: a tier that does not serve it
answers 404, which is a failure like any other.

Why a timed-out attempt is not retried: a slow tier is an overloaded one, and a retry doubles
the load it is drowning in; the breaker, not a retry, is the answer to a tier that is down.
Retries are few by construction: :class:`RetryBudget` is gRPC's retry throttling (gRFC A6),
so when most calls fail, retries stop and the breaker takes over.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import urllib3

from couturier.breaker import Breaker, BreakerOpenError, describe
from couturier.errors import DependencyUnavailableError
from couturier.serving._tensors import DATATYPES

__all__ = ["RemoteAnswer", "RemoteModel", "RemoteModelError", "RetryBudget"]

_NAMES = {dtype: name for name, dtype in DATATYPES.items()}
_RETRIED_STATUS = frozenset({502, 503, 504})
#: The protocol's binary tensor extension: the JSON part's length in bytes.
HEADER_LENGTH = "Inference-Header-Content-Length"


class RemoteModelError(DependencyUnavailableError):
    """The remote model did not answer usable outputs; ``model`` and ``url`` name it, and
    ``reason`` says why without the URL (for answers that leave the cluster)."""


class _AttemptError(Exception):
    def __init__(self, reason: str, *, retry: bool) -> None:
        super().__init__(reason)
        self.retry = retry


class RetryBudget:
    """gRPC's retry throttling (gRFC A6): a failed call costs a token, a successful one earns
    ``token_ratio``; a retry is allowed only while more than half the ``max_tokens`` are left.
    With the defaults, retries stay under about one in ten calls and stop after a handful of
    failures in a row.

    >>> budget = RetryBudget(max_tokens=2, token_ratio=0.5)
    >>> budget.allows()
    True
    >>> budget.failed(); budget.allows()
    False
    >>> budget.succeeded(); budget.succeeded(); budget.allows()
    True
    """

    def __init__(self, max_tokens: float = 10.0, token_ratio: float = 0.1) -> None:
        self.max_tokens = max_tokens
        self.token_ratio = token_ratio
        self._tokens = max_tokens
        self._lock = threading.Lock()

    def succeeded(self) -> None:
        with self._lock:
            self._tokens = min(self.max_tokens, self._tokens + self.token_ratio)

    def failed(self) -> None:
        with self._lock:
            self._tokens = max(0.0, self._tokens - 1.0)

    def allows(self) -> bool:
        with self._lock:
            return self._tokens > self.max_tokens / 2


@dataclass(frozen=True)
class RemoteAnswer:
    outputs: dict[str, np.ndarray]
    #: the version the server says answered (``model_version`` of the response), if it says
    model_version: str | None
    attempts: int


class RemoteModel:
    """One model on a remote OIP server; thread-safe (one connection pool, one breaker).

    >>> remote = RemoteModel("authentication-image", "http://image-tier:8080")  # doctest: +SKIP
    >>> remote.infer({"image": images, "context": contexts}, ["logit"], version=3)  # doctest: +SKIP
    """

    def __init__(
        self,
        name: str,
        url: str,
        *,
        timeout_s: float = 0.25,
        breaker_failures: int = 5,
        breaker_reset_s: float = 1.0,
        connections: int = 16,
        budget: RetryBudget | None = None,
    ) -> None:
        self.name = name
        self.url = url.rstrip("/")
        #: connections kept open to the server: the calls that can be in flight at once
        self.connections = connections
        self.timeout_s = timeout_s
        self.budget = budget or RetryBudget()
        self.breaker = Breaker(
            f"remote model {name} ({self.url})", failures=breaker_failures, reset_s=breaker_reset_s
        )
        self._http = urllib3.PoolManager(
            maxsize=connections, block=False, retries=False, timeout=urllib3.Timeout(timeout_s)
        )

    def path(self, version: int | str | None = None) -> str:
        where = f"/v2/models/{self.name}"
        return f"{where}/versions/{version}/infer" if version is not None else f"{where}/infer"

    def infer(
        self,
        inputs: dict[str, np.ndarray],
        outputs: list[str],
        *,
        version: int | str | None = None,
    ) -> RemoteAnswer:
        """``outputs`` of the model on ``inputs``; :class:`RemoteModelError` when the tier is
        down, slow, refuses, or its breaker is open (then without calling it)."""
        body, headers = encode(inputs, outputs)
        url = self.url + self.path(version)
        try:
            return self.breaker.call(lambda: self._attempts(url, body, headers, outputs))
        except BreakerOpenError as exc:
            last = self.breaker.last_failure
            why = last.context["reason"] if isinstance(last, RemoteModelError) else describe(last)
            reason = f"not called: its circuit breaker is open (last failure: {why})"
            raise self._failure(reason, detail=str(exc)) from None

    def _failure(self, reason: str, detail: str = "") -> RemoteModelError:
        """The error a caller gets: the message names the server, ``reason`` does not."""
        where = f"remote model {self.name} at {self.url}: {reason}"
        return RemoteModelError(
            f"{where}; {detail}" if detail else where, model=self.name, url=self.url, reason=reason
        )

    def _attempts(
        self, url: str, body: bytes, headers: dict[str, str], outputs: list[str]
    ) -> RemoteAnswer:
        attempt = 1
        while True:
            try:
                answer = self._attempt(url, body, headers, outputs)
            except _AttemptError as exc:
                self.budget.failed()
                if exc.retry and attempt == 1 and self.budget.allows():
                    attempt += 1
                    continue
                reason = f"{exc} ({attempt} attempt{'s' if attempt > 1 else ''})"
                raise self._failure(reason) from None
            self.budget.succeeded()
            return RemoteAnswer(answer[0], answer[1], attempt)

    def _attempt(
        self, url: str, body: bytes, headers: dict[str, str], outputs: list[str]
    ) -> tuple[dict[str, np.ndarray], str | None]:
        try:
            response = self._http.request("POST", url, body=body, headers=headers)
        except urllib3.exceptions.NewConnectionError as exc:  # refused, or no such name: a
            # ConnectTimeoutError subclass, caught first; nothing was sent
            raise _AttemptError(f"not reachable ({type(exc).__name__})", retry=True) from None
        except (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ConnectTimeoutError):
            raise _AttemptError(
                f"no answer within {self.timeout_s * 1000:.0f} ms", retry=False
            ) from None
        except urllib3.exceptions.HTTPError as exc:  # reset, closed: nothing was answered
            raise _AttemptError(f"not reachable ({type(exc).__name__})", retry=True) from None
        if response.status != 200:
            text = response.data[:200].decode("utf-8", "replace")
            raise _AttemptError(
                f"answered HTTP {response.status}: {text}",
                retry=response.status in _RETRIED_STATUS,
            )
        try:
            return decode(response.data, response.headers.get(HEADER_LENGTH), outputs)
        except Exception as exc:  # any body a server can send is a failed call, never a crash
            raise _AttemptError(f"answered an unreadable body: {exc}", retry=False) from None


def encode(inputs: dict[str, np.ndarray], outputs: list[str]) -> tuple[bytes, dict[str, str]]:
    """An OIP request with every input and output in the binary tensor extension."""
    described: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, value in inputs.items():
        array = np.ascontiguousarray(value)
        datatype = _NAMES.get(array.dtype)
        if datatype is None:
            raise TypeError(f"input {name!r}: dtype {array.dtype} has no OIP datatype")
        blob = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        described.append(
            {
                "name": name,
                "shape": list(array.shape),
                "datatype": datatype,
                "parameters": {"binary_data_size": len(blob)},
            }
        )
        blobs.append(blob)
    wanted = [{"name": o, "parameters": {"binary_data": True}} for o in outputs]
    head = json.dumps({"inputs": described, "outputs": wanted}).encode()
    headers = {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(len(head))}
    return b"".join([head, *blobs]), headers


def decode(
    body: bytes, header_length: str | None, outputs: list[str]
) -> tuple[dict[str, np.ndarray], str | None]:
    """The wanted outputs of an OIP response (JSON tensors or binary ones) and its version."""
    split = int(header_length) if header_length is not None else len(body)
    head = json.loads(body[:split])
    offset = split
    got: dict[str, np.ndarray] = {}
    for item in head["outputs"]:
        dtype = DATATYPES[item["datatype"]]
        size = (item.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            flat = np.frombuffer(body[offset : offset + int(size)], dtype=dtype.newbyteorder("<"))
            offset += int(size)
        else:
            data = [np.nan if v is None else v for v in item["data"]]
            flat = np.asarray(data, dtype=dtype)
        got[item["name"]] = flat.astype(dtype, copy=False).reshape(item["shape"])
    missing = [o for o in outputs if o not in got]
    if missing:
        raise KeyError(f"output {missing[0]!r} missing (answered: {', '.join(got) or 'none'})")
    version = head.get("model_version")
    return {o: got[o] for o in outputs}, None if version is None else str(version)

"""The online reader's circuit breaker, without a server: a store object that fails or blocks.

The reader reads through the Feast online store object it holds; here that object is a stand-in
whose ``online_read`` answers, raises or blocks on command, so every test counts exactly which
reads reached the store. Waits are on events and conditions with deadlines, never fixed sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from couturier.breaker import Breaker, BreakerOpenError, BreakerState
from couturier.domains.authentication import FEATURES
from couturier.errors import DependencyUnavailableError, InvalidParameterError, SettingsError
from couturier.features import FeatureRepo, OnlineReader
from couturier.settings import Settings
from tests.support.wait import wait_for

ROW = {"listing_id": 1, "seller_id": 2, "product_id": 3}
VIEWS = len(FEATURES.views)  # one online_read per view and get()
DEADLINE_S = 10.0


class FakeStore:
    """An online store whose reads answer (nothing known), raise, or block until released."""

    def __init__(self) -> None:
        self.calls = 0
        self.error: Exception | None = None
        self.block_thread: str | None = None  # reads from this thread wait for `release`
        self.entered = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()

    def online_read(
        self, config: Any, table: Any, entity_keys: list[Any], requested: Any = None
    ) -> list[tuple[None, None]]:
        with self._lock:
            self.calls += 1
        if threading.current_thread().name == self.block_thread:
            self.entered.set()
            if not self.release.wait(DEADLINE_S):
                raise TimeoutError("the test never released this read")
        if self.error is not None:
            raise self.error
        return [(None, None)] * len(entity_keys)


def state_of(reader: OnlineReader) -> BreakerState:
    """The breaker's state, read afresh: mypy keeps a property narrowed by an earlier
    ``assert reader.store_state == ...`` across the reads that change it; a call it does not."""
    return reader.store_state


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home where the authentication feature service is registered (no sources needed)."""
    path = tmp_path_factory.mktemp("breaker-home")
    FeatureRepo(FEATURES, Settings(home=path)).apply()
    return path


def reader_on(
    home: Path, store: FakeStore, monkeypatch: pytest.MonkeyPatch, **settings: Any
) -> OnlineReader:
    reader = OnlineReader(FeatureRepo(FEATURES, Settings(home=home, **settings)))
    monkeypatch.setattr(reader, "_store", store)
    return reader


@pytest.fixture
def store() -> Iterator[FakeStore]:
    fake = FakeStore()
    yield fake
    fake.release.set()  # never leave a reader thread blocked


def test_consecutive_failures_open_the_breaker_and_then_the_store_is_not_called(
    home: Path, store: FakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = reader_on(home, store, monkeypatch, online_breaker_failures=3)
    store.error = ConnectionError("connection refused")
    for n in range(1, 4):
        with pytest.raises(DependencyUnavailableError) as info:
            reader.get([ROW])
        assert isinstance(info.value.__cause__, ConnectionError)  # the store's own error
        assert store.calls == n  # the first view's read failed: one call per get()
    assert state_of(reader) == "open"
    for _ in range(5):
        with pytest.raises(DependencyUnavailableError) as info:
            reader.get([ROW])
        assert store.calls == 3  # refused without touching the store
    refused = info.value
    assert refused.http_status == 503
    assert refused.context == {"store": "sqlite", "breaker": "open"}
    assert "circuit breaker is open after 3 consecutive failed reads" in refused.message
    assert "ConnectionError: connection refused" in refused.message  # the last cause
    assert "COUTURIER_ONLINE_BREAKER_RESET_S" in refused.message  # what decides the next try
    # the caller's fallback still works while the breaker is open
    assert all(flags == [True] for flags in reader.defaults([ROW]).defaulted.values())


def test_a_success_resets_the_count_of_consecutive_failures(
    home: Path, store: FakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = reader_on(home, store, monkeypatch, online_breaker_failures=3)
    for outcome in ("fail", "fail", "ok", "fail", "fail"):
        store.error = ConnectionError("flaky") if outcome == "fail" else None
        if outcome == "fail":
            with pytest.raises(DependencyUnavailableError):
                reader.get([ROW])
        else:
            reader.get([ROW])
    assert state_of(reader) == "closed"


def test_after_the_reset_interval_one_probe_closes_the_breaker_when_the_store_answers(
    home: Path, store: FakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = reader_on(
        home, store, monkeypatch, online_breaker_failures=1, online_breaker_reset_s=0.2
    )
    store.error = ConnectionError("down")
    with pytest.raises(DependencyUnavailableError):
        reader.get([ROW])
    assert state_of(reader) == "open"
    store.error = None  # the store is back; the breaker does not know yet
    results: list[Any] = []

    def answered() -> bool:
        try:
            results.append(reader.get([ROW]))
        except DependencyUnavailableError:
            return False
        return True

    wait_for(answered, "the breaker lets a probe through and closes", DEADLINE_S, every_s=0.005)
    assert state_of(reader) == "closed"
    assert store.calls == 1 + VIEWS  # the failed read, then the probe: nothing in between
    assert results[0].feature_service == FEATURES.service_name
    reader.get([ROW])
    assert store.calls == 1 + 2 * VIEWS  # closed: reads go to the store again


def test_a_failed_probe_opens_the_breaker_again(
    home: Path, store: FakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = reader_on(
        home, store, monkeypatch, online_breaker_failures=2, online_breaker_reset_s=1.0
    )  # 1 s: the last check below must run well within one reset interval of the probe
    store.error = ConnectionError("down")
    for _ in range(2):
        with pytest.raises(DependencyUnavailableError):
            reader.get([ROW])

    def probed() -> bool:
        with pytest.raises(DependencyUnavailableError):
            reader.get([ROW])
        return store.calls == 3

    wait_for(
        probed, "a probe read reaches the store after the reset interval", DEADLINE_S, every_s=0.005
    )
    assert state_of(reader) == "open"  # one failed probe is enough to open it again
    with pytest.raises(DependencyUnavailableError, match="circuit breaker is open"):
        reader.get([ROW])
    assert store.calls == 3


def test_reads_run_concurrently_the_breaker_does_not_serialize_them(
    home: Path, store: FakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pybreaker's ``call`` would hold its lock through a read: a hung read would then hold
    every other thread's read. A read blocked in the store must not delay another one."""
    reader = reader_on(home, store, monkeypatch)
    store.block_thread = "slow"
    slow = threading.Thread(target=reader.get, args=([ROW],), name="slow", daemon=True)
    slow.start()
    assert store.entered.wait(DEADLINE_S)  # the slow read is inside the store now
    fast_done = threading.Event()

    def fast_read() -> None:
        reader.get([ROW])
        fast_done.set()

    fast = threading.Thread(target=fast_read, daemon=True)
    fast.start()
    assert fast_done.wait(DEADLINE_S), "a read waited for another thread's read"
    assert not store.release.is_set()  # ...while the slow one was still blocked
    store.release.set()
    slow.join(DEADLINE_S)
    assert state_of(reader) == "closed"


def test_while_a_probe_is_in_flight_other_reads_are_refused_without_calling_the_store(
    home: Path, store: FakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = reader_on(
        home, store, monkeypatch, online_breaker_failures=1, online_breaker_reset_s=0.1
    )
    store.error = ConnectionError("down")
    with pytest.raises(DependencyUnavailableError):
        reader.get([ROW])
    store.error = None
    store.block_thread = "probe"
    probe_errors: list[Exception] = []

    def probe() -> None:
        def attempt() -> bool:
            try:
                reader.get([ROW])
            except DependencyUnavailableError as exc:
                if store.calls > 1:  # it reached the store and still failed
                    probe_errors.append(exc)
                    return True
                return False
            return True

        wait_for(attempt, "the probe read gets through", DEADLINE_S, every_s=0.005)

    prober = threading.Thread(target=probe, name="probe", daemon=True)
    prober.start()
    assert store.entered.wait(DEADLINE_S)  # the probe is inside the store
    assert state_of(reader) == "half-open"
    calls = store.calls
    with pytest.raises(DependencyUnavailableError, match="half-open"):
        reader.get([ROW])
    assert store.calls == calls  # refused at once: only one probe at a time
    store.release.set()
    prober.join(DEADLINE_S)
    assert not probe_errors
    assert state_of(reader) == "closed"


def test_a_redis_store_on_a_closed_port_opens_the_breaker(tmp_path: Path) -> None:
    """A real Feast Redis store whose server is not there: refused connections count."""
    import socket

    with socket.socket() as s:  # a port nothing listens on once this closes
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(home=tmp_path, online_breaker_failures=2)
    repo = FeatureRepo(FEATURES, settings, online="redis", redis_url=f"redis://127.0.0.1:{port}/0")
    repo.apply()
    reader = OnlineReader(repo)
    for _ in range(2):
        with pytest.raises(DependencyUnavailableError) as info:
            reader.get([ROW])
        assert type(info.value.__cause__).__module__.startswith("redis")
    assert state_of(reader) == "open"
    with pytest.raises(DependencyUnavailableError, match="circuit breaker is open"):
        reader.get([ROW])


def test_input_errors_are_refused_before_the_breaker_and_never_open_it(
    home: Path, store: FakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from couturier.errors import InvalidInputError

    reader = reader_on(home, store, monkeypatch, online_breaker_failures=1)
    for _ in range(3):
        with pytest.raises(InvalidInputError):
            reader.get([{"listing_id": 1}])
    assert store.calls == 0
    assert state_of(reader) == "closed"


@pytest.mark.parametrize(
    ("kwargs", "field"), [({"failures": 0}, "failures"), ({"reset_s": 0.0}, "reset_s")]
)
def test_impossible_breaker_parameters_are_refused(kwargs: dict[str, Any], field: str) -> None:
    params: dict[str, Any] = {"failures": 5, "reset_s": 1.0, **kwargs}
    with pytest.raises(InvalidParameterError) as info:
        Breaker("store", **params)
    assert info.value.field == field
    assert f"e.g. {field}=" in info.value.message


@pytest.mark.parametrize(
    "variable",
    [
        "COUTURIER_ONLINE_TIMEOUT_MS",
        "COUTURIER_ONLINE_CONNECT_TIMEOUT_MS",
        "COUTURIER_ONLINE_BREAKER_FAILURES",
        "COUTURIER_ONLINE_BREAKER_RESET_S",
    ],
)
def test_settings_refuse_non_positive_timeouts_and_thresholds(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, "0")
    with pytest.raises(SettingsError) as info:
        Settings.load()
    assert info.value.variable == variable


def test_breaker_error_is_raised_without_calling_while_open() -> None:
    breaker = Breaker("store", failures=1, reset_s=60.0)
    with pytest.raises(ConnectionError):
        breaker.call(_raise)
    called: list[bool] = []
    with pytest.raises(BreakerOpenError, match="store"):
        breaker.call(lambda: called.append(True))
    assert not called
    assert isinstance(breaker.last_failure, ConnectionError)


def _raise() -> None:
    raise ConnectionError("down")

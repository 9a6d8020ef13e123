"""The console's store: leases that never hand one case to two people, forms accepted once,
verdicts never changed, and a label-store failure that stores nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from couturier.domains.authentication.review import ReviewStore
from couturier.domains.authentication.review._store import (
    CONSOLE_VERDICT_BASE,
    Reviewer,
    StoredVerdict,
)
from couturier.errors import ConflictError, InvalidInputError

AT = datetime(2026, 1, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ReviewStore]:
    s = ReviewStore(tmp_path / "review.db", lease_s=60)
    yield s
    s.close()


def _record(
    store: ReviewStore, reviewer: Reviewer, listing: int, token: str, verdict: str = "authentic"
) -> StoredVerdict:
    return store.record(
        reviewer,
        listing_id=listing,
        lease_token=token,
        verdict=verdict,
        kind="review",
        note="",
        report=[],
        model={"decision": "review", "probability": 0.4},
        at=AT,
        write_labels=lambda verdict_id: None,
    )


def test_reviewers_sign_in_with_their_password_only(store: ReviewStore) -> None:
    ana = store.add_reviewer("ana", "a long password")
    assert store.sign_in("ana", "a long password") == ana
    assert store.sign_in("ana", "a wrong password") is None
    assert store.sign_in("bob", "a long password") is None
    with pytest.raises(ConflictError, match="exists already"):
        store.add_reviewer("ana", "another password")
    with pytest.raises(InvalidInputError, match="role"):
        store.add_reviewer("bob", "a long password", role="admin")
    with pytest.raises(InvalidInputError, match="fewer than 8"):
        store.add_reviewer("bob", "short")
    assert "a long password" not in (store.path.read_bytes().decode("latin-1"))


def test_two_reviewers_never_hold_one_case_even_racing(tmp_path: Path) -> None:
    """Two stores on one file (two server replicas), many threads each, one candidate list."""
    first = ReviewStore(tmp_path / "review.db")
    second = ReviewStore(tmp_path / "review.db")
    people = [first.add_reviewer(f"r{i}", "a long password") for i in range(8)]
    got: dict[str, int | None] = {}

    def take(i: int) -> None:
        store = first if i % 2 else second
        lease = store.lease_next(people[i], iter([1, 2, 3, 4, 5]))
        got[people[i].name] = lease.listing_id if lease else None

    threads = [threading.Thread(target=take, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    held = [v for v in got.values() if v is not None]
    assert sorted(held) == [1, 2, 3, 4, 5]  # each case once; three reviewers got none
    assert list(got.values()).count(None) == 3
    first.close()
    second.close()


def test_a_form_is_accepted_once_and_only_from_its_holder(store: ReviewStore) -> None:
    ana = store.add_reviewer("ana", "a long password")
    bob = store.add_reviewer("bob", "a long password")
    lease = store.lease_next(ana, iter([7]))
    assert lease is not None
    with pytest.raises(ConflictError, match="do not hold listing 7"):
        _record(store, bob, 7, lease.token)  # bob sends ana's form
    with pytest.raises(ConflictError, match="do not hold listing 8"):
        _record(store, ana, 8, lease.token)  # the lease is for another listing
    stored = _record(store, ana, 7, lease.token)
    assert CONSOLE_VERDICT_BASE <= stored.verdict_id < 2**59  # check ids fit in int64
    with pytest.raises(ConflictError, match="already used"):
        _record(store, ana, 7, lease.token, verdict="counterfeit")  # the same form again
    assert [v.verdict for v in store.verdicts(7)] == ["authentic"]  # never changed


def test_a_refused_take_keeps_the_case_already_held(store: ReviewStore) -> None:
    ana = store.add_reviewer("ana", "a long password")
    bob = store.add_reviewer("bob", "a long password")
    mine = store.lease_next(ana, iter([7]))
    assert store.lease_next(bob, iter([8])) is not None
    assert store.lease_next(ana, iter([8])) is None  # bob's: refused
    assert store.lease_of(ana) == mine  # and ana still holds hers
    again = store.lease_next(ana, iter([7]))  # her own case: taken again, a new token
    assert again is not None and again.listing_id == 7


def test_reviewer_names_are_plain_words(store: ReviewStore) -> None:
    for name in ("x$^$", "", " ana", "<b>ana</b>", "a" * 65):
        with pytest.raises(InvalidInputError, match="reviewer name"):
            store.add_reviewer(name, "a long password")
    assert store.add_reviewer("Ana-María O'Neil", "a long password").name == "Ana-María O'Neil"


def test_an_expired_lease_refuses_the_form_and_frees_the_case(tmp_path: Path) -> None:
    store = ReviewStore(tmp_path / "review.db", lease_s=0.05)
    ana = store.add_reviewer("ana", "a long password")
    bob = store.add_reviewer("bob", "a long password")
    lease = store.lease_next(ana, iter([7]))
    assert lease is not None
    time.sleep(0.1)  # the lease's own clock: it is wall time, not a wait for an event
    with pytest.raises(ConflictError, match="expired"):
        _record(store, ana, 7, lease.token)
    assert store.lease_next(bob, iter([7])) is not None  # walked away: the case is free again
    assert store.verdicts() == []
    store.close()


def test_renewing_keeps_the_case_and_a_new_lease_gives_up_the_old(store: ReviewStore) -> None:
    ana = store.add_reviewer("ana", "a long password")
    first = store.lease_next(ana, iter([7]))
    assert first is not None
    renewed = store.renew(ana, first.token)
    assert renewed is not None and renewed.expires_at >= first.expires_at
    assert store.renew(ana, "not-a-token") is None
    assert store.lease_of(ana) == renewed  # a wrong token changes nothing
    second = store.lease_next(ana, iter([8]))
    assert second is not None and store.held() == {8: ana.id}


def test_a_label_store_failure_stores_nothing_and_keeps_the_lease(store: ReviewStore) -> None:
    ana = store.add_reviewer("ana", "a long password")
    lease = store.lease_next(ana, iter([7]))
    assert lease is not None

    def broken(verdict_id: int) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        store.record(
            ana,
            listing_id=7,
            lease_token=lease.token,
            verdict="authentic",
            kind="review",
            note="",
            report=[],
            model=None,
            at=AT,
            write_labels=broken,
        )
    assert store.verdicts() == []
    assert store.lease_of(ana) == lease  # the reviewer can save again


def test_escalating_consumes_the_lease(store: ReviewStore) -> None:
    ana = store.add_reviewer("ana", "a long password")
    lease = store.lease_next(ana, iter([7]))
    assert lease is not None
    store.escalate(ana, listing_id=7, lease_token=lease.token, note="unsure", at=AT)
    assert [(e[1], e[2]) for e in store.escalations_since(0)] == [(7, ana.id)]
    with pytest.raises(ConflictError):
        store.escalate(ana, listing_id=7, lease_token=lease.token, note="again", at=AT)

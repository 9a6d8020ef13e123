"""The review console over real HTTP: the queue, a verdict's way into the label store and the
training labels, bad forms refused on the page with nothing stored, and the senior's queue."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from typer.testing import CliRunner

from couturier.domains.authentication.labels import label_rows, result_column, value_column
from couturier.domains.authentication.monitoring import labels as monitored_labels
from tests.support.http import serve
from tests.support.review import ReviewWorld, csrf_of, lease_of, signed_in


@pytest.fixture
def world(tmp_path: Path) -> ReviewWorld:
    w = ReviewWorld.build(tmp_path)
    w.add_reviewer("ana")
    w.add_reviewer("bob")
    w.add_reviewer("sam", role="senior")
    return w


@pytest.fixture
def url(world: ReviewWorld) -> Iterator[str]:
    with serve(world.app()) as base:
        yield base


def _take_next(s: requests.Session, url: str) -> tuple[int, str]:
    queue = s.get(f"{url}/review", timeout=10)
    r = s.post(f"{url}/review/next", data={"csrf": csrf_of(queue.text)}, timeout=10)
    assert r.status_code == 200, r.text[:300]
    return int(r.url.rsplit("/", 1)[1]), r.text


def _verdict(s: requests.Session, url: str, listing: int, page: str, **fields: str) -> Any:
    data = {"csrf": csrf_of(page), "lease": lease_of(page), **fields}
    return s.post(f"{url}/review/cases/{listing}/verdict", data=data, timeout=10)


def _queue_ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'data-listing="(\d+)"', html)]


def test_the_queue_orders_by_the_value_of_a_review_and_overdue_first(
    world: ReviewWorld, url: str
) -> None:
    with signed_in(url, "ana") as s:
        page = s.get(f"{url}/review", timeout=10).text
    ids = _queue_ids(page)
    assert sorted(ids) == sorted(world.cases + world.audits)
    assert re.search(r'id="capacity-left">200<', page)
    records = {int(k): v for k, v in _records(world).items()}
    age = {
        k: (world.clock - pd.Timestamp(r["at"])).total_seconds() / 3600 for k, r in records.items()
    }
    overdue = [i for i in ids if age[i] > 24]
    assert overdue and ids[: len(overdue)] == sorted(overdue, key=lambda i: -age[i])
    rest = ids[len(overdue) :]
    value = [_value(records[i]) for i in rest]
    assert value == sorted(value, reverse=True)


def _records(world: ReviewWorld) -> dict[int, dict[str, Any]]:
    import json

    folder = world.settings.paths.predictions / "authentication"
    out = {}
    for path in folder.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            r = json.loads(line)
            out[r["listing_id"]] = r
    return out


def _value(record: dict[str, Any]) -> float:
    p = float(record["probability"])
    return min(p * 600, (1 - p) * 150) * float(record["features"]["asking_price"])


def test_a_verdict_becomes_a_point_in_time_label(world: ReviewWorld, url: str) -> None:
    with signed_in(url, "ana") as s:
        listing, page = _take_next(s, url)
        assert "Control points" in page and "Nearest verified references" in page
        r = _verdict(
            s,
            url,
            listing,
            page,
            verdict="counterfeit",
            note="loose stitching",
            **{
                "point.stitch_density": "fail",
                "measure.stitch_density": "8",
                "point.hardware": "pass",
            },
        )
        assert r.status_code == 200 and "/review/cases/" in r.url  # on to the next case
        assert int(r.url.rsplit("/", 1)[1]) != listing
        queue = s.get(f"{url}/review", timeout=10).text
    assert listing not in _queue_ids(queue)
    assert re.search(r'id="capacity-left">199<', queue)
    verdicts, points = world.labels()
    assert verdicts[["listing_id", "verdict"]].values.tolist() == [[listing, "counterfeit"]]
    assert verdicts["created_at"].iat[0] == pd.Timestamp(world.clock)
    assert (verdicts["expert_id"] >= 10_000).all()
    assert sorted(points["control_point"]) == ["hardware", "stitch_density"]
    assert points.set_index("control_point")["measurement"]["stitch_density"] == 8.0
    # the training labels see it from the moment it was recorded, never before
    now = label_rows(world.market.at(world.clock))
    before = label_rows(world.market.at(world.clock - timedelta(seconds=1)))
    mine = now[now["listing_id"] == listing]
    assert len(mine) == 1 and mine["verdict"].iat[0] == "counterfeit"
    assert mine[result_column("stitch_density")].iat[0] == "fail"
    assert mine[value_column("stitch_density")].iat[0] == 8.0
    assert listing not in set(before["listing_id"])
    # and monitoring's delayed labels count it, from the same moment
    watched = monitored_labels(world.market.at(world.clock))
    assert watched[watched["key"] == listing]["label"].tolist() == [1]


def test_a_case_stays_held_while_its_page_is_in_use(world: ReviewWorld, url: str) -> None:
    with signed_in(url, "ana") as s:
        listing, page = _take_next(s, url)
        heartbeat = f"{url}/review/cases/{listing}/lease"
        headers = {"X-CSRF-Token": csrf_of(page)}
        alive = s.post(heartbeat, data={"lease": lease_of(page)}, headers=headers, timeout=10)
        assert alive.status_code == 200 and ">held:" in alive.text
        gone = s.post(heartbeat, data={"lease": "not-mine"}, headers=headers, timeout=10)
        assert "expired" in gone.text
        forged = s.post(heartbeat, data={"lease": lease_of(page)}, timeout=10)  # no token
        assert "expired" in forged.text  # not renewed
        again = s.post(heartbeat, data={"lease": lease_of(page)}, headers=headers, timeout=10)
        assert ">held:" in again.text  # and not given up either


@pytest.mark.parametrize(
    ("fields", "status", "words"),
    [
        ({"verdict": "authentic", "point.zipper": "fail"}, 422, "unknown control point"),
        ({"point.hardware": "pass"}, 422, "choose authentic"),
        ({"verdict": "authentic", "csrf": "forged"}, 401, "security token"),
        ({"verdict": "authentic", "lease": "someone-elses"}, 409, "do not hold listing"),
    ],
)
def test_a_bad_form_is_refused_on_its_page_and_nothing_is_stored(
    world: ReviewWorld, url: str, fields: dict[str, str], status: int, words: str
) -> None:
    parts = sorted((world.market.path / "verdicts").glob("*.parquet"))
    with signed_in(url, "ana") as s:
        listing, page = _take_next(s, url)
        r = _verdict(s, url, listing, page, **fields)
    assert r.status_code == status
    assert words in r.text and 'role="alert"' in r.text
    assert sorted((world.market.path / "verdicts").glob("*.parquet")) == parts
    assert world.labels()[0].empty


def test_a_form_sent_twice_stores_one_verdict(world: ReviewWorld, url: str) -> None:
    with signed_in(url, "ana") as s:
        listing, page = _take_next(s, url)
        assert _verdict(s, url, listing, page, verdict="authentic").status_code == 200
        again = _verdict(s, url, listing, page, verdict="counterfeit")
    assert again.status_code == 409 and "already used" in again.text
    verdicts, _ = world.labels()
    assert verdicts["verdict"].tolist() == ["authentic"]


def test_two_reviewers_get_different_cases(world: ReviewWorld, url: str) -> None:
    with signed_in(url, "ana") as a, signed_in(url, "bob") as b:
        first, _ = _take_next(a, url)
        second, _ = _take_next(b, url)
        assert first != second
        queue = b.get(f"{url}/review", timeout=10).text
        assert "held by ana" in queue
        take = b.post(f"{url}/review/cases/{first}/take", data={"csrf": csrf_of(queue)}, timeout=10)
        assert take.status_code == 409 and "someone else" in take.text
        page = b.get(f"{url}/review/cases/{first}", timeout=10).text
        assert 'id="not-held"' in page and 'name="lease"' not in page


def test_a_disagreement_goes_to_a_senior_and_every_verdict_is_kept(
    world: ReviewWorld, url: str
) -> None:
    audited = world.audits[0]
    # an expert's verdict from before the console, already in the label store
    world.prior_verdict(audited, "authentic")
    with serve(world.app()) as base, signed_in(base, "ana") as s:
        queue = s.get(f"{base}/review", timeout=10).text
        assert re.search(
            rf'data-listing="{audited}">\s*<td>{audited}</td>\s*<td class="kind second-opinion"',
            queue,
        )
        take = s.post(
            f"{base}/review/cases/{audited}/take", data={"csrf": csrf_of(queue)}, timeout=10
        )
        assert "second opinion" in take.text and "Verdicts so far" not in take.text  # blind
        _verdict(s, base, audited, take.text, verdict="counterfeit")
        assert audited not in _queue_ids(s.get(f"{base}/review", timeout=10).text)
        with signed_in(base, "sam") as senior:
            queue = senior.get(f"{base}/review", timeout=10).text
            assert _queue_ids(queue)[0] == audited and "disagreement" in queue
            take = senior.post(
                f"{base}/review/cases/{audited}/take", data={"csrf": csrf_of(queue)}, timeout=10
            )
            assert "Verdicts so far" in take.text
            _verdict(senior, base, audited, take.text, verdict="counterfeit", note="serial wrong")
            assert audited not in _queue_ids(senior.get(f"{base}/review", timeout=10).text)
    everything = world.market.at(world.clock).read("verdicts")  # the simulated ones come later
    said = everything[everything["listing_id"] == audited].sort_values("created_at")
    assert said["verdict"].tolist() == ["authentic", "counterfeit", "counterfeit"]


def test_escalating_hands_the_case_to_a_senior(world: ReviewWorld, url: str) -> None:
    with signed_in(url, "ana") as s:
        listing, page = _take_next(s, url)
        r = s.post(
            f"{url}/review/cases/{listing}/escalate",
            data={"csrf": csrf_of(page), "lease": lease_of(page), "note": "never seen this"},
            timeout=10,
        )
        assert r.status_code == 200
        assert listing not in _queue_ids(s.get(f"{url}/review", timeout=10).text)
    with signed_in(url, "sam") as senior:
        queue = senior.get(f"{url}/review", timeout=10).text
    assert _queue_ids(queue)[0] == listing and "escalated" in queue
    assert world.labels()[0].empty  # an escalation is no label


def test_markup_in_a_listing_is_shown_as_text(world: ReviewWorld, url: str) -> None:
    row = world.market.lookup("listings", "listing_id", [world.cases[0]]).iloc[0].to_dict()
    evil = {
        **row,
        "listing_id": 900_001,
        "title": "<script>alert('x')</script><b>Bag</b>",
        "description": '"><img src=x onerror=alert(1)>',
    }
    world.market.append("listings", pd.DataFrame([evil])[list(row)])
    world.log([evil], decision="review")
    with signed_in(url, "ana") as s:
        queue = s.get(f"{url}/review", timeout=10).text
        take = s.post(f"{url}/review/cases/900001/take", data={"csrf": csrf_of(queue)}, timeout=10)
    assert take.status_code == 200
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&lt;b&gt;Bag&lt;/b&gt;" in take.text
    assert "<script>alert" not in take.text and "<img src=x" not in take.text


def test_signing_in_and_what_needs_it(world: ReviewWorld, url: str) -> None:
    s = requests.Session()
    assert s.get(f"{url}/review", timeout=10).url.endswith("/review/login")
    assert s.get(f"{url}/review/photos/0", timeout=10).status_code == 401
    page = s.get(f"{url}/review/login", timeout=10).text
    token = re.search(r'name="token" value="([^"]+)"', page)
    assert token
    wrong = s.post(
        f"{url}/review/login",
        data={"token": token.group(1), "name": "ana", "password": "nope"},
        timeout=10,
    )
    assert wrong.status_code == 401 and "wrong password" in wrong.text
    forged = s.post(
        f"{url}/review/login", data={"token": "made-up", "name": "ana", "password": "x"}, timeout=10
    )
    assert forged.status_code == 403
    with signed_in(url, "ana") as ok:
        photo = ok.get(f"{url}/review/photos/0", timeout=10)
        assert photo.status_code == 200 and photo.content[:2] == b"\xff\xd8"  # a JPEG
        assert ok.get(f"{url}/review/photos/99999999", timeout=10).status_code == 404


def test_the_throughput_page_counts_verdicts_and_agreement(world: ReviewWorld, url: str) -> None:
    with signed_in(url, "ana") as s:
        for verdict in ("authentic", "counterfeit"):
            listing, page = _take_next(s, url)
            _verdict(s, url, listing, page, verdict=verdict)
        page = s.get(f"{url}/review/throughput", timeout=10).text
    day = world.clock.date().isoformat()
    assert re.search(rf"<td>{day}</td><td>2</td>", page)
    assert page.count("<svg") == 3
    assert re.search(r'id="open">\d+<', page)


def test_reviewers_are_added_from_the_command_line(
    world: ReviewWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    from couturier.cli import app

    monkeypatch.setenv("COUTURIER_HOME", str(world.settings.home))
    monkeypatch.setenv("COUTURIER_REVIEWER_PASSWORD", "a long password")
    runner = CliRunner()
    added = runner.invoke(app, ["authentication", "reviewer", "add", "zoe", "--role", "senior"])
    assert added.exit_code == 0, added.output
    listed = runner.invoke(app, ["authentication", "reviewer", "list"])
    assert "zoe" in listed.output and "senior" in listed.output
    again = runner.invoke(app, ["authentication", "reviewer", "add", "zoe"])
    assert again.exit_code != 0


def test_a_half_written_label_is_removed_and_nothing_is_stored(
    world: ReviewWorld, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report's part is written, the verdict's fails: the report's part goes again, the
    console stores nothing, and the reviewer still holds the case."""
    from couturier.marketplace import Marketplace

    real = Marketplace.append

    def failing(self: Marketplace, table: str, rows: pd.DataFrame) -> Path:
        if table == "verdicts":
            raise OSError("disk full")
        return real(self, table, rows)

    parts = {
        t: sorted((world.market.path / t).glob("*.parquet")) for t in ("verdicts", "control_points")
    }
    with signed_in(url, "ana") as s:
        listing, page = _take_next(s, url)
        monkeypatch.setattr(Marketplace, "append", failing)
        r = _verdict(s, url, listing, page, verdict="counterfeit", **{"point.hardware": "fail"})
        assert r.status_code == 503 and "nothing was stored" in r.text
        monkeypatch.setattr(Marketplace, "append", real)
        for table, before in parts.items():
            assert sorted((world.market.path / table).glob("*.parquet")) == before, table
        assert world.labels()[0].empty and world.labels()[1].empty
        retry = _verdict(s, url, listing, page, verdict="counterfeit", **{"point.hardware": "fail"})
        assert retry.status_code == 200  # the lease held: the same form saves now
    verdicts, points = world.labels()
    assert len(verdicts) == 1 and points["verdict_id"].tolist() == verdicts["verdict_id"].tolist()


def test_a_senior_never_settles_a_disagreement_they_are_party_to(
    world: ReviewWorld, tmp_path: Path
) -> None:
    world.add_reviewer("sue", role="senior")
    audited = world.audits[0]
    world.prior_verdict(audited, "authentic")
    with serve(world.app()) as base:
        with signed_in(base, "sam") as sam:  # a senior gives the blind second opinion
            queue = sam.get(f"{base}/review", timeout=10).text
            take = sam.post(
                f"{base}/review/cases/{audited}/take", data={"csrf": csrf_of(queue)}, timeout=10
            )
            assert "second opinion" in take.text
            _verdict(sam, base, audited, take.text, verdict="counterfeit")
            assert audited not in _queue_ids(sam.get(f"{base}/review", timeout=10).text)
        with signed_in(base, "sue") as sue:  # another senior settles it
            assert _queue_ids(sue.get(f"{base}/review", timeout=10).text)[0] == audited


def test_ids_out_of_range_and_foreign_posts_are_refused(world: ReviewWorld, url: str) -> None:
    with signed_in(url, "ana") as s:
        huge = 10**20
        for path in (f"/review/cases/{huge}", f"/review/photos/{huge}", "/review/cases/-1"):
            assert s.get(f"{url}{path}", timeout=10).status_code == 422, path
        listing, page = _take_next(s, url)
        foreign = s.post(
            f"{url}/review/cases/{listing}/verdict",
            data={"csrf": csrf_of(page), "lease": lease_of(page), "verdict": "authentic"},
            headers={"Sec-Fetch-Site": "cross-site"},
            timeout=10,
        )
        assert foreign.status_code == 403 and "another site" in foreign.text
        other = s.post(
            f"{url}/review/next",
            data={"csrf": csrf_of(page), "skip": "²"},  # isdigit, yet no int
            headers={"Origin": "https://evil.example"},
            timeout=10,
        )
        assert other.status_code == 403
        skipped = s.post(
            f"{url}/review/next", data={"csrf": csrf_of(page), "skip": "²"}, timeout=10
        )
        assert skipped.status_code == 200
    assert world.labels()[0].empty

"""The review console in a real Chromium (Playwright): a reviewer works cases from the keyboard
alone, two browsers never get one case, and a listing's markup stays text.

Screenshots of the queue and the case page are saved in ``artifacts_dir``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from tests.support.http import serve
from tests.support.review import PASSWORD, ReviewWorld

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Dialog, Page

pytestmark = pytest.mark.integration


@pytest.fixture
def world(tmp_path: Path) -> ReviewWorld:
    w = ReviewWorld.build(tmp_path)
    w.add_reviewer("ana")
    w.add_reviewer("bob")
    return w


@pytest.fixture
def url(world: ReviewWorld) -> Iterator[str]:
    with serve(world.app()) as base:
        yield base


def _sign_in(page: Page, url: str, name: str) -> None:
    """With the keyboard: the name field has the focus, Tab to the password, Enter."""
    page.goto(f"{url}/review/login")
    page.wait_for_function("document.activeElement && document.activeElement.id === 'name'")
    page.keyboard.type(name)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{url}/review")


def _listing_of(page: Page) -> int:
    return int(page.url.rsplit("/", 1)[1])


def _key_then_next_case(page: Page, key: str, current: int) -> None:
    with page.expect_navigation():
        page.keyboard.press(key)
    assert _listing_of(page) != current


def test_a_reviewer_works_three_cases_from_the_keyboard(
    world: ReviewWorld, url: str, page: Page, artifacts_dir: Path
) -> None:
    _sign_in(page, url, "ana")
    page.screenshot(path=artifacts_dir / "review-queue.png", full_page=True)
    with page.expect_navigation():
        page.keyboard.press("n")  # the queue: work the next case
    first = _listing_of(page)
    page.screenshot(path=artifacts_dir / "review-case.png", full_page=True)
    # case 1: counterfeit; stitch density fails at 8 stitches/inch; hardware passes; a note
    for key in ("c", "1", "f", "m"):
        page.keyboard.press(key)
    page.keyboard.type("8")
    page.keyboard.press("Escape")
    for key in ("6", "p", "o"):
        page.keyboard.press(key)
    page.keyboard.type("uneven stitches")
    page.keyboard.press("Escape")
    _key_then_next_case(page, "s", first)
    second = _listing_of(page)
    page.keyboard.press("a")  # case 2: authentic, no report
    _key_then_next_case(page, "s", second)
    third = _listing_of(page)
    for key in ("c", "4", "f", "j", "f"):  # case 3: logo and canvas colour fail
        page.keyboard.press(key)
    _key_then_next_case(page, "s", third)

    verdicts, points = world.labels()
    said = dict(zip(verdicts["listing_id"], verdicts["verdict"], strict=True))
    assert said == {first: "counterfeit", second: "authentic", third: "counterfeit"}
    report = {
        (int(lid), p): (r, m)
        for lid, p, r, m in zip(
            points["listing_id"],
            points["control_point"],
            points["result"],
            points["measurement"],
            strict=True,
        )
    }
    assert report[(first, "stitch_density")] == ("fail", 8.0)
    assert report[(first, "hardware")][0] == "pass"
    assert {p for (lid, p) in report if lid == third} == {"logo_typeface", "canvas_colour"}
    assert all(r == "fail" for (lid, _), (r, _) in report.items() if lid == third)
    assert not any(lid == second for (lid, _) in report)


def test_two_browsers_never_get_the_same_case(
    world: ReviewWorld, url: str, browser: Browser
) -> None:
    contexts = [browser.new_context() for _ in range(2)]
    try:
        pages = [context.new_page() for context in contexts]
        for page, name in zip(pages, ("ana", "bob"), strict=True):
            _sign_in(page, url, name)
        for page in pages:
            with page.expect_navigation():
                page.keyboard.press("n")
        first, second = (_listing_of(p) for p in pages)
        assert first != second
        # bob opens ana's case by its address: he sees it, but may not judge it
        pages[1].goto(f"{url}/review/cases/{first}")
        assert pages[1].locator("#not-held").is_visible()
        assert pages[1].locator("#verdict-form").count() == 0
    finally:
        for context in contexts:
            context.close()


def test_a_title_with_a_script_is_shown_as_text(world: ReviewWorld, url: str, page: Page) -> None:
    row = world.market.lookup("listings", "listing_id", [world.cases[0]]).iloc[0].to_dict()
    title = "<script>window.pwned = true</script>Speedy 30"
    evil = {**row, "listing_id": 900_002, "title": title}
    world.market.append("listings", pd.DataFrame([evil])[list(row)])
    world.log([evil], decision="review")
    dialogs: list[str] = []

    def refuse(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", refuse)
    _sign_in(page, url, "ana")
    page.goto(f"{url}/review/cases/900002")
    assert page.locator("#title").inner_text() == title
    assert page.evaluate("window.pwned === undefined")
    assert dialogs == []

"""The console's pages, under ``/review``: server-rendered HTML (Jinja2, autoescaped) and htmx.

Every page needs a signed-in reviewer (else: the sign-in page); every POST must come from this
site (``Sec-Fetch-Site`` / ``Origin``) and carry the page's CSRF token; a case is worked only
under its lease. A refused form is shown again on its page, with the reason in words and a 4xx
status, and nothing is stored. The work behind a POST (a password hash, SQLite's write lock,
fsynced writes) runs in the thread pool, never on the event loop that also serves the API.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from couturier.domains.authentication.review._auth import Sessions
from couturier.domains.authentication.review._cases import CaseFiles
from couturier.domains.authentication.review._form import MAX_NOTE, VERDICTS, parse_verdict
from couturier.domains.authentication.review._queue import ReviewQueue
from couturier.domains.authentication.review._store import Reviewer, ReviewStore
from couturier.domains.authentication.review._throughput import throughput
from couturier.errors import (
    ConflictError,
    CouturierError,
    ForbiddenError,
    InvalidInputError,
    UnauthorizedError,
)
from couturier.marketplace import CONTROL_POINTS

__all__ = ["Console", "console_router"]

log = logging.getLogger("couturier.authentication.review")
_STATIC = files("couturier.domains.authentication.review") / "static"
_KINDS = {
    "htmx.min.js": "text/javascript",
    "review.js": "text/javascript",
    "review.css": "text/css",
}
_TEMPLATES = Environment(
    loader=PackageLoader("couturier.domains.authentication.review", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)
#: on every answer: no sniffing, no framing, scripts from this site only (no inline script,
#: no eval: htmx's triggers are plain events), styles inline allowed (the plots' SVG uses them)
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' "
    "'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'",
}
QUEUE_ROWS = 50
#: a listing or photo id in a path: what every store holds (int64)
Id = Annotated[int, Path(ge=0, le=2**63 - 1)]


@dataclass
class Console:
    """What the pages work with."""

    store: ReviewStore
    queue: ReviewQueue
    cases: CaseFiles
    sessions: Sessions


@dataclass(frozen=True)
class _Who:
    reviewer: Reviewer
    session: str
    csrf: str


def _render(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _TEMPLATES.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def _to(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=_HEADERS)


def _same_site(request: Request) -> None:
    """Refuse a POST a browser says came from another site (login CSRF included)."""
    fetch = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    foreign = fetch not in (None, "same-origin", "none")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        foreign = True
    if foreign:
        raise ForbiddenError(
            "this form was sent from another site; nothing was stored. Open the console "
            "itself and send the form from there.",
            field="origin",
        )


async def _form(request: Request) -> dict[str, str]:
    _same_site(request)
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def console_router(console: Console) -> APIRouter:  # noqa: C901, PLR0915 - the console's routes
    api = APIRouter(prefix="/review", include_in_schema=False)
    store, queue, sessions = console.store, console.queue, console.sessions

    def who(request: Request) -> _Who | None:
        found = sessions.read(request.cookies.get(Sessions.cookie))
        if found is None:
            return None
        reviewer = store.reviewer(found[0])
        return _Who(reviewer, found[1], sessions.csrf(found[1])) if reviewer else None

    def checked(me: _Who, form: dict[str, str], header: str | None = None) -> dict[str, str]:
        if not sessions.csrf_ok(me.session, form.pop("csrf", None) or header):
            raise UnauthorizedError(
                "this form's security token does not match your session (a stale page, or a "
                "form from another site); nothing was stored. Reload the page and try again.",
                field="csrf",
            )
        return form

    def queue_page(me: _Who, status: int = 200, message: str | None = None) -> HTMLResponse:
        return _render(
            "queue.html.j2",
            status,
            me=me,
            capacity_left=queue.capacity_left(),
            capacity=queue.capacity_per_day,
            message=message,
            **_table(queue, store, me),
        )

    def case_page(me: _Who, listing_id: int, status: int = 200, **extra: Any) -> HTMLResponse:
        case = queue.case(me.reviewer, listing_id)
        lease = store.lease_of(me.reviewer)
        held = lease if lease is not None and lease.listing_id == listing_id else None
        return _render(
            "case.html.j2",
            status,
            me=me,
            case=case,
            listing_id=listing_id,
            lease=held,
            file=console.cases.file(listing_id, queue.record(listing_id)),
            points=CONTROL_POINTS,
            verdicts=VERDICTS,
            **extra,
        )

    def next_case(me: _Who, skip: int | None = None) -> Response:
        order = (i for i in queue.cases(me.reviewer, limit=0).order if i != skip)
        lease = store.lease_next(me.reviewer, order)
        if lease is None:
            return queue_page(me, message="no case is free to work: the queue is empty")
        return _to(f"/review/cases/{lease.listing_id}")

    async def on_queue(
        request: Request, work: Callable[[_Who, dict[str, str]], Response]
    ) -> Response:
        """A POST from the queue page: refused ones are shown on the queue page."""
        me = who(request)
        if me is None:
            return _to("/review/login")
        try:
            form = checked(me, await _form(request))
            return await run_in_threadpool(work, me, form)
        except CouturierError as exc:
            return await run_in_threadpool(queue_page, me, exc.http_status, exc.message)

    async def on_case(
        request: Request, listing_id: int, work: Callable[[_Who, dict[str, str]], Response]
    ) -> Response:
        """A POST from a case page: refused ones are shown on the case page, form kept."""
        me = who(request)
        if me is None:
            return _to("/review/login")
        form: dict[str, str] = {}
        try:
            form = checked(me, await _form(request))
            return await run_in_threadpool(work, me, form)
        except CouturierError as exc:
            status, message = exc.http_status, exc.message
        return await run_in_threadpool(
            lambda: case_page(me, listing_id, status, message=message, form=form)
        )

    @api.get("", response_class=HTMLResponse)
    def home(request: Request) -> Response:
        me = who(request)
        return queue_page(me) if me else _to("/review/login")

    @api.get("/queue-table", response_class=HTMLResponse)
    def queue_table(request: Request) -> Response:
        me = who(request)
        if me is None:
            return Response(status_code=401)
        return _render("queue_table.html.j2", me=me, **_table(queue, store, me))

    @api.get("/login", response_class=HTMLResponse)
    def login_form() -> Response:
        return _render("login.html.j2", token=sessions.login_token())

    @api.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        try:
            form = await _form(request)
        except CouturierError as exc:
            return _render("login.html.j2", exc.http_status, token=sessions.login_token(),
                           message=exc.message)  # fmt: skip
        name, password = form.get("name", ""), form.get("password", "")
        if not sessions.login_token_ok(form.get("token")):
            message = "this sign-in form is stale or did not come from this site: sign in again"
            return _render("login.html.j2", 403, token=sessions.login_token(), name=name,
                           message=message)  # fmt: skip
        reviewer = await run_in_threadpool(store.sign_in, name, password)  # ~40 ms of scrypt
        if reviewer is None:
            message = (
                "unknown name or wrong password; an administrator adds reviewers with "
                "`couturier authentication reviewer add NAME`"
            )
            return _render("login.html.j2", 401, token=sessions.login_token(), name=name,
                           message=message)  # fmt: skip
        out = _to("/review")
        out.set_cookie(
            Sessions.cookie,
            sessions.issue(reviewer.id),
            max_age=sessions.max_age_s,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/review",
        )
        return out

    @api.post("/logout")
    async def logout(request: Request) -> Response:
        def work(me: _Who, form: dict[str, str]) -> Response:
            store.release(me.reviewer)
            out = _to("/review/login")
            out.delete_cookie(Sessions.cookie, path="/review")
            return out

        return await on_queue(request, work)

    @api.post("/next")
    async def take_next(request: Request) -> Response:
        def work(me: _Who, form: dict[str, str]) -> Response:
            skip = form.get("skip", "")
            return next_case(me, int(skip) if skip.isascii() and skip.isdigit() else None)

        return await on_queue(request, work)

    @api.get("/cases/{listing_id}", response_class=HTMLResponse)
    def case(request: Request, listing_id: Id) -> Response:
        me = who(request)
        return case_page(me, listing_id) if me else _to("/review/login")

    @api.post("/cases/{listing_id}/take")
    async def take(request: Request, listing_id: Id) -> Response:
        def work(me: _Who, form: dict[str, str]) -> Response:
            if queue.case(me.reviewer, listing_id) is None:
                raise ConflictError(f"listing {listing_id} is not a case of yours to work")
            if store.lease_next(me.reviewer, iter([listing_id])) is None:
                raise ConflictError(f"listing {listing_id} is being worked by someone else")
            return _to(f"/review/cases/{listing_id}")

        return await on_queue(request, work)

    @api.post("/cases/{listing_id}/verdict")
    async def verdict(request: Request, listing_id: Id) -> Response:
        def work(me: _Who, form: dict[str, str]) -> Response:
            parsed = parse_verdict(form)
            case = queue.case(me.reviewer, listing_id)
            console.cases.record(me.reviewer, listing_id, form.get("lease", ""), parsed, case)
            return next_case(me)

        return await on_case(request, listing_id, work)

    @api.post("/cases/{listing_id}/escalate")
    async def escalate(request: Request, listing_id: Id) -> Response:
        def work(me: _Who, form: dict[str, str]) -> Response:
            note = form.get("note", "").strip()
            if len(note) > MAX_NOTE:
                raise InvalidInputError(
                    f"the note has {len(note)} characters; at most {MAX_NOTE}: shorten it",
                    field="note",
                )
            store.escalate(
                me.reviewer,
                listing_id=listing_id,
                lease_token=form.get("lease", ""),
                note=note,
                at=queue.clock(),
            )
            return next_case(me)

        return await on_case(request, listing_id, work)

    @api.post("/cases/{listing_id}/lease", response_class=HTMLResponse)
    async def renew(request: Request, listing_id: Id) -> Response:
        """The case page's sign of life. 200 either way (htmx swaps only a 2xx answer), and
        the fragment says whether the lease still holds."""
        me = who(request)
        lease = None
        if me is not None:
            try:
                form = checked(me, await _form(request), request.headers.get("x-csrf-token"))
                lease = await run_in_threadpool(store.renew, me.reviewer, form.get("lease", ""))
            except CouturierError:
                lease = None
        held = lease is not None and lease.listing_id == listing_id
        return _render("lease.html.j2", lease=lease if held else None)

    @api.get("/photos/{photo_id}")
    def photo(request: Request, photo_id: Id) -> Response:
        if who(request) is None:
            return Response(status_code=401, headers=_HEADERS)
        image = console.cases.photo(photo_id)
        if image is None:
            return Response(f"no photo {photo_id}", 404, media_type="text/plain", headers=_HEADERS)
        headers = {**_HEADERS, "Cache-Control": "private, max-age=3600"}
        return Response(image, media_type="image/jpeg", headers=headers)

    @api.get("/throughput", response_class=HTMLResponse)
    def throughput_page(request: Request) -> Response:
        me = who(request)
        if me is None:
            return _to("/review/login")
        return _render("throughput.html.j2", me=me, stats=throughput(store, queue, me.reviewer))

    @api.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in _KINDS:  # an allow-list: no path reaches the file system
            return Response(status_code=404)
        headers = {**_HEADERS, "Cache-Control": "public, max-age=86400"}
        return Response((_STATIC / name).read_bytes(), media_type=_KINDS[name], headers=headers)

    return api


def _table(queue: ReviewQueue, store: ReviewStore, me: _Who) -> dict[str, Any]:
    view = queue.cases(me.reviewer, limit=QUEUE_ROWS)
    return {
        "cases": view.cases,
        "total": view.total,
        "overdue": view.overdue,
        "senior_cases": view.senior,
        "names": {r.id: r.name for r in store.reviewers()},
        "sla_h": queue.sla_h,
    }

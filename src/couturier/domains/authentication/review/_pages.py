"""The console's pages, under ``/review``: server-rendered HTML (Jinja2, autoescaped) and htmx.

Every page needs a signed-in reviewer (else: the sign-in page); every POST carries the page's
CSRF token; a case is worked only under its lease. A refused form is shown again on its page,
with the reason in words and a 4xx status, and nothing is stored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from couturier.domains.authentication.review._auth import Sessions
from couturier.domains.authentication.review._cases import CaseFiles
from couturier.domains.authentication.review._form import VERDICTS, parse_verdict
from couturier.domains.authentication.review._queue import ReviewQueue
from couturier.domains.authentication.review._store import Reviewer, ReviewStore
from couturier.domains.authentication.review._throughput import throughput
from couturier.errors import ConflictError, CouturierError, UnauthorizedError
from couturier.marketplace import CONTROL_POINTS

__all__ = ["Console", "console_router"]

log = logging.getLogger("couturier.authentication.review")
_STATIC = files("couturier.domains.authentication.review") / "static"
_TEMPLATES = Environment(
    loader=PackageLoader("couturier.domains.authentication.review", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)
QUEUE_ROWS = 50


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
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def _to(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def console_router(console: Console) -> APIRouter:  # noqa: C901, PLR0915 - the console's routes
    api = APIRouter(prefix="/review", include_in_schema=False)
    store, queue, sessions = console.store, console.queue, console.sessions

    def who(request: Request) -> _Who | None:
        found = sessions.read(request.cookies.get(Sessions.cookie))
        if found is None:
            return None
        reviewer = store.reviewer(found[0])
        return _Who(reviewer, found[1], sessions.csrf(found[1])) if reviewer else None

    async def posted(request: Request, me: _Who) -> dict[str, Any]:
        form = await request.form()
        data = {k: v for k, v in form.items() if isinstance(v, str)}
        token = data.pop("csrf", None) or request.headers.get("x-csrf-token")
        if not sessions.csrf_ok(me.session, token):
            raise UnauthorizedError(
                "this form's security token does not match your session (a stale page, or a "
                "form from another site); nothing was stored. Reload the page and try again.",
                field="csrf",
            )
        return data

    def queue_page(me: _Who, status: int = 200, message: str | None = None) -> HTMLResponse:
        table = _table(queue, store, me)
        return _render(
            "queue.html.j2",
            status,
            me=me,
            capacity_left=queue.capacity_left(),
            capacity=queue.capacity_per_day,
            message=message,
            **table,
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
        form = await request.form()
        name, password = str(form.get("name", "")), str(form.get("password", ""))
        if not sessions.login_token_ok(str(form.get("token", ""))):
            return _render(
                "login.html.j2",
                403,
                token=sessions.login_token(),
                name=name,
                message="this sign-in form is stale or did not come from this site: sign in again",
            )
        reviewer = store.sign_in(name, password)
        if reviewer is None:
            return _render(
                "login.html.j2",
                401,
                token=sessions.login_token(),
                name=name,
                message="unknown name or wrong password; an administrator adds reviewers with "
                "`couturier authentication reviewer add NAME`",
            )
        out = _to("/review")
        out.set_cookie(
            Sessions.cookie,
            sessions.issue(reviewer.id),
            max_age=sessions.max_age_s,
            httponly=True,
            samesite="strict",
            path="/review",
        )
        return out

    @api.post("/logout")
    async def logout(request: Request) -> Response:
        me = who(request)
        if me is not None:
            await posted(request, me)
            store.release(me.reviewer)
        out = _to("/review/login")
        out.delete_cookie(Sessions.cookie, path="/review")
        return out

    @api.post("/next")
    async def take_next(request: Request) -> Response:
        me = who(request)
        if me is None:
            return _to("/review/login")
        try:
            data = await posted(request, me)
        except CouturierError as exc:
            return queue_page(me, exc.http_status, exc.message)
        skip = data.get("skip")
        return next_case(me, int(skip) if skip and skip.isdigit() else None)

    @api.get("/cases/{listing_id}", response_class=HTMLResponse)
    def case(request: Request, listing_id: int) -> Response:
        me = who(request)
        return case_page(me, listing_id) if me else _to("/review/login")

    @api.post("/cases/{listing_id}/take")
    async def take(request: Request, listing_id: int) -> Response:
        me = who(request)
        if me is None:
            return _to("/review/login")
        try:
            await posted(request, me)
            if queue.case(me.reviewer, listing_id) is None:
                raise ConflictError(f"listing {listing_id} is not a case of yours to work")
            if store.lease_next(me.reviewer, iter([listing_id])) is None:
                raise ConflictError(f"listing {listing_id} is being worked by someone else")
        except CouturierError as exc:
            return queue_page(me, exc.http_status, exc.message)
        return _to(f"/review/cases/{listing_id}")

    @api.post("/cases/{listing_id}/verdict")
    async def verdict(request: Request, listing_id: int) -> Response:
        me = who(request)
        if me is None:
            return _to("/review/login")
        form: dict[str, Any] = {}
        try:
            form = await posted(request, me)
            parsed = parse_verdict(form)
            case = queue.case(me.reviewer, listing_id)
            console.cases.record(me.reviewer, listing_id, form.get("lease", ""), parsed, case)
        except CouturierError as exc:
            return case_page(me, listing_id, exc.http_status, message=exc.message, form=form)
        return next_case(me)

    @api.post("/cases/{listing_id}/escalate")
    async def escalate(request: Request, listing_id: int) -> Response:
        me = who(request)
        if me is None:
            return _to("/review/login")
        form: dict[str, Any] = {}
        try:
            form = await posted(request, me)
            store.escalate(
                me.reviewer,
                listing_id=listing_id,
                lease_token=form.get("lease", ""),
                note=str(form.get("note", ""))[:2000],
                at=queue.clock(),
            )
        except CouturierError as exc:
            return case_page(me, listing_id, exc.http_status, message=exc.message, form=form)
        return next_case(me)

    @api.post("/cases/{listing_id}/lease", response_class=HTMLResponse)
    async def renew(request: Request, listing_id: int) -> Response:
        me = who(request)
        if me is None:
            return Response(status_code=401)
        form = await posted(request, me)
        lease = store.renew(me.reviewer, form.get("lease", ""))
        held = lease is not None and lease.listing_id == listing_id
        # 200 either way: htmx swaps only a 2xx answer, and the page must say the lease is gone
        return _render("lease.html.j2", lease=lease if held else None)

    @api.get("/photos/{photo_id}")
    def photo(request: Request, photo_id: int) -> Response:
        if who(request) is None:
            return Response(status_code=401)
        image = console.cases.photo(photo_id)
        if image is None:
            return Response(f"no photo {photo_id}", status_code=404, media_type="text/plain")
        return Response(
            image, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"}
        )

    @api.get("/throughput", response_class=HTMLResponse)
    def throughput_page(request: Request) -> Response:
        me = who(request)
        if me is None:
            return _to("/review/login")
        return _render("throughput.html.j2", me=me, stats=throughput(store, queue, me.reviewer))

    @api.get("/static/{name}")
    def static(name: str) -> Response:
        kinds = {
            "htmx.min.js": "text/javascript",
            "review.js": "text/javascript",
            "review.css": "text/css",
        }
        if name not in kinds:
            return Response(status_code=404)
        return Response(
            (_STATIC / name).read_bytes(),
            media_type=kinds[name],
            headers={"Cache-Control": "public, max-age=86400"},
        )

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

"""The dashboard's HTTP side: aiohttp on the gRPC server's own event loop.

The loop only parses requests and writes responses; each page's database
work and rendering runs on the server's worker threads (Workers.run: a
pooled connection, the same bound as the RPCs), so a slow page never stalls
a gRPC call. Pages are plain HTML forms: no JavaScript at all, so the
Content-Security-Policy forbids every script, and a confirmation is a page
of its own.
"""

import logging
import re
import socket
import ssl
import time
from importlib import resources
from urllib.parse import urlencode

from aiohttp import web

from .. import storage
from ..errors import DomainError, Unauthenticated
from ..health import DatabaseHealth
from ..settings import split_host_port
from ..workers import Workers
from . import sessions
from .pages import Pages

log = logging.getLogger("promptgauge.http")

HTTP_STATUS: dict[str, int] = {
    "InvalidArgument": 400,
    "Unauthenticated": 401,
    "NotFound": 404,
    "AlreadyExists": 409,
    "FailedPrecondition": 409,
    "ResourceExhausted": 413,
    "Unavailable": 503,
}
SECURITY_HEADERS = {
    # No script may run, whatever a page holds; styles and images from here only.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
MAX_FORM_BYTES = 64 * 1024
_LOCAL_PATH = re.compile(r"/(?![/\\])[A-Za-z0-9._~/?=&%+-]*")


def _redirect(location: str) -> web.Response:
    """303 See Other: after a form, the browser GETs `location`."""
    return web.Response(status=303, headers={"Location": location})


def _status_of(error: DomainError) -> int:
    for cls in type(error).__mro__:
        if cls.__name__ in HTTP_STATUS:
            return HTTP_STATUS[cls.__name__]
    return 500


def bind(address: str) -> socket.socket:
    """A listening socket on HOST:PORT (port 0: one the system picks)."""
    host, port = split_host_port(address)
    family, kind, proto, _, sockaddr = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def tls_context(cert_file: str, key_file: str, client_ca_file: str) -> ssl.SSLContext:
    """The gRPC port's TLS, for the dashboard too: the same certificate, and
    client certificates required when the gRPC port requires them."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    if client_ca_file:
        context.load_verify_locations(cafile=client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class Dashboard:
    """The web dashboard of one server: `await start(address)`, `await stop()`."""

    def __init__(self, pages: Pages, workers: Workers, health: DatabaseHealth | None,
                 tls: ssl.SSLContext | None = None, grace_seconds: float = 10.0):
        self.pages = pages
        self.grace_seconds = grace_seconds
        self.workers = workers
        self.health = health
        self.tls = tls
        self.port = 0
        self._secret: bytes | None = None
        self._runner: web.AppRunner | None = None
        self._css = resources.files(__package__).joinpath("static/dashboard.css").read_bytes()
        app = web.Application(middlewares=[self._observed, self._errors], client_max_size=MAX_FORM_BYTES)
        app.add_routes([
            web.get("/", self.home),
            web.get("/signin", self.sign_in_form),
            web.post("/signin", self.sign_in),
            web.post("/signout", self.sign_out),
            web.get("/static/dashboard.css", self.stylesheet),
            web.get("/prompts/{name}", self.prompt),
            web.get("/prompts/{name}/versions/{version}", self.version),
            web.get("/prompts/{name}/diff", self.diff),
            web.get("/prompts/{name}/activate", self.confirm_activation),
            web.post("/prompts/{name}/activate", self.activate),
            web.get("/agents", self.agents),
            web.get("/agents/{name}", self.agent),
            web.get("/agents/{name}/promote", self.confirm_promotion),
            web.post("/agents/{name}/promote", self.promote),
        ])
        self.app = app

    async def start(self, address: str) -> int:
        sock = bind(address)
        # On stop, pages in flight get the gRPC calls' grace, then are cut.
        self._runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=self.grace_seconds
        )
        await self._runner.setup()
        await web.SockSite(self._runner, sock, ssl_context=self.tls).start()
        self.port = sock.getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- plumbing ---------------------------------------------------------

    @web.middleware
    async def _observed(self, request: web.Request, handler):
        started = time.perf_counter()
        response = await handler(request)
        response.headers.update(SECURITY_HEADERS)
        if request.path != "/static/dashboard.css":
            response.headers["Cache-Control"] = "no-store"
        if log.isEnabledFor(logging.INFO):
            seconds = time.perf_counter() - started
            # The path only: a query may hold render variables, a form an API key.
            log.info("%s %s %d %.1fms", request.method, request.path, response.status, seconds * 1000,
                     extra={"fields": {"method": request.method, "path": request.path,
                                       "status": response.status, "duration_ms": round(seconds * 1000, 3)}})
        return response

    @web.middleware
    async def _errors(self, request: web.Request, handler):
        """The one mapping from what went wrong to a status and a page."""
        try:
            ready = self.health is None or self.health.schema_ready
            if not ready and request.path != "/static/dashboard.css":
                return self._error_page(503, f"the database is unavailable ({self.health.last_error}); "
                                             "reload in a moment")
            return await handler(request)
        except web.HTTPException as error:  # the router's 404 and 405, a form over the size limit
            if error.status < 400:
                raise
            return self._error_page(error.status, "no such page" if error.status == 404 else error.reason)
        except Unauthenticated:
            # The session's key was revoked: sign in again.
            response = self._to_sign_in(request)
            response.del_cookie(sessions.COOKIE, path="/")
            return response
        except DomainError as error:
            return self._error_page(_status_of(error), error.message)
        except storage.UNAVAILABLE_ERRORS as error:
            if self.health is not None:
                self.health.failed(error)
            return self._error_page(503, "the database is unavailable; reload in a moment")
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            return self._error_page(500, "internal error; the server log has the details")

    def _error_page(self, status: int, message: str) -> web.Response:
        return self._html(self.pages.error_page(None, status, message), status)

    @staticmethod
    def _html(text: str, status: int = 200) -> web.Response:
        return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")

    async def _secret_key(self) -> bytes:
        if self._secret is None:
            # Read inside a request: the server may start before its database answers.
            key = await self.workers.run(storage.setting, "page_token_key")
            self._secret = sessions.derive_secret(bytes.fromhex(key))
        return self._secret

    async def _session(self, request: web.Request) -> sessions.Session | None:
        return sessions.decode(await self._secret_key(), request.cookies.get(sessions.COOKIE))

    def _set_session(self, response: web.StreamResponse, secret: bytes, session: sessions.Session) -> None:
        response.set_cookie(
            sessions.COOKIE, sessions.encode(secret, session), path="/", httponly=True, samesite="Strict",
            secure=self.tls is not None, max_age=max(0, session.expires - int(time.time())),
        )

    @staticmethod
    def _to_sign_in(request: web.Request) -> web.Response:
        target = "/signin"
        if request.method == "GET" and request.path_qs != "/":
            target += "?" + urlencode({"next": request.path_qs}, safe="/")
        return _redirect(target)

    async def _viewer_page(self, request: web.Request, build, *args):
        """A signed-in page: `build(viewer, *args)` on a worker, after the
        session's key is checked there (one hop); its HTML, or (status, HTML)."""
        secret = await self._secret_key()
        session = sessions.decode(secret, request.cookies.get(sessions.COOKIE))
        if session is None or not session.signed_in:
            return self._to_sign_in(request)
        token = sessions.csrf_token(secret, session)

        def page():
            return build(self.pages.viewer(session, token), *args)

        result = await self.workers.run(page)
        status, text = result if isinstance(result, tuple) else (200, result)
        return self._html(text, status)

    async def _checked_form(self, request: web.Request):
        """The form of a POST, its session and secret; 403 unless the form's
        CSRF token is the session's."""
        posted = await request.post()
        # Text fields only: a multipart upload under a field's name is no value.
        form = {k: v for k, v in posted.items() if isinstance(v, str)}
        secret = await self._secret_key()
        session = sessions.decode(secret, request.cookies.get(sessions.COOKIE))
        if not sessions.csrf_ok(secret, session, form.get("csrf_token")):
            raise _Forbidden()
        return form, session, secret

    # -- pages ------------------------------------------------------------

    async def stylesheet(self, request: web.Request) -> web.Response:
        return web.Response(body=self._css, content_type="text/css", charset="utf-8",
                            headers={"Cache-Control": "max-age=3600"})

    async def home(self, request: web.Request):
        return await self._viewer_page(request, self.pages.prompts_page)

    async def prompt(self, request: web.Request):
        q = request.query
        return await self._viewer_page(
            request, self.pages.prompt_page, request.match_info["name"], q.get("activated"), q.get("window"),
            q.get("baseline"),
        )

    async def version(self, request: web.Request):
        variables = None
        if "render" in request.query:
            variables = {k[4:]: v for k, v in request.query.items() if k.startswith("var.")}
        return await self._viewer_page(
            request, self.pages.version_page, request.match_info["name"], request.match_info["version"],
            variables,
        )

    async def diff(self, request: web.Request):
        q = request.query
        return await self._viewer_page(
            request, self.pages.diff_page, request.match_info["name"], q.get("from"), q.get("to"),
            q.get("layout"),
        )

    async def confirm_activation(self, request: web.Request):
        return await self._viewer_page(
            request, self.pages.confirm_page, request.match_info["name"], request.query.get("version")
        )

    async def activate(self, request: web.Request):
        name = request.match_info["name"]
        return await self._change(
            request, self.pages.activate, lambda version: f"/prompts/{name}?activated={version}"
        )

    async def agents(self, request: web.Request):
        return await self._viewer_page(request, self.pages.agents_page)

    async def agent(self, request: web.Request):
        return await self._viewer_page(
            request, self.pages.agent_page, request.match_info["name"], request.query.get("promoted")
        )

    async def confirm_promotion(self, request: web.Request):
        return await self._viewer_page(
            request, self.pages.confirm_promotion_page, request.match_info["name"],
            request.query.get("version"),
        )

    async def promote(self, request: web.Request):
        name = request.match_info["name"]
        # The label went through check_label: only URL-safe characters.
        return await self._change(
            request, self.pages.promote_agent, lambda label: f"/agents/{name}?promoted={label}"
        )

    async def _change(self, request: web.Request, change, then):
        """A state-changing form: its CSRF token checked, then
        `change(viewer, name, form's version)` on a worker, then a redirect
        to `then(what change returned)`."""
        try:
            form, session, secret = await self._checked_form(request)
        except _Forbidden:
            return self._forbidden()
        if not session.signed_in:
            return self._to_sign_in(request)
        name = request.match_info["name"]
        token = sessions.csrf_token(secret, session)

        def run():
            return change(self.pages.viewer(session, token), name, form.get("version"))

        return _redirect(then(await self.workers.run(run)))

    async def sign_in_form(self, request: web.Request):
        secret = await self._secret_key()
        session = sessions.decode(secret, request.cookies.get(sessions.COOKIE))
        if session is not None and session.signed_in:
            return _redirect(self._next(request.query.get("next")))
        if session is None:
            session = sessions.Session.anonymous()
        response = self._html(self.pages.sign_in_page(
            sessions.csrf_token(secret, session), self._next(request.query.get("next"))
        ))
        self._set_session(response, secret, session)
        return response

    async def sign_in(self, request: web.Request):
        try:
            form, session, secret = await self._checked_form(request)
        except _Forbidden:
            return self._forbidden()
        next_path = self._next(form.get("next"))
        try:
            caller = await self.workers.run(self.pages.sign_in, form.get("api_key", "").strip())
        except Unauthenticated:
            page = self.pages.sign_in_page(
                sessions.csrf_token(secret, session), next_path,
                problem="That API key is not valid, or it was revoked.",
            )
            return self._html(page, 401)
        response = _redirect(next_path)
        self._set_session(response, secret, sessions.Session.for_key(caller.key_id, caller.account_id))
        return response

    async def sign_out(self, request: web.Request):
        try:
            await self._checked_form(request)
        except _Forbidden:
            return self._forbidden()
        response = _redirect("/signin")
        response.del_cookie(sessions.COOKIE, path="/")
        return response

    def _forbidden(self) -> web.Response:
        return self._error_page(
            403, "this form is out of date or did not come from this dashboard: reload the page and try again"
        )

    @staticmethod
    def _next(raw: str | None) -> str:
        """Where to go after signing in: a path of this site, else the prompts list."""
        return raw if raw and _LOCAL_PATH.fullmatch(raw) else "/"


class _Forbidden(Exception):
    """A POST whose CSRF token is missing or not its session's."""


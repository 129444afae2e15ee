"""Tornado handlers of the bioimnb server extension.

Authentication and authorization
    Every verb is ``@tornado.web.authenticated`` (a server started with
    ``allow_unauthenticated_access=False`` warns about any handler that is not) and then
    ``@authorized`` as jupyter_server's own handlers are: the resource is ``"bioimnb"``
    (:data:`AUTH_RESOURCE`), the action ``"read"`` (all routes only read).  A server's
    ``ServerApp.authorizer_class`` therefore decides: a user it refuses gets ``403`` on every
    route below, before anything is opened.

Routes (all ``GET``, under ``{base_url}bioimnb/``):

``version``
    ``{"version": "<bioimnb version>"}``.
``api/formats``
    The reader registry: ``{"readers": [{name, formats, priority, pyramids, scenes, remote,
    metadata_write, plugin}], "file_types": [...]}`` (plugins included).
``api/ls?path=REL[&page_size=100][&page=TOKEN][&location=ID]``
    One page of a folder as bioimnb classifies it (:meth:`bioimnb.core.locations.Location.list`,
    paths relative to the root): images as one entry, ``error`` and ``incomplete`` flags.  With
    ``location``, a folder of a configured storage location, relative to it
    (:mod:`bioimnb.server.locations`, which also serves ``api/locations``, ``api/thumbnail``
    and ``api/facts``).
``api/image?path=REL[&scene=0]``
    :meth:`~bioimnb.core.tiles.TileRenderer.info` of the scene, with ``source`` replaced by
    ``REL`` (the server's root is never disclosed) and ``version``: a token of the file's
    modification time and size (see tiles below).
``api/tile?path=REL&level=L&tx=X&ty=Y[&scene=0][&t=0][&z=0][&ch=SPEC][&labels=a,b][&fmt=png][&v=VERSION]``
    One rendered tile (``image/png``, ``image/jpeg``, or ``application/octet-stream`` for
    ``fmt=raw``: RGBA bytes).  ``ch`` is ``index:RRGGBB:min:max,...`` (the visible channels);
    without ``ch`` the image's default view is used; ``ch=`` (empty) shows none.
    Caching: ``Cache-Control: private, max-age=3600`` and an ``ETag`` derived from the resolved
    file, its modification time (ns) and size, and the query (minus ``v``); a matching
    ``If-None-Match`` (or ``*``) gets ``304`` without rendering, but only for a tile that
    exists: scene, level, plane, tile, channels and labels are checked first, so a request that
    would be a 400 stays a 400.  Because a browser does not revalidate within ``max-age``,
    clients should append ``v=<version>`` from ``api/image`` to tile URLs: the URL then changes
    whenever the file does.  ``v`` is otherwise ignored.
``api/values?path=REL&x=X&y=Y[&scene=0][&t=0][&z=0]``
    :meth:`~bioimnb.core.tiles.TileRenderer.values` (level-0 pixel coordinates).
``api/histogram?path=REL&channel=C[&scene=0][&bins=128][&t=0][&z=]``
    :meth:`~bioimnb.core.tiles.TileRenderer.histogram` of the coarsest level.

The image routes (``image``, ``tile``, ``values``, ``histogram``) also take ``location=ID``: the
image is then ``path`` below that configured storage location (an S3 prefix, say), opened with
the location's storage options, which never leave the server.

Confinement
    Paths are relative to the server's ``root_dir`` and confined to it with
    :func:`bioimnb.core.locations.browse` (``..``, absolute paths and symlinks leading outside are
    refused with 403); hidden files (a component starting with ``.``) are refused with 403 unless
    the contents manager's ``allow_hidden`` is set.  Images are opened with
    ``open_image(path, root=<root>)``, so every file a reader opens for them (chunks, array
    folders, companion files, sidecars) must also lie inside the root, whatever links it holds.
    The server itself only ``stat``\\ s paths (never opens them), so a FIFO or device anywhere
    under the root cannot hang a route: the core refuses non-regular files without blocking.

Errors
    Always ``{"error": "<one line>"}`` naming the requested path (never the root), never a
    traceback: 400 for bad parameters and for files that cannot be read (a corrupt or hostile
    file, whatever the reader raised; also a file too large for memory, "not enough memory"),
    403 for refused paths and unauthorized users, 404 for missing files, 503 with
    ``Retry-After`` when an image is too busy (below).  Unexpected exceptions are logged with their
    traceback on the server only.

Concurrency
    Opened images are kept in a small LRU (16, keyed by resolved path and modification time)
    sharing one raw-tile cache of 256 MiB, which, like every cache of the core, also draws from
    the one process memory budget (``limits().memory_budget``, :mod:`bioimnb.core.cache`).  All
    reading, rendering and encoding runs in a pool of 4 daemon threads (a read stuck in the
    kernel never holds up the server's shutdown).  At most 2 requests of one image (resolved
    path) run at once (:data:`PER_IMAGE`); the image's other requests wait their turn without
    holding a thread, so one slow or hostile image can never take the whole pool and other
    images keep being answered.  A request that waits longer than :data:`QUEUE_SECONDS`, or
    arrives when :data:`QUEUE_PER_IMAGE` requests of that image already wait, gets ``503`` with
    ``Retry-After``.  (Two slow images at once can still occupy the 4 threads; work per request
    is bounded by the core's limits: chunks per request, decode size, read timeout.)
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado.escape import json_encode

import bioimnb
from bioimnb.core.errors import (
    AccessDenied,
    BioimnbError,
    PathEscapesRoot,
    SourceNotFound,
)
from bioimnb.core.images import open_image
from bioimnb.core.locations import browse
from bioimnb.core.locations.order import SORT_KEYS, sorted_listing
from bioimnb.core.tiles import ChannelView, TileCache, TileRenderer, parse_channel_spec

#: Every route lives under ``{base_url}bioimnb/``.
NAMESPACE = "bioimnb"

#: The resource an authorizer is asked about (``Authorizer.is_authorized(handler, user,
#: action, AUTH_RESOURCE)``); every route's action is :data:`AUTH_ACTION`.
AUTH_RESOURCE = "bioimnb"
AUTH_ACTION = "read"

#: Key of the shared :class:`ImageService` in the tornado application settings.
SERVICE_KEY = "bioimnb_image_service"
#: Key of the configured storage locations (:mod:`bioimnb.server.locations`) in the settings.
LOCATIONS_KEY = "bioimnb_locations"

MAX_OPEN_IMAGES = 16
TILE_CACHE_BYTES = 256 * 2**20
RENDER_THREADS = 4
#: Requests of one image (resolved path) running at once; the rest wait without a thread.
PER_IMAGE = 2
#: Requests of one image allowed to wait; more get 503.
QUEUE_PER_IMAGE = 64
#: How long a request may wait for its image before it gets 503.
QUEUE_SECONDS = 30.0
#: ``Retry-After`` of a 503, in seconds.
RETRY_AFTER = 5
TILE_SIZE = 256
#: How long an image of a configured (non-root) location stays opened before it is opened again.
REMOTE_SECONDS = 60.0
TILE_CACHE_CONTROL = "private, max-age=3600"
_ZARR_METADATA = ("zarr.json", ".zattrs", ".zgroup", ".zarray")

T = TypeVar("T")


class BadRequest(Exception):
    """A missing or malformed query parameter (400)."""


class Busy(Exception):
    """Too many requests of one image are running or waiting (503, ``Retry-After``)."""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class _BioimnbHandler(APIHandler):
    """Base of every bioimnb handler: the auth resource, and errors as ``{"error": line}``."""

    auth_resource = AUTH_RESOURCE

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors raised outside the handlers' own handling (a refused authorization, a bug):
        one JSON line, never a traceback."""
        self.clear_header("Cache-Control")
        self.clear_header("Etag")
        self.set_header("Content-Type", "application/json")
        exc = (kwargs.get("exc_info") or (None, None, None))[1]
        if isinstance(exc, tornado.web.HTTPError) and exc.log_message:
            try:
                message = exc.log_message % exc.args
            except (TypeError, ValueError):
                message = exc.log_message
        elif status_code >= 500:
            message = "internal error; see the server log"
        else:
            message = self._reason
        self.finish({"error": _one_line(message)})


class VersionHandler(_BioimnbHandler):
    """``GET {base_url}bioimnb/version`` -> ``{"version": "<bioimnb version>"}``."""

    @tornado.web.authenticated
    @authorized(AUTH_ACTION, resource=AUTH_RESOURCE)
    def get(self) -> None:
        self.finish({"version": bioimnb.__version__})


class FormatsHandler(_BioimnbHandler):
    """``GET {base_url}bioimnb/api/formats`` -> the reader registry: ``{"readers": [...],
    "file_types": [...]}`` (what this server opens, plugins included)."""

    @tornado.web.authenticated
    @authorized(AUTH_ACTION, resource=AUTH_RESOURCE)
    def get(self) -> None:
        from bioimnb.core import registry

        self.finish(
            {
                "readers": [r.to_dict() for r in registry.readers()],
                "file_types": registry.lab_file_types(),
            }
        )


# ---------------------------------------------------------------------------------------------
# Opened images, shared by all requests of one server
# ---------------------------------------------------------------------------------------------


def file_version(fs_path: str) -> str:
    """A token that changes when the file (or a zarr's top-level metadata) changes.

    Only ``stat``: nothing is opened, so a FIFO or device cannot block here."""
    st = os.stat(fs_path)
    stamps = [(st.st_mtime_ns, st.st_size)]
    if os.path.isdir(fs_path):
        for name in _ZARR_METADATA:
            try:
                meta = os.stat(os.path.join(fs_path, name))
            except OSError:
                continue
            stamps.append((meta.st_mtime_ns, meta.st_size))
    mtime = max(s[0] for s in stamps)
    size = sum(s[1] for s in stamps)
    return f"{mtime:x}-{size:x}"


class DaemonPool:
    """A fixed pool of daemon threads running blocking work for the event loop.

    Unlike :class:`concurrent.futures.ThreadPoolExecutor`, whose threads the interpreter joins
    at exit, a thread stuck in a read (a dead network mount, say) cannot keep the server from
    shutting down."""

    def __init__(self, threads: int, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(threads)
        ]
        self._closed = False
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, func = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = func()
            except BaseException as exc:  # handed to the waiting request
                future.set_exception(exc)
            else:
                future.set_result(result)

    def submit(self, func: Callable[[], T]) -> Future[T]:
        if self._closed:
            raise RuntimeError("the bioimnb thread pool is shut down")
        future: Future[T] = Future()
        self._jobs.put((future, func))
        return future

    def shutdown(self) -> None:
        """Stop taking work; idle threads end, busy ones end after their current job."""
        self._closed = True
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job[0].cancel()
        for _ in self._threads:
            self._jobs.put(None)


class _Gate:
    """Admission of one image's requests: :data:`PER_IMAGE` at a time, a bounded queue."""

    def __init__(self, slots: int) -> None:
        self.semaphore = asyncio.Semaphore(slots)
        self.users = 0  # running + waiting


class ImageService:
    """What the handlers share: an LRU of :class:`TileRenderer` per (resolved path, version),
    one raw-tile cache bounding them all, the thread pool blocking work runs in, and the
    per-image admission gates."""

    def __init__(
        self,
        root_dir: str,
        *,
        capacity: int = MAX_OPEN_IMAGES,
        cache_bytes: int = TILE_CACHE_BYTES,
        threads: int = RENDER_THREADS,
        per_image: int = PER_IMAGE,
        queue_per_image: int = QUEUE_PER_IMAGE,
        queue_seconds: float = QUEUE_SECONDS,
        allow_hidden: bool = False,
    ) -> None:
        self.root_dir = os.path.abspath(os.path.expanduser(root_dir))
        self.root_real = os.path.realpath(self.root_dir)
        self.capacity = capacity
        self.allow_hidden = allow_hidden
        self.tiles = TileCache(cache_bytes)
        self.pool = DaemonPool(threads, "bioimnb-tiles")
        self.per_image = per_image
        self.queue_per_image = queue_per_image
        self.queue_seconds = queue_seconds
        self._gates: dict[str, _Gate] = {}
        self._renderers: OrderedDict[tuple[str, str], TileRenderer] = OrderedDict()
        self._opening: dict[tuple[str, str], threading.Lock] = {}
        self._lock = threading.Lock()

    async def run(self, func: Callable[[], T]) -> T:
        """Run blocking ``func()`` in the pool, keeping the event loop free."""
        return await asyncio.wrap_future(self.pool.submit(func))

    async def run_for(self, key: str, func: Callable[[], T]) -> T:
        """Like :meth:`run`, but at most :attr:`per_image` calls for ``key`` at once; the others
        wait here (not in the pool), or raise :class:`Busy`."""
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = _Gate(self.per_image)
        if gate.users >= self.per_image + self.queue_per_image:
            raise Busy(f"too many requests for this image ({gate.users} running or waiting)")
        gate.users += 1
        try:
            try:
                await asyncio.wait_for(gate.semaphore.acquire(), self.queue_seconds)
            except TimeoutError:
                raise Busy(f"this image is busy (waited {self.queue_seconds:g} s)") from None
            try:
                return await self.run(func)
            finally:
                gate.semaphore.release()
        finally:
            gate.users -= 1
            if gate.users == 0 and self._gates.get(key) is gate:
                del self._gates[key]

    def resolve(self, rel: str) -> str:
        """The real path of ``rel`` under the root, or :class:`PathEscapesRoot`."""
        if not rel:
            raise BadRequest("missing parameter 'path' (a path relative to the server root)")
        fs_path = browse(".", root=self.root_dir).resolve(rel)
        if not self.allow_hidden:
            # Hidden as requested or as resolved (a visible symlink to a hidden file).
            parts = rel.replace(os.sep, "/").split("/")
            parts += os.path.relpath(fs_path, self.root_real).split(os.sep)
            if any(p.startswith(".") and p not in (".", "..") for p in parts):
                raise PathEscapesRoot(rel, "hidden files are not served")
        return fs_path

    def renderer(self, rel: str, fs_path: str | None = None) -> tuple[TileRenderer, str, str]:
        """``(renderer, version, resolved path)`` for ``rel``, opening the image if needed."""
        if fs_path is None:
            fs_path = self.resolve(rel)
        try:
            version = file_version(fs_path)
        except FileNotFoundError:
            raise SourceNotFound(rel, "no such file or directory") from None
        except PermissionError:
            raise AccessDenied(rel, "permission denied") from None
        key = (fs_path, version)
        with self._lock:
            found = self._renderers.get(key)
            if found is not None:
                self._renderers.move_to_end(key)
                return found, version, fs_path
            opening = self._opening.setdefault(key, threading.Lock())
        with opening:  # one opening per file, however many requests arrive at once
            with self._lock:
                found = self._renderers.get(key)
            if found is not None:
                return found, version, fs_path
            try:
                # root: every file the reader opens (chunks, companions) stays inside the root.
                image = open_image(fs_path, root=self.root_real)
                renderer = TileRenderer(image, TILE_SIZE, cache=self.tiles)
            finally:
                with self._lock:
                    self._opening.pop(key, None)
            with self._lock:
                for old in [k for k in self._renderers if k[0] == fs_path]:
                    del self._renderers[old]  # an older version of the same file
                self._renderers[key] = renderer
                while len(self._renderers) > self.capacity:
                    self._renderers.popitem(last=False)
            return renderer, version, fs_path

    def remote_renderer(
        self, key: str, source: str, storage_options: dict[str, Any]
    ) -> tuple[TileRenderer, str]:
        """``(renderer, version)`` of an image of a configured location (``key``: location id
        and path).  Object stores give no cheap change stamp for a whole image, so an opened
        image is reused for :data:`REMOTE_SECONDS` and then opened again (the version names
        the opening, so tile URLs and ETags change with it)."""
        now = time.monotonic()
        with self._lock:
            for (k, version), renderer in list(self._renderers.items()):
                if k == key:
                    opened = float(version.split("-", 1)[1])
                    if now - opened < REMOTE_SECONDS:
                        self._renderers.move_to_end((k, version))
                        return renderer, version
                    del self._renderers[(k, version)]
            opening = self._opening.setdefault((key, "remote"), threading.Lock())
        with opening:
            with self._lock:
                for (k, version), renderer in self._renderers.items():
                    if k == key:
                        return renderer, version
            try:
                image = open_image(source, **storage_options)
                renderer = TileRenderer(image, TILE_SIZE, cache=self.tiles)
            finally:
                with self._lock:
                    self._opening.pop((key, "remote"), None)
            version = f"r-{now:.3f}"
            with self._lock:
                self._renderers[(key, version)] = renderer
                while len(self._renderers) > self.capacity:
                    self._renderers.popitem(last=False)
            return renderer, version

    def scrub(self, message: str, rel: str, fs_path: str | None = None) -> str:
        """``message`` with the resolved path and the root replaced (never disclosed)."""
        if fs_path:
            message = message.replace(fs_path, rel)
        for root in {self.root_real, self.root_dir}:
            message = message.replace(root.rstrip(os.sep) + os.sep, "").replace(root, ".")
        return message

    def close(self) -> None:
        self.pool.shutdown()
        with self._lock:
            self._renderers.clear()
        self.tiles.clear()


# ---------------------------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------------------------


class _ImageHandler(_BioimnbHandler):
    """Base of the image handlers: parameters, the shared service, admission, JSON errors.

    A subclass's ``get`` calls :meth:`handle`, which parses the query with :meth:`parse` (any
    failure: 400), resolves the path (refusals: 403/404), runs :meth:`work` in the pool under the
    image's gate, and hands its result to :meth:`respond`.  Every exception becomes a one-line
    JSON error (see :meth:`fail_with`)."""

    @property
    def service(self) -> ImageService:
        service: ImageService = self.settings[SERVICE_KEY]
        return service

    @property
    def rel(self) -> str:
        return self.get_query_argument("path", "") or ""

    def int_arg(self, name: str, default: int | None = None, *, minimum: int = 0) -> int:
        text = self.get_query_argument(name, None)
        if text is None or text == "":
            if default is None:
                raise BadRequest(f"missing parameter {name!r}")
            return default
        try:
            value = int(text)
        except ValueError:
            raise BadRequest(f"parameter {name!r} must be an integer, not {text!r}") from None
        if value < minimum:
            raise BadRequest(f"parameter {name!r} must be at least {minimum}, not {value}")
        return value

    def fail(self, status: int, message: str) -> None:
        self.clear_header("Cache-Control")
        self.clear_header("Etag")
        self.set_status(status)
        self.finish({"error": _one_line(message)})

    # -- what subclasses define ----------------------------------------------------------------

    def parse(self) -> Any:
        """The route's parameters (raise :class:`BadRequest` or ``ValueError`` for a 400)."""
        return None

    def work(self, renderer: TileRenderer, version: str, fs_path: str, params: Any) -> Any:
        raise NotImplementedError

    def encode(self, result: Any) -> Any:
        """Runs in the pool after :meth:`work`: JSON routes serialise there (a large answer never
        blocks the event loop, and a value that cannot be serialised is a 400, not a 500)."""
        return json_encode(result).encode()

    def respond(self, result: Any) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(result)

    # -- the request ---------------------------------------------------------------------------

    async def handle(self) -> None:
        rel = self.rel
        ident = self.get_query_argument("location", "root") or "root"
        if ident != "root":
            await self.handle_location(ident, rel)
            return
        try:
            params = self.parse()
            fs_path = self.service.resolve(rel)  # only realpath/stat: cheap, never blocks on a FIFO

            def job() -> Any:
                renderer, version, path = self._open(fs_path)
                return self.encode(self.work(renderer, version, path, params))

            result = await self.service.run_for(fs_path, job)
        except Exception as exc:
            self.fail_with(exc, rel)
            return
        self.respond(result)

    async def handle_location(self, ident: str, rel: str) -> None:
        """The image ``rel`` of a configured storage location (:mod:`bioimnb.server.locations`):
        opened with the location's storage options (held here), confined to the location."""
        try:
            configured = {loc.id: loc for loc in self.settings.get(LOCATIONS_KEY, [])}
            if ident not in configured:
                raise SourceNotFound(ident, "no such location")
            where = configured[ident]
            if not rel.strip("/"):
                raise BadRequest("missing parameter 'path' (a path relative to the location)")
            refuse_hidden(rel, self.service.allow_hidden)
            params = self.parse()
            key = f"{ident}:{rel}"
            service = self.service

            def job() -> Any:
                source = where.location(rel).source()  # confined: no .., nothing outside
                renderer, version = service.remote_renderer(key, source, where.storage_options)
                return self.encode(self.work(renderer, version, key, params))

            result = await service.run_for(key, job)
        except Exception as exc:
            self.fail_with(exc, rel or ".")
            return
        self.respond(result)

    def fail_with(self, exc: BaseException, rel: str) -> None:
        """The one-line JSON error for ``exc`` (status chosen by its kind)."""
        scrub = self.service.scrub
        if isinstance(exc, BadRequest):
            self.fail(400, str(exc))
        elif isinstance(exc, Busy):
            self.set_header("Retry-After", str(RETRY_AFTER))
            self.fail(503, f"{rel}: {exc}; retry later")
        elif isinstance(exc, BioimnbError):
            if isinstance(exc, (PathEscapesRoot, AccessDenied)):
                status = 403
            elif isinstance(exc, SourceNotFound):
                status = 404
            else:
                status = 400
            # Name the requested path, whatever the core called the source.
            self.fail(status, scrub(f"{rel}: {exc.reason}", rel))
        elif isinstance(exc, MemoryError):
            self.log.warning("bioimnb: out of memory reading %r", rel)
            self.fail(
                400,
                f"{rel}: not enough memory to read this image (it declares more data than the server can hold)",
            )
        elif isinstance(exc, ValueError):
            self.fail(400, scrub(f"{rel}: {_first_line(exc)}", rel))
        else:
            # A reader failing in a way nobody foresaw: the file's fault as far as the client
            # is concerned (400), with the traceback in the server log only.
            self.log.error("bioimnb: reading %r failed", rel, exc_info=exc)
            reason = f"cannot be read: {type(exc).__name__}: {_first_line(exc)}"
            self.fail(400, scrub(f"{rel}: {reason}", rel))

    def _open(self, fs_path: str) -> tuple[TileRenderer, str, str]:
        return self.service.renderer(self.rel, fs_path)


def refuse_hidden(rel: str, allow_hidden: bool) -> None:
    """Hidden names (a component starting with ".") are not served unless the server allows them."""
    if not allow_hidden and any(p.startswith(".") and p not in (".", "..") for p in rel.split("/")):
        raise PathEscapesRoot(rel, "hidden files are not served")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


MAX_LISTING_PAGE = 1000


class ListingHandler(_ImageHandler):
    """``GET api/ls?path=REL[&page_size=100][&page=TOKEN]`` -> one page of the folder's listing as
    bioimnb classifies it (``entries``: name, root-relative path, kind, format, size, files,
    incomplete, error; ``next_page``).  ``path=`` empty or ``.`` is the root.

    ``&sort=name|kind|format|size[&descending=1]`` -> the whole folder in that order, in one
    response (``next_page`` null; :func:`~bioimnb.core.locations.order.sorted_listing`: the
    notebook browser's rule, refused beyond 100,000 entries)."""

    @tornado.web.authenticated
    @authorized(AUTH_ACTION, resource=AUTH_RESOURCE)
    async def get(self) -> None:
        await self.handle()

    async def handle(self) -> None:
        rel = self.rel.strip("/")
        try:
            page_size = min(self.int_arg("page_size", 100, minimum=1), MAX_LISTING_PAGE)
            token = self.get_query_argument("page", None) or None
            sort = self.get_query_argument("sort", None) or None
            descending = self.get_query_argument("descending", "0") in ("1", "true", "yes")
            if sort is not None and sort not in SORT_KEYS:
                raise BadRequest(f"cannot sort by {sort!r}; choose one of {', '.join(SORT_KEYS)}")

            def listed(loc: Any) -> bytes:
                if sort is None:
                    return json_encode(loc.list(page_size, token).to_dict()).encode()
                return json_encode(sorted_listing(loc, sort, descending).to_dict()).encode()
            service = self.service
            ident = self.get_query_argument("location", "root") or "root"
            if ident != "root":
                # A configured location (bioimnb.server.locations): paths relative to it.
                configured = {loc.id: loc for loc in self.settings.get(LOCATIONS_KEY, [])}
                if ident not in configured:
                    raise SourceNotFound(ident, "no such location")
                refuse_hidden(rel, service.allow_hidden)
                where = configured[ident]

                def job() -> bytes:
                    return listed(where.location(rel, service.allow_hidden))

            else:
                if rel not in ("", "."):
                    self.service.resolve(rel)  # the same refusals as the image routes (hidden, escapes)

                def job() -> bytes:
                    return listed(browse(rel or ".", root=service.root_dir, show_hidden=service.allow_hidden))

            result = await service.run(job)
        except Exception as exc:
            self.fail_with(exc, rel or ".")
            return
        self.respond(result)


class ImageInfoHandler(_ImageHandler):
    """``GET api/image?path=REL[&scene=i]`` -> :meth:`TileRenderer.info` JSON (+ ``version``)."""

    @tornado.web.authenticated
    @authorized(AUTH_ACTION, resource=AUTH_RESOURCE)
    async def get(self) -> None:
        await self.handle()

    def parse(self) -> int:
        return self.int_arg("scene", 0)

    def work(
        self, renderer: TileRenderer, version: str, fs_path: str, params: int
    ) -> dict[str, Any]:
        info = renderer.info(params)
        info["source"] = self.rel
        info["version"] = version
        return info


class TileHandler(_ImageHandler):
    """``GET api/tile?path=&scene=&level=&t=&z=&tx=&ty=&ch=&labels=&fmt=`` -> image bytes."""

    CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "raw": "application/octet-stream"}

    @tornado.web.authenticated
    @authorized(AUTH_ACTION, resource=AUTH_RESOURCE)
    async def get(self) -> None:
        await self.handle()

    def parse(self) -> dict[str, Any]:
        fmt = (self.get_query_argument("fmt", "png") or "png").lower()
        fmt = "jpeg" if fmt == "jpg" else fmt
        if fmt not in self.CONTENT_TYPES:
            raise BadRequest(f"parameter 'fmt' must be png, jpeg or raw, not {fmt!r}")
        spec = self.get_query_argument("ch", None)
        label_arg = self.get_query_argument("labels", "") or ""
        return {
            "scene": self.int_arg("scene", 0),
            "level": self.int_arg("level"),
            "t": self.int_arg("t", 0),
            "z": self.int_arg("z", 0),
            "tx": self.int_arg("tx"),
            "ty": self.int_arg("ty"),
            "fmt": fmt,
            "channels": None if spec is None else parse_channel_spec(spec),
            "labels": [name for name in label_arg.split(",") if name],
        }

    def work(
        self, renderer: TileRenderer, version: str, fs_path: str, p: dict[str, Any]
    ) -> tuple[str, str, bytes | None]:
        # Everything that makes this tile a 400 is checked before the ETag short-cut.
        self._check_tile(renderer, p)
        etag = self._etag(fs_path, version)
        if self._client_has(etag):
            return p["fmt"], etag, None
        views = (
            p["channels"]
            if p["channels"] is not None
            else renderer.default_view(p["scene"]).channels
        )
        data = renderer.render(
            p["scene"], p["level"], p["t"], p["z"], p["tx"], p["ty"], views, p["labels"], p["fmt"]
        )
        return p["fmt"], etag, data

    def encode(self, result: Any) -> Any:
        return result  # (fmt, etag, encoded tile or None)

    def respond(self, result: tuple[str, str, bytes | None]) -> None:
        fmt, etag, data = result
        self.set_header("Cache-Control", TILE_CACHE_CONTROL)
        self.set_header("Etag", etag)
        if data is None:
            self.set_status(304)
            self.finish()
            return
        self.finish(data, set_content_type=self.CONTENT_TYPES[fmt])

    def _check_tile(self, renderer: TileRenderer, p: dict[str, Any]) -> None:
        """Raise the error rendering would raise for a tile that does not exist (headers only)."""
        rel = self.rel
        img = renderer.scene_image(p["scene"])  # no scene: OutOfRange
        renderer.tile_bounds(p["scene"], p["level"], p["tx"], p["ty"])  # no level / tile
        size_t, size_c, size_z = int(img.shape[0]), int(img.shape[1]), int(img.shape[2])
        if not 0 <= p["t"] < size_t:
            raise BioimnbError(rel, f"no time point {p['t']}; the image has {size_t}")
        if not 0 <= p["z"] < size_z:
            raise BioimnbError(rel, f"no z plane {p['z']}; the image has {size_z}")
        views: list[ChannelView] = p["channels"] or []
        for view in views:
            if not 0 <= view.index < size_c:
                raise BioimnbError(rel, f"no channel {view.index}; the image has {size_c}")
        for name in p["labels"]:
            if name not in img.labels:
                raise BioimnbError(rel, f"no label image {name!r}; labels are {img.labels}")

    def _etag(self, fs_path: str, version: str) -> str:
        query = sorted(
            (k, v.decode("utf-8", "replace"))
            for k, values in self.request.query_arguments.items()
            if k != "v"
            for v in values
        )
        digest = hashlib.sha1(repr((fs_path, version, query)).encode(), usedforsecurity=False)
        return f'"{digest.hexdigest()}"'

    def _client_has(self, etag: str) -> bool:
        sent = self.request.headers.get("If-None-Match", "")
        tags = {tag.strip().removeprefix("W/") for tag in sent.split(",")}
        return etag in tags or "*" in tags


class ValuesHandler(_ImageHandler):
    """``GET api/values?path=&scene=&t=&z=&x=&y=`` -> :meth:`TileRenderer.values` JSON."""

    @tornado.web.authenticated
    @authorized(AUTH_ACTION, resource=AUTH_RESOURCE)
    async def get(self) -> None:
        await self.handle()

    def parse(self) -> tuple[int, int, int, int, int]:
        return (
            self.int_arg("scene", 0),
            self.int_arg("t", 0),
            self.int_arg("z", 0),
            self.int_arg("x", minimum=-(2**62)),
            self.int_arg("y", minimum=-(2**62)),
        )

    def work(
        self, renderer: TileRenderer, version: str, fs_path: str, p: tuple[int, int, int, int, int]
    ) -> dict[str, Any]:
        return renderer.values(*p)


class HistogramHandler(_ImageHandler):
    """``GET api/histogram?path=&scene=&channel=[&bins=][&t=][&z=]`` -> histogram JSON."""

    @tornado.web.authenticated
    @authorized(AUTH_ACTION, resource=AUTH_RESOURCE)
    async def get(self) -> None:
        await self.handle()

    def parse(self) -> dict[str, Any]:
        bins = self.int_arg("bins", 128, minimum=1)
        if bins > 4096:
            raise BadRequest(f"parameter 'bins' must be at most 4096, not {bins}")
        return {
            "scene": self.int_arg("scene", 0),
            "channel": self.int_arg("channel"),
            "bins": bins,
            "t": self.int_arg("t", 0),
            "z": self.int_arg("z") if self.get_query_argument("z", "") else None,
        }

    def work(
        self, renderer: TileRenderer, version: str, fs_path: str, p: dict[str, Any]
    ) -> dict[str, Any]:
        return renderer.histogram(p["scene"], p["channel"], p["bins"], t=p["t"], z=p["z"])


def _root_dir(web_app: Any) -> str:
    settings = web_app.settings
    root = settings.get("server_root_dir")
    if not root:
        manager = settings.get("contents_manager")
        root = getattr(manager, "root_dir", None) or os.getcwd()
    return str(root)


def setup_handlers(web_app: Any) -> None:
    """Add the bioimnb routes to ``web_app``, honouring the server's ``base_url``."""
    base_url = web_app.settings["base_url"]
    manager = web_app.settings.get("contents_manager")
    if SERVICE_KEY not in web_app.settings:
        web_app.settings[SERVICE_KEY] = ImageService(
            _root_dir(web_app), allow_hidden=bool(getattr(manager, "allow_hidden", False))
        )
    api = url_path_join(base_url, NAMESPACE, "api")
    handlers: list[tuple[str, type[APIHandler]]] = [
        (url_path_join(base_url, NAMESPACE, "version"), VersionHandler),
        (url_path_join(api, "formats"), FormatsHandler),
        (url_path_join(api, "ls"), ListingHandler),
        (url_path_join(api, "image"), ImageInfoHandler),
        (url_path_join(api, "tile"), TileHandler),
        (url_path_join(api, "values"), ValuesHandler),
        (url_path_join(api, "histogram"), HistogramHandler),
    ]
    web_app.add_handlers(".*$", handlers)

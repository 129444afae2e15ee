"""Tornado handlers of the bioimnb server extension.

Every verb is ``@tornado.web.authenticated``: a server started with
``allow_unauthenticated_access=False`` warns about any handler that is not.

Routes (all ``GET``, under ``{base_url}bioimnb/``):

``version``
    ``{"version": "<bioimnb version>"}``.
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
    ``If-None-Match`` gets ``304`` without rendering.  Because a browser does not revalidate
    within ``max-age``, clients should append ``v=<version>`` from ``api/image`` to tile URLs:
    the URL then changes whenever the file does.  ``v`` is otherwise ignored.
``api/values?path=REL&x=X&y=Y[&scene=0][&t=0][&z=0]``
    :meth:`~bioimnb.core.tiles.TileRenderer.values` (level-0 pixel coordinates).
``api/histogram?path=REL&channel=C[&scene=0][&bins=128][&t=0][&z=]``
    :meth:`~bioimnb.core.tiles.TileRenderer.histogram` of the coarsest level.

Paths are relative to the server's ``root_dir`` and confined to it with
:func:`bioimnb.core.locations.browse` (``..``, absolute paths and symlinks leading outside are
refused with 403); hidden files (a component starting with ``.``) are refused with 403 unless the
contents manager's ``allow_hidden`` is set.  Errors are ``{"error": "<one line>"}``: 400 for bad
parameters and unreadable files, 403 for refused paths, 404 for missing files; messages name the
requested path, never the root.

Opened images are kept in a small LRU (16, keyed by resolved path and modification time) sharing
one raw-tile cache of 256 MiB; all reading, rendering and encoding runs in a pool of 4 threads.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

import bioimnb
from bioimnb.core.errors import (
    AccessDenied,
    BioimnbError,
    PathEscapesRoot,
    SourceNotFound,
)
from bioimnb.core.images import open_image
from bioimnb.core.locations import browse
from bioimnb.core.tiles import TileCache, TileRenderer, parse_channel_spec

#: Every route lives under ``{base_url}bioimnb/``.
NAMESPACE = "bioimnb"

#: Key of the shared :class:`ImageService` in the tornado application settings.
SERVICE_KEY = "bioimnb_image_service"

MAX_OPEN_IMAGES = 16
TILE_CACHE_BYTES = 256 * 2**20
RENDER_THREADS = 4
TILE_SIZE = 256
TILE_CACHE_CONTROL = "private, max-age=3600"
_ZARR_METADATA = ("zarr.json", ".zattrs", ".zgroup", ".zarray")

T = TypeVar("T")


class BadRequest(Exception):
    """A missing or malformed query parameter (400)."""


class VersionHandler(APIHandler):
    """``GET {base_url}bioimnb/version`` -> ``{"version": "<bioimnb version>"}``."""

    @tornado.web.authenticated
    def get(self) -> None:
        self.finish({"version": bioimnb.__version__})


# ---------------------------------------------------------------------------------------------
# Opened images, shared by all requests of one server
# ---------------------------------------------------------------------------------------------


def file_version(fs_path: str) -> str:
    """A token that changes when the file (or a zarr's top-level metadata) changes."""
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


class ImageService:
    """What the handlers share: an LRU of :class:`TileRenderer` per (resolved path, version),
    one raw-tile cache bounding them all, and the thread pool blocking work runs in."""

    def __init__(
        self,
        root_dir: str,
        *,
        capacity: int = MAX_OPEN_IMAGES,
        cache_bytes: int = TILE_CACHE_BYTES,
        threads: int = RENDER_THREADS,
        allow_hidden: bool = False,
    ) -> None:
        self.root_dir = os.path.abspath(os.path.expanduser(root_dir))
        self.root_real = os.path.realpath(self.root_dir)
        self.capacity = capacity
        self.allow_hidden = allow_hidden
        self.tiles = TileCache(cache_bytes)
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bioimnb-tiles")
        self._renderers: OrderedDict[tuple[str, str], TileRenderer] = OrderedDict()
        self._opening: dict[tuple[str, str], threading.Lock] = {}
        self._lock = threading.Lock()

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """Run blocking ``func(*args)`` in the pool, keeping the event loop free."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, func, *args)

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

    def renderer(self, rel: str) -> tuple[TileRenderer, str, str]:
        """``(renderer, version, resolved path)`` for ``rel``, opening the image if needed."""
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
                renderer = TileRenderer(open_image(fs_path), TILE_SIZE, cache=self.tiles)
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

    def scrub(self, message: str, rel: str, fs_path: str | None = None) -> str:
        """``message`` with the resolved path and the root replaced (never disclosed)."""
        if fs_path:
            message = message.replace(fs_path, rel)
        for root in {self.root_real, self.root_dir}:
            message = message.replace(root.rstrip(os.sep) + os.sep, "").replace(root, ".")
        return message

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            self._renderers.clear()
        self.tiles.clear()


# ---------------------------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------------------------


class _ImageHandler(APIHandler):
    """Base of the image handlers: parameters, the shared service, JSON errors."""

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
        self.finish({"error": " ".join(message.split())})

    async def serve(self, work: Callable[[], Any]) -> Any:
        """Run ``work`` in the pool; on failure, write the JSON error and return ``None``."""
        rel = self.rel
        try:
            return await self.service.run(work)
        except BadRequest as exc:
            self.fail(400, str(exc))
        except BioimnbError as exc:
            if isinstance(exc, (PathEscapesRoot, AccessDenied)):
                status = 403
            elif isinstance(exc, SourceNotFound):
                status = 404
            else:
                status = 400
            # Name the requested path, whatever the core called the source.
            self.fail(status, self.service.scrub(f"{rel}: {exc.reason}", rel))
        except ValueError as exc:
            self.fail(400, self.service.scrub(f"{rel}: {exc}", rel))
        except Exception as exc:
            self.log.exception("bioimnb: reading %r failed", rel)
            self.fail(500, f"{rel}: internal error ({type(exc).__name__}); see the server log")
        return None

    def _open(self) -> tuple[TileRenderer, str, str]:
        """``(renderer, version, path)``; a file that fails to open in an unexpected way is a
        bad file (400), not a server error."""
        rel = self.rel
        try:
            return self.service.renderer(rel)
        except (BioimnbError, BadRequest):
            raise
        except Exception as exc:
            self.log.warning("bioimnb: cannot open %r: %r", rel, exc)
            reason = f"cannot open: {type(exc).__name__}: {exc}"
            raise BioimnbError(rel, self.service.scrub(reason, rel)) from exc


class ImageInfoHandler(_ImageHandler):
    """``GET api/image?path=REL[&scene=i]`` -> :meth:`TileRenderer.info` JSON (+ ``version``)."""

    @tornado.web.authenticated
    async def get(self) -> None:
        scene = self.int_arg("scene", 0)

        def work() -> dict[str, Any]:
            renderer, version, _ = self._open()
            info = renderer.info(scene)
            info["source"] = self.rel
            info["version"] = version
            return info

        info = await self.serve(work)
        if info is not None:
            self.finish(info)


class TileHandler(_ImageHandler):
    """``GET api/tile?path=&scene=&level=&t=&z=&tx=&ty=&ch=&labels=&fmt=`` -> image bytes."""

    CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "raw": "application/octet-stream"}

    @tornado.web.authenticated
    async def get(self) -> None:
        try:
            scene = self.int_arg("scene", 0)
            level = self.int_arg("level")
            t = self.int_arg("t", 0)
            z = self.int_arg("z", 0)
            tx = self.int_arg("tx")
            ty = self.int_arg("ty")
            fmt = (self.get_query_argument("fmt", "png") or "png").lower()
            fmt = "jpeg" if fmt == "jpg" else fmt
            if fmt not in self.CONTENT_TYPES:
                raise BadRequest(f"parameter 'fmt' must be png, jpeg or raw, not {fmt!r}")
            spec = self.get_query_argument("ch", None)
            channels = None if spec is None else parse_channel_spec(spec)
            label_arg = self.get_query_argument("labels", "") or ""
            labels = [name for name in label_arg.split(",") if name]
        except (BadRequest, ValueError) as exc:
            self.fail(400, str(exc))
            return

        def work() -> tuple[str, bytes | None]:
            renderer, version, fs_path = self._open()
            etag = self._etag(fs_path, version)
            if self._client_has(etag):
                return etag, None
            views = channels if channels is not None else renderer.default_view(scene).channels
            data = renderer.render(scene, level, t, z, tx, ty, views, labels, fmt)
            return etag, data

        result = await self.serve(work)
        if result is None:
            return
        etag, data = result
        self.set_header("Cache-Control", TILE_CACHE_CONTROL)
        self.set_header("Etag", etag)
        if data is None:
            self.set_status(304)
            self.finish()
            return
        self.finish(data, set_content_type=self.CONTENT_TYPES[fmt])

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
    async def get(self) -> None:
        try:
            scene = self.int_arg("scene", 0)
            t = self.int_arg("t", 0)
            z = self.int_arg("z", 0)
            x = self.int_arg("x", minimum=-(2**62))
            y = self.int_arg("y", minimum=-(2**62))
        except BadRequest as exc:
            self.fail(400, str(exc))
            return

        def work() -> dict[str, Any]:
            renderer, _, _ = self._open()
            return renderer.values(scene, t, z, x, y)

        values = await self.serve(work)
        if values is not None:
            self.finish(values)


class HistogramHandler(_ImageHandler):
    """``GET api/histogram?path=&scene=&channel=[&bins=][&t=][&z=]`` -> histogram JSON."""

    @tornado.web.authenticated
    async def get(self) -> None:
        try:
            scene = self.int_arg("scene", 0)
            channel = self.int_arg("channel")
            bins = self.int_arg("bins", 128, minimum=1)
            if bins > 4096:
                raise BadRequest(f"parameter 'bins' must be at most 4096, not {bins}")
            t = self.int_arg("t", 0)
            z_text = self.get_query_argument("z", "")
            z = None if not z_text else self.int_arg("z")
        except BadRequest as exc:
            self.fail(400, str(exc))
            return

        def work() -> dict[str, Any]:
            renderer, _, _ = self._open()
            return renderer.histogram(scene, channel, bins, t=t, z=z)

        hist = await self.serve(work)
        if hist is not None:
            self.finish(hist)


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
        (url_path_join(api, "image"), ImageInfoHandler),
        (url_path_join(api, "tile"), TileHandler),
        (url_path_join(api, "values"), ValuesHandler),
        (url_path_join(api, "histogram"), HistogramHandler),
    ]
    web_app.add_handlers(".*$", handlers)

"""Storage locations of the server (the side panel's list) and their listing, thumbnails, facts.

Configuration (any Jupyter config file, e.g. ``jupyter_server_config.py`` of a hub's
single-user servers)::

    c.BioimnbConfig.locations = [
        {"name": "Project bucket", "url": "s3://bucket/prefix/",
         "storage_options": {"endpoint_url": "https://s3.example.org", "key": "...", "secret": "..."},
         "read_only": True},
        {"name": "Shared folder", "url": "/srv/shared/imaging"},
    ]

The server's root (``root_dir``) is always the first location (id ``root``).  Credentials stay
in the server process: ``api/locations`` answers each location's ``id``, ``name``, ``kind``
(``root``, ``local``, ``s3``, ``http``, ...) and ``read_only``, never its URL's user name,
password or query, never its storage options.  Every path is relative to the location and
confined to it (:func:`bioimnb.core.locations.browse` with ``root=``).

Routes (``GET``, authenticated and authorized like every bioimnb route):

``api/locations``
    ``{"locations": [{id, name, kind, read_only}, ...]}``.
``api/ls?location=ID&path=REL[&page_size=][&page=]``
    (in :mod:`.handlers`) a page of a location's folder; without ``location``, the root.
``api/thumbnail?path=REL[&location=ID][&size=128]``
    ``image/png`` of the image's coarsest level (:func:`bioimnb.core.tiles.thumbnail`), cached
    in the server (by the file's modification time and size under the root, for a minute on
    other storage) and by the browser (``Cache-Control: private, max-age=60``).
``api/facts?path=REL[&location=ID]``
    :class:`bioimnb.core.facts.ImageFacts` of the entry from its headers, ``path`` as given.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

import tornado.web
from jupyter_server.auth.decorator import authorized
from tornado.escape import json_encode
from traitlets import Dict, List
from traitlets.config import Configurable

from bioimnb.core.errors import SourceNotFound, display_source
from bioimnb.core.facts import image_facts
from bioimnb.core.locations import Location, browse
from bioimnb.core.tiles.thumbnail import thumbnail

from .handlers import (
    AUTH_ACTION,
    AUTH_RESOURCE,
    LOCATIONS_KEY,
    BadRequest,
    _ImageHandler,
    file_version,
    refuse_hidden,
)

__all__ = [
    "LOCATIONS_KEY",
    "BioimnbConfig",
    "ServerLocation",
    "configured_locations",
    "setup_location_handlers",
]

THUMBS_KEY = "bioimnb_thumbnails"
ROOT_ID = "root"
THUMBNAIL_CACHE = 2048
REMOTE_THUMBNAIL_SECONDS = 60.0
MAX_THUMBNAIL_EDGE = 512


class BioimnbConfig(Configurable):
    """bioimnb's server settings (``c.BioimnbConfig.*`` in a Jupyter config file)."""

    locations = List(
        Dict(),
        default_value=[],
        help="""Storage locations the JupyterLab side panel lists besides the server root:
        [{"name": "Project bucket", "url": "s3://bucket/prefix/", "storage_options": {...},
        "read_only": true}, ...].  Credentials in storage_options stay on the server.""",
    ).tag(config=True)


class ServerLocation:
    """One configured location: what clients see (:meth:`public`) and what stays here."""

    def __init__(self, ident: str, name: str, url: str, storage_options: dict[str, Any], read_only: bool, kind: str) -> None:
        self.id = ident
        self.name = name
        self.url = url
        self.storage_options = dict(storage_options)
        self.read_only = read_only
        self.kind = kind

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "kind": self.kind, "read_only": self.read_only}

    def location(self, rel: str, show_hidden: bool = False) -> Location:
        """``rel`` below this location, confined to it."""
        return browse(rel or ".", root=self.url, show_hidden=show_hidden, **self.storage_options)


def configured_locations(config: Any, root_dir: str, log: Any = None) -> list[ServerLocation]:
    """The root plus every valid configured location (a broken entry is logged and left out)."""
    out = [ServerLocation(ROOT_ID, "Server root", root_dir, {}, True, "root")]
    for i, item in enumerate(getattr(config, "locations", []) or []):
        try:
            url = str(item["url"])
            name = str(item.get("name") or display_source(url))
            options = dict(item.get("storage_options") or {})
            protocol = url.split("://", 1)[0] if "://" in url else "local"
            if protocol == "file":
                protocol = "local"
            out.append(ServerLocation(str(i), name, url, options, bool(item.get("read_only", True)), protocol))
        except (KeyError, TypeError, ValueError) as exc:
            if log is not None:
                log.warning("bioimnb: location %d of BioimnbConfig.locations ignored: %s", i, exc)
    return out


class _Thumbnails:
    def __init__(self) -> None:
        self.items: OrderedDict[tuple[str, ...], tuple[float, bytes]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple[str, ...], max_age: float | None) -> bytes | None:
        with self.lock:
            hit = self.items.get(key)
            if hit is None:
                return None
            if max_age is not None and time.monotonic() - hit[0] > max_age:
                del self.items[key]
                return None
            self.items.move_to_end(key)
            return hit[1]

    def put(self, key: tuple[str, ...], data: bytes) -> None:
        with self.lock:
            self.items[key] = (time.monotonic(), data)
            while len(self.items) > THUMBNAIL_CACHE:
                self.items.popitem(last=False)


class _ClientGone(Exception):
    """The browser closed the request before its work began (a thumbnail scrolled away)."""


class _LocationHandler(_ImageHandler):
    """Base: the ``location`` parameter, resolved to a :class:`ServerLocation` (404 if none).
    Work still queued when the browser closes the request is not done."""

    _gone = False

    def on_connection_close(self) -> None:
        self._gone = True
        super().on_connection_close()

    def _unless_gone(self, work: Any) -> Any:
        def run() -> Any:
            if self._gone:
                raise _ClientGone()
            return work()

        return run

    @property
    def server_location(self) -> ServerLocation:
        ident = self.get_query_argument("location", ROOT_ID) or ROOT_ID
        for loc in self.settings.get(LOCATIONS_KEY, []):
            if loc.id == ident:
                return loc  # type: ignore[no-any-return]
        raise SourceNotFound(ident, "no such location")

    async def handle(self) -> None:
        rel = self.rel.strip("/")
        try:
            loc = self.server_location
            params = self.parse()
            if loc.id == ROOT_ID:
                fs_path = self.service.resolve(rel)  # confinement, hidden files: as the image routes
                result = await self.service.run_for(fs_path, self._unless_gone(lambda: self.work_root(rel, fs_path, params)))
            else:
                if not rel:
                    raise BadRequest("missing parameter 'path' (a path relative to the location)")
                refuse_hidden(rel, self.service.allow_hidden)
                result = await self.service.run(self._unless_gone(lambda: self.work_remote(loc, rel, params)))
        except _ClientGone:
            return
        except Exception as exc:
            self.fail_with(exc, rel or ".")
            return
        if not self._gone:
            self.respond(result)

    def work_root(self, rel: str, fs_path: str, params: Any) -> Any:
        raise NotImplementedError

    def work_remote(self, loc: ServerLocation, rel: str, params: Any) -> Any:
        raise NotImplementedError


class LocationsHandler(_LocationHandler):
    """``GET api/locations`` -> ``{"locations": [{id, name, kind, read_only}]}``."""

    @tornado.web.authenticated
    @authorized(AUTH_ACTION, resource=AUTH_RESOURCE)
    def get(self) -> None:
        self.finish({"locations": [loc.public() for loc in self.settings.get(LOCATIONS_KEY, [])]})


class ThumbnailHandler(_LocationHandler):
    """``GET api/thumbnail?path=REL[&location=ID][&size=128]`` -> PNG."""

    @tornado.web.authenticated
    @authorized(AUTH_ACTION, resource=AUTH_RESOURCE)
    async def get(self) -> None:
        await self.handle()

    def parse(self) -> int:
        size = self.int_arg("size", 128, minimum=16)
        if size > MAX_THUMBNAIL_EDGE:
            raise BadRequest(f"parameter 'size' must be at most {MAX_THUMBNAIL_EDGE}, not {size}")
        return size

    @property
    def cache(self) -> _Thumbnails:
        found = self.settings.get(THUMBS_KEY)
        if found is None:
            found = self.settings[THUMBS_KEY] = _Thumbnails()
        return found  # type: ignore[no-any-return]

    def work_root(self, rel: str, fs_path: str, size: int) -> bytes:
        try:
            version = file_version(fs_path)
        except FileNotFoundError:
            raise SourceNotFound(rel, "no such file or directory") from None
        key = (ROOT_ID, fs_path, version, str(size))
        data = self.cache.get(key, None)
        if data is None:
            data = thumbnail(fs_path, size, root=self.service.root_real)
            self.cache.put(key, data)
        return data

    def work_remote(self, loc: ServerLocation, rel: str, size: int) -> bytes:
        key = (loc.id, rel, str(size))
        data = self.cache.get(key, REMOTE_THUMBNAIL_SECONDS)
        if data is None:
            source = loc.location(rel).source()
            data = thumbnail(source, size, **loc.storage_options)
            self.cache.put(key, data)
        return data

    def respond(self, result: bytes) -> None:
        self.set_header("Cache-Control", "private, max-age=60")
        self.finish(result, set_content_type="image/png")


class FactsHandler(_LocationHandler):
    """``GET api/facts?path=REL[&location=ID]`` -> the entry's ImageFacts (headers only)."""

    @tornado.web.authenticated
    @authorized(AUTH_ACTION, resource=AUTH_RESOURCE)
    async def get(self) -> None:
        await self.handle()

    def work_root(self, rel: str, fs_path: str, params: Any) -> bytes:
        facts = image_facts(fs_path, root=self.service.root_real, shown=rel)
        return self._encode(facts.to_dict(), rel)

    def work_remote(self, loc: ServerLocation, rel: str, params: Any) -> bytes:
        source = loc.location(rel).source()
        facts = image_facts(source, shown=rel, **loc.storage_options)
        return self._encode(facts.to_dict(), rel)

    def _encode(self, data: dict[str, Any], rel: str) -> bytes:
        if data.get("error"):
            data["error"] = self.service.scrub(str(data["error"]), rel)
        return json_encode(data).encode()


def setup_location_handlers(web_app: Any, config: Any = None, log: Any = None) -> None:
    """The configured locations (``config``: a :class:`BioimnbConfig`) and their routes."""
    from jupyter_server.utils import url_path_join

    from .handlers import NAMESPACE, _root_dir

    web_app.settings[LOCATIONS_KEY] = configured_locations(config, _root_dir(web_app), log)
    api = url_path_join(web_app.settings["base_url"], NAMESPACE, "api")
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(api, "locations"), LocationsHandler),
            (url_path_join(api, "thumbnail"), ThumbnailHandler),
            (url_path_join(api, "facts"), FactsHandler),
        ],
    )

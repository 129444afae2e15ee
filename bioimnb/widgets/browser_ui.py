"""The storage browser widget: folders, buckets, prefixes and HTTP OME-Zarr, image-aware.

Layout: :class:`Browser` is an ``ipywidgets.VBox`` holding the listing panel (an anywidget,
``bioimnb/static/browser.js``, built from ``labextension/src/browser``) and a box where actions
put what they open (the viewer, the conversion panel, ...).

How it stays responsive with 100,000 entries
    The kernel lists the folder page by page in a background thread (a small first page, so
    something shows at once, then pages of :data:`PAGE`), keeps the entries, and sorts and
    filters them (:mod:`bioimnb.core.locations.order`).  The browser shows a virtual list and
    asks for the rows it displays (``{"type": "rows", "start", "count"}``); the kernel answers
    with those rows only.  Thumbnails and the dimension/level/channel summary of images are
    asked for per visible row and computed on a few threads (:func:`bioimnb.core.tiles.thumbnail`,
    cached by the entry's change stamp).

Credentials
    Storage options (keys, secrets, endpoints) stay in this Python object: they are never a
    synced trait (so never in saved widget state or notebook outputs), never in a message to the
    browser and never in a repr.  The credentials form sends what is typed to the kernel once
    (a custom message, not state) and the field is cleared.  URLs shown are stripped of user
    names, passwords and query strings (:func:`bioimnb.core.errors.display_source`).
"""

from __future__ import annotations

import builtins
import contextlib
import html
import pathlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import anywidget
import ipywidgets as w
import traitlets
from fsspec.utils import get_protocol

from .._args import failure_line
from ..core.errors import BioimnbError, display_source
from ..core.facts import image_facts
from ..core.images import MultiscaleImage, open_image
from ..core.locations import Entry, Location
from ..core.locations import browse as _core_browse
from ..core.locations.order import SORT_KEYS, filter_entries, sort_entries
from ..core.tiles.thumbnail import thumbnail

__all__ = ["Browser", "Selected"]

_BUNDLE = pathlib.Path(__file__).resolve().parent.parent / "static" / "browser.js"
_MISSING_BUNDLE = """
export default {
  render({ el }) {
    el.textContent = "bioimnb: the browser's JavaScript (bioimnb/static/browser.js) is not built. "
      + "Build it with: cd labextension && jlpm install && jlpm build";
    el.style.color = "#a00";
  }
};
"""

FIRST_PAGE = 200
"""Entries of the first storage page (shown as soon as it arrives)."""
PAGE = 10_000
"""Entries of every further storage page."""
MAX_ENTRIES = 1_000_000
"""Entries kept per folder; a larger folder is listed this far (the widget says so)."""
MAX_ROWS = 500
"""Rows one ``rows`` request may ask for."""
THUMB_THREADS = 4
THUMB_CACHE = 4096
"""Thumbnails (PNG bytes, a few KB each) kept per kernel, by entry and change stamp."""

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_thumbs: OrderedDict[tuple[str, str], tuple[bytes, dict[str, Any]]] = OrderedDict()
_thumbs_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=THUMB_THREADS, thread_name_prefix="bioimnb-browse")
        return _pool


@dataclass(frozen=True)
class Selected:
    """One selected entry: ``url`` plus the ``storage_options`` to open it with.

    ``open_image(s.url, **s.storage_options)`` (or :meth:`open`) opens it.  The repr names the
    option keys only, never their values."""

    url: str
    kind: str
    format: str | None = None
    storage_options: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __repr__(self) -> str:
        keys = ", ".join(sorted(self.storage_options))
        return f"Selected({self.url!r}, kind={self.kind!r}, format={self.format!r}, storage_options=<{keys}>)"

    def open(self, **kwargs: Any) -> MultiscaleImage:
        """The image (``open_image(url, **storage_options)``)."""
        return open_image(self.url, **{**self.storage_options, **kwargs})


def _summary(img: MultiscaleImage) -> dict[str, Any]:
    """What a listing row shows of an image: dims, levels, channels, dtype (no source)."""
    shape = img.shape
    dims = f"{shape[4]} x {shape[3]}"
    extra = [f"{k}{n}" for k, n in (("Z", shape[2]), ("T", shape[0])) if n > 1]
    return {
        "dims": " ".join([dims, *extra]),
        "levels": img.n_levels,
        "channels": int(shape[1]),
        "dtype": str(img.dtype),
        "scenes": len(img.scenes),
    }


def _completeness_score(img: MultiscaleImage, source: str) -> int | None:
    """The image's metadata completeness in percent (the listing's column), from the headers of
    the image already open for its thumbnail; None when it cannot be assessed."""
    from ..core.curation.completeness import assess
    from ..core.facts import ImageFacts, fill_from_image

    try:
        facts = fill_from_image(ImageFacts(source, "image"), img, source)
        return round(100 * float(assess(facts)["score"]))
    except Exception:  # noqa: BLE001 - a column left empty rather than a failed row
        return None


def _completeness_line(facts: Any) -> str:
    """The image's metadata completeness (the curation module's minimum) as one line."""
    from ..core.curation.completeness import assess

    result = assess(facts)
    missing = result["missing"]
    text = f"{100 * result['score']:.0f} %"
    return f"{text} (missing: {', '.join(missing)})" if missing else f"{text} (complete)"


def _row(index: int, e: Entry, summary: dict[str, Any] | None) -> dict[str, Any]:
    row = {
        "i": index,
        "name": e.name,
        "kind": e.kind,
        "format": e.format,
        "size": e.size,
        "files": e.files,
        "incomplete": e.incomplete,
        "error": e.error,
    }
    if summary:
        row.update(summary)
    return row


def _available(name: str) -> bool:
    """Whether the public API offers ``name`` (capabilities land one by one)."""
    import bioimnb

    try:
        return getattr(bioimnb, name) is not None
    except (ImportError, AttributeError):
        return False


ACTIONS: dict[str, tuple[str, str]] = {
    # action -> (public API name it calls, label)
    "preview": ("view", "Preview"),
    "convert": ("ConvertPanel", "Convert"),
    "metadata": ("edit_metadata", "Metadata"),
    "copy": ("transfer", "Copy to..."),
    "dmp": ("dmp", "Add to DMP"),
}
_IMAGE_ONLY = ("preview", "convert", "metadata")


class BrowserPanel(anywidget.AnyWidget):
    """The listing panel (front end: ``bioimnb/static/browser.js``).  Synced state is display
    state only: the shown URL, navigation flags, counts, sort and filter, selection by name, the
    focused image's facts.  No storage option is ever synced."""

    _esm = _BUNDLE if _BUNDLE.is_file() else _MISSING_BUNDLE

    location = traitlets.Unicode("").tag(sync=True)
    crumbs = traitlets.List().tag(sync=True)  # type: ignore[var-annotated]
    can_up = traitlets.Bool(False).tag(sync=True)
    can_back = traitlets.Bool(False).tag(sync=True)
    total = traitlets.Int(0).tag(sync=True)
    loaded = traitlets.Int(0).tag(sync=True)
    complete = traitlets.Bool(False).tag(sync=True)
    truncated = traitlets.Bool(False).tag(sync=True)
    loading = traitlets.Bool(False).tag(sync=True)
    version = traitlets.Int(0).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    sort_by = traitlets.Unicode("name").tag(sync=True)
    descending = traitlets.Bool(False).tag(sync=True)
    filter_text = traitlets.Unicode("").tag(sync=True)
    filter_kind = traitlets.Unicode("").tag(sync=True)
    filter_format = traitlets.Unicode("").tag(sync=True)
    formats = traitlets.List().tag(sync=True)  # type: ignore[var-annotated]
    selection = traitlets.List().tag(sync=True)  # type: ignore[var-annotated]
    focus = traitlets.Unicode("").tag(sync=True)
    facts = traitlets.Dict().tag(sync=True)
    actions = traitlets.List().tag(sync=True)  # type: ignore[var-annotated]
    remote = traitlets.Unicode("").tag(sync=True)
    """The storage family shown (``local``, ``s3``, ``http``, ...): the front end offers the
    credentials form for ``s3``."""
    height = traitlets.Int(360).tag(sync=True)


class Browser(w.VBox):
    """The storage browser: navigate, sort, filter, select, preview and convert.

    ``Browser(location)`` or ``bioimnb.browse(url, **storage_options)`` displayed in a notebook.
    From Python: :meth:`go`, :meth:`up`, :meth:`back`, :meth:`refresh`,
    :meth:`open_entry`, :meth:`select`, :attr:`selected`, :meth:`sort`, :meth:`filter`, :meth:`rows`,
    :meth:`wait`, :meth:`preview`, :meth:`convert`, :meth:`set_credentials`.
    """

    def __init__(self, location: Location | str = ".", **storage_options: Any) -> None:
        if not isinstance(location, Location):
            location = _core_browse(location, **storage_options)
        self.panel = BrowserPanel()
        self.output = w.VBox()
        super().__init__([self.panel, self.output])
        self.add_class("bioimnb-browser-box")
        # Storage options per protocol: the URL field may switch between local, S3 and HTTP.
        self._options: dict[str, dict[str, Any]] = {}
        self._location: Location = location
        self._options[self._protocol(location.url)] = dict(location.storage_options)
        self._history: list[Location] = []
        self._crumbs: list[Location] = []
        self._entries: list[Entry] = []
        self._view: list[Entry] = []
        self._by_name: dict[str, Entry] = {}
        self._summaries: dict[str, dict[str, Any]] = {}
        self._lock = threading.RLock()
        self._thumb_jobs: dict[str, Future[None]] = {}  # thumbnails asked for and not yet sent
        self._generation = 0
        self._loader: threading.Thread | None = None
        self._done = threading.Event()
        self.panel.on_msg(self._on_msg)
        self.panel.observe(self._on_view_change, ["sort_by", "descending", "filter_text", "filter_kind", "filter_format"])
        self.panel.observe(self._on_focus, ["focus"])
        self.panel.observe(self._on_selection, ["selection"])
        self._navigate(location, remember=False)

    # -- the public face ------------------------------------------------------------------

    @property
    def location(self) -> Location:
        """The location shown."""
        return self._location

    @property
    def url(self) -> str:
        return self._location.url

    def list(self, page_size: int = 100, page: str | None = None) -> Any:
        """One page of the location, as :meth:`Location.list` (for code)."""
        return self._location.list(page_size=page_size, page=page)

    def __repr__(self) -> str:
        return f"<bioimnb Browser {self.url!r}: {self.panel.total} entries>"

    @property
    def storage_options(self) -> dict[str, Any]:
        """The storage options of the location shown (a copy; never displayed)."""
        return dict(self._options.get(self._protocol(self.url), {}))

    @property
    def selected(self) -> builtins.list[Selected]:
        """The selected entries (multi-select), as URLs plus their storage options."""
        out = []
        options = self.storage_options
        with self._lock:
            names = [n for n in self.panel.selection if n in self._by_name]
            entries = [self._by_name[n] for n in names]
        for e in entries:
            out.append(Selected(self._location.source(e.name), e.kind, e.format, dict(options)))
        return out

    def go(self, url: str) -> None:
        """Show ``url`` (any supported URL or path; relative paths are below the current
        location).  Errors show in the widget (and :attr:`error`)."""
        text = str(url).strip()
        if not text:
            return
        try:
            if "://" in text or text.startswith(("/", "~")):
                protocol = self._protocol(text)
                location = _core_browse(text, **self._options.setdefault(protocol, {}))
            else:
                location = self._location.child(text)
        except Exception as exc:  # noqa: BLE001 - shown in the widget as one line
            self._fail(exc, text)
            return
        self._navigate(location)

    def open_entry(self, name: str) -> None:
        """Enter folder ``name``, or preview image ``name``."""
        with self._lock:
            entry = self._by_name.get(name)
        if entry is None:
            self._fail(BioimnbError(name, "not in this listing"), name)
            return
        if entry.kind == "folder":
            try:
                self._navigate(self._location.child(name))
            except Exception as exc:  # noqa: BLE001
                self._fail(exc, name)
        elif entry.kind == "image":
            self.select([name])
            self.preview(name)

    def up(self) -> None:
        parent = self._location.parent
        if parent is not None:
            self._navigate(parent)

    def back(self) -> None:
        if self._history:
            self._navigate(self._history.pop(), remember=False)

    def refresh(self) -> None:
        self._navigate(self._location, remember=False)

    def select(self, names: builtins.list[str]) -> None:
        """Select entries by name (the first becomes the one whose facts are shown)."""
        self.panel.selection = list(names)
        self.panel.focus = names[0] if names else ""

    def sort(self, by: str = "name", descending: bool = False) -> None:
        if by not in SORT_KEYS:
            raise ValueError(f"cannot sort by {by!r}; choose one of {', '.join(SORT_KEYS)}")
        with self.panel.hold_trait_notifications():
            self.panel.sort_by = by
            self.panel.descending = bool(descending)

    def filter(self, text: str = "", kind: str = "", format: str = "") -> None:
        with self.panel.hold_trait_notifications():
            self.panel.filter_text = text
            self.panel.filter_kind = kind
            self.panel.filter_format = format

    def rows(self, start: int = 0, count: int = 100) -> builtins.list[dict[str, Any]]:
        """Rows ``start .. start + count`` of the sorted, filtered listing, as the browser gets them."""
        count = max(0, min(int(count), MAX_ROWS))
        start = max(0, int(start))
        with self._lock:
            part = self._view[start : start + count]
            return [_row(start + i, e, self._summaries.get(e.name)) for i, e in enumerate(part)]

    def wait(self, timeout: float | None = 60.0) -> Browser:
        """Block until the whole folder is listed (tests, scripts)."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"{self.url}: still listing after {timeout} s")
        return self

    @property
    def error(self) -> str:
        """The message shown in the widget, if any."""
        return self.panel.error

    def set_credentials(self, *, protocol: str = "s3", **options: Any) -> None:
        """Storage options (``key``, ``secret``, ``endpoint_url``, ``anon``, ...) for a storage
        family; kept in this object only.  The current location is listed again with them."""
        clean = {k: v for k, v in options.items() if v not in (None, "")}
        self._options.setdefault(protocol, {}).update(clean)
        if self._protocol(self.url) == protocol:
            try:
                location = _core_browse(self._location_arg(), **self._options[protocol])
            except Exception as exc:  # noqa: BLE001
                self._fail(exc, self.url)
                return
            self._navigate(location, remember=False)

    def thumbnail(self, name: str) -> tuple[bytes | None, dict[str, Any]]:
        """``(png, summary)`` of image ``name`` (cached), or ``(None, {"error": ...})``."""
        with self._lock:
            entry = self._by_name.get(name)
            location = self._location
        if entry is None or entry.kind != "image":
            return None, {"error": f"{name}: not an image"}
        if entry.error:
            return None, {"error": entry.error}
        source = location.source(name)
        key = (source, entry.stamp or "")
        with _thumbs_lock:
            hit = _thumbs.get(key) if entry.stamp else None
            if hit is not None:
                _thumbs.move_to_end(key)
        if hit is None:
            try:
                with open_image(source, **location.storage_options) as img:
                    summary = _summary(img)
                    summary["completeness"] = _completeness_score(img, source)
                    png = thumbnail(img)
            except Exception as exc:  # noqa: BLE001 - the row shows why
                return None, {"error": _reason(exc, name)}
            hit = (png, summary)
            if entry.stamp:
                with _thumbs_lock:
                    _thumbs[key] = hit
                    while len(_thumbs) > THUMB_CACHE:
                        _thumbs.popitem(last=False)
        with self._lock:
            if self._location is location:
                self._summaries[name] = hit[1]
        return hit

    # -- actions --------------------------------------------------------------------------

    def _focused_source(self, name: str | None) -> tuple[str, str]:
        name = name or self.panel.focus or (self.panel.selection[0] if self.panel.selection else "")
        if not name:
            raise BioimnbError(self.url, "select an image first")
        return name, self._location.source(name)

    def preview(self, name: str | None = None) -> Any:
        """Open the viewer on image ``name`` (default: the focused one) below the listing."""
        import bioimnb

        try:
            name, source = self._focused_source(name)
            viewer = bioimnb.view(source, **self.storage_options)  # type: ignore[misc]
        except Exception as exc:  # noqa: BLE001
            self._fail(exc, name or self.url)
            return None
        self.output.children = (self._title(f"Preview: {name}"), viewer)
        return viewer

    def convert(self, name: str | None = None, dest: str | None = None, **options: Any) -> Any:
        """The conversion form for image ``name``; with ``dest``, the conversion panel, started."""
        import bioimnb

        try:
            name, source = self._focused_source(name)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc, self.url)
            return None
        stem = name.split(".", 1)[0] or name
        if dest is not None:
            panel = bioimnb.ConvertPanel(source, dest, source_options=self.storage_options, **options)  # type: ignore[misc]
            self.output.children = (self._title(f"Convert: {name}"), panel)
            return panel.start()
        default = str(pathlib.Path.cwd() / f"{stem}.ome.zarr")
        target = w.Text(value=default, description="Destination", layout=w.Layout(width="70%"))
        to = w.Dropdown(options=["ome-zarr", "ome-tiff"], value="ome-zarr", description="Format")
        start = w.Button(description="Start conversion", button_style="primary", icon="play")
        start.add_class("bioimnb-convert-start")

        def run(_: Any) -> None:
            dest_text = target.value.strip()
            if to.value == "ome-tiff" and dest_text.endswith(".ome.zarr"):
                dest_text = dest_text[: -len(".ome.zarr")] + ".ome.tif"
            self.convert(name, dest_text, to=to.value)

        start.on_click(run)
        form = w.VBox([self._title(f"Convert: {name}"), target, to, start])
        self.output.children = (form,)
        return form

    def _call_action(self, action: str) -> None:
        """Metadata, Copy to..., Add to DMP: the public API's functions on the selection (what
        they return is shown below the listing)."""
        import bioimnb

        api, label = ACTIONS[action]
        if action == "preview":
            self.preview()
            return
        if action == "convert":
            self.convert()
            return
        func = getattr(bioimnb, api)
        options = self.storage_options
        try:
            if action == "metadata":
                name, source = self._focused_source(None)
                self.output.children = (self._title(f"{label}: {name}"), _shown(func(source, **options)))
                return
            sources = [s.url for s in self.selected]
            if not sources:
                raise BioimnbError(self.url, "select something first")
            if action == "dmp":
                plan = func(sources, storage_options=options)
                self.output.children = (self._title(f"{label}: {len(sources)} selected"), _shown(plan))
                return
            dest = w.Text(description="To folder", placeholder="folder, s3://bucket/prefix/, ...", layout=w.Layout(width="70%"))
            go = w.Button(description=label, button_style="primary")

            def run(_: Any) -> None:
                try:
                    target = dest.value.strip()
                    if not target:
                        raise BioimnbError(self.url, "give a destination")
                    # A list: every selected entry lands inside the destination folder.
                    report = func(list(sources), target, src_options=options)
                except Exception as exc:  # noqa: BLE001 - shown in the widget
                    self._fail(exc, sources[0])
                    return
                self.output.children = (*self.output.children, _shown(report))

            go.on_click(run)
            self.output.children = (self._title(f"{label}: {len(sources)} selected"), dest, go)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc, self.url)

    @staticmethod
    def _title(text: str) -> w.HTML:
        return w.HTML(f"<b>{html.escape(text)}</b>")

    # -- listing --------------------------------------------------------------------------

    @staticmethod
    def _protocol(url: str) -> str:
        protocol = get_protocol(str(url))
        return "http" if protocol == "https" else ("local" if protocol in ("file", "local") else protocol)

    def _location_arg(self) -> str:
        return self._location.source("")

    def _navigate(self, location: Location, *, remember: bool = True) -> None:
        with self._lock:
            if remember and location != self._location:
                self._history.append(self._location)
                del self._history[:-100]
            self._location = location
            self._generation += 1
            generation = self._generation
            self._entries = []
            self._view = []
            self._by_name = {}
            self._summaries = {}
            self._done.clear()
        crumbs: list[Location] = []
        node: Location | None = location
        while node is not None and len(crumbs) < 64:
            crumbs.append(node)
            node = node.parent
        self._crumbs = crumbs[::-1]
        protocol = self._protocol(location.url)
        with self.panel.hold_sync():
            self.panel.location = location.url
            self.panel.crumbs = [{"label": c.name or c.url, "index": i} for i, c in enumerate(self._crumbs)]
            self.panel.can_up = location.parent is not None
            self.panel.can_back = bool(self._history)
            self.panel.remote = protocol
            self.panel.error = ""
            self.panel.total = 0
            self.panel.loaded = 0
            self.panel.complete = False
            self.panel.truncated = False
            self.panel.loading = True
            self.panel.selection = []
            self.panel.focus = ""
            self.panel.facts = {}
            self.panel.actions = []
            self.panel.formats = []
            self.panel.version += 1
        self._loader = threading.Thread(
            target=self._load, args=(location, generation), name="bioimnb-browse-list", daemon=True
        )
        self._loader.start()

    def _load(self, location: Location, generation: int) -> None:
        token: str | None = None
        size = FIRST_PAGE
        try:
            while True:
                page = location.list(page_size=size, page=token)
                for e in page.entries:
                    e.found = None  # the classification is not needed any more: memory
                with self._lock:
                    if generation != self._generation:
                        return
                    self._entries.extend(page.entries)
                    for e in page.entries:
                        self._by_name[e.name] = e
                    truncated = len(self._entries) >= MAX_ENTRIES
                    token = None if truncated else page.next_page
                    self._recompute()
                    formats = sorted({e.format for e in self._entries if e.format})
                    with self.panel.hold_sync():
                        self.panel.loaded = len(self._entries)
                        self.panel.formats = formats
                        self.panel.truncated = truncated
                        if token is None:
                            self.panel.complete = True
                            self.panel.loading = False
                if token is None:
                    return
                size = PAGE
        except Exception as exc:  # noqa: BLE001 - shown in the widget
            with self._lock:
                if generation != self._generation:
                    return
            self._fail(exc, location.url)
            with self.panel.hold_sync():
                self.panel.loading = False
        finally:
            with self._lock:
                if generation == self._generation:
                    self._done.set()

    def _recompute(self) -> None:
        """The sorted, filtered view of the entries loaded (call with the lock held)."""
        p = self.panel
        kinds = [p.filter_kind] if p.filter_kind else []
        formats = [p.filter_format] if p.filter_format else []
        shown = filter_entries(self._entries, p.filter_text, kinds=kinds, formats=formats)
        self._view = sort_entries(shown, p.sort_by if p.sort_by in SORT_KEYS else "name", p.descending)
        with p.hold_sync():
            p.total = len(self._view)
            p.version += 1

    def _on_view_change(self, change: Any) -> None:
        with self._lock:
            self._recompute()

    def _on_selection(self, change: Any) -> None:
        names = list(change["new"] or [])
        if names and self.panel.focus not in names:
            self.panel.focus = names[0]
        self._update_actions()

    def _update_actions(self) -> None:
        with self._lock:
            focus = self._by_name.get(self.panel.focus)
            any_selected = bool(self.panel.selection)
        actions = []
        for action, (api, label) in ACTIONS.items():
            if action in _IMAGE_ONLY and (focus is None or focus.kind != "image"):
                continue
            if action not in _IMAGE_ONLY and not any_selected:
                continue
            if _available(api):
                actions.append({"name": action, "label": label})
        self.panel.actions = actions

    def _on_focus(self, change: Any) -> None:
        name = change["new"]
        self._update_actions()
        with self._lock:
            entry = self._by_name.get(name)
            location = self._location
        if entry is None:
            self.panel.facts = {}
            return
        base = {"name": entry.name, "kind": entry.kind, "format": entry.format, "size": entry.size,
                "files": entry.files, "incomplete": entry.incomplete, "error": entry.error}
        self.panel.facts = {**base, "loading": entry.kind == "image" and not entry.error}
        if entry.kind != "image" or entry.error:
            return

        def work() -> None:
            found = image_facts(location.source(name), **location.storage_options)
            facts = found.to_dict()
            facts["completeness"] = _completeness_line(found)
            facts["path"] = display_source(facts["path"])
            facts["name"] = name
            facts["loading"] = False
            if self.panel.focus == name and self._location is location:
                self.panel.facts = facts

        _executor().submit(_guard(work))

    # -- messages from the browser ---------------------------------------------------------

    def _fail(self, exc: BaseException, source: str) -> None:
        self.panel.error = _reason(exc, source, whole=True)

    def _on_msg(self, widget: Any, content: Any, buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        try:
            if kind == "rows":
                start = int(content.get("start", 0))
                rows = self.rows(start, int(content.get("count", 100)))
                self.panel.send({"type": "rows", "id": content.get("id"), "start": start,
                                 "version": self.panel.version, "total": self.panel.total, "rows": rows})
            elif kind == "thumb":
                name = str(content.get("name", ""))

                def work() -> None:
                    try:
                        png, summary = self.thumbnail(name)
                        self.panel.send({"type": "thumb", "name": name, "summary": summary},
                                        [png] if png else [])
                    finally:
                        with self._lock:
                            if self._thumb_jobs.get(name) is job:
                                del self._thumb_jobs[name]

                with self._lock:
                    job = _executor().submit(_guard(work))
                    self._thumb_jobs[name] = job
            elif kind == "thumb-cancel":
                # The row scrolled out of view: a thumbnail not started yet is never made.
                with self._lock:
                    queued = self._thumb_jobs.pop(str(content.get("name", "")), None)
                if queued is not None:
                    queued.cancel()
            elif kind == "open":
                self.open_entry(str(content.get("name", "")))
            elif kind == "go":
                self.go(str(content.get("url", "")))
            elif kind == "up":
                self.up()
            elif kind == "back":
                self.back()
            elif kind == "refresh":
                self.refresh()
            elif kind == "crumb":
                index = int(content.get("index", -1))
                if 0 <= index < len(self._crumbs):
                    self._navigate(self._crumbs[index])
            elif kind == "action":
                action = str(content.get("name", ""))
                if action in ACTIONS:
                    self._call_action(action)
            elif kind == "credentials":
                fields = {k: content.get(k) for k in ("key", "secret", "endpoint_url")}
                self.set_credentials(protocol="s3", **fields)
        except Exception as exc:  # noqa: BLE001 - never a traceback into the kernel's log
            self._fail(exc, self.url)


def _shown(value: Any) -> w.Widget:
    """``value`` as a widget: itself if it is one, else its rich display in an output area."""
    if isinstance(value, w.Widget):
        return value
    out = w.Output()
    with out:
        from IPython.display import display

        display(value)
    return out


def _reason(exc: BaseException, source: str, whole: bool = False) -> str:
    line = failure_line(exc, source)
    if not whole and isinstance(exc, BioimnbError):
        return exc.reason
    return line


def _guard(func: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        with contextlib.suppress(Exception):
            func()

    return run

"""``bioimnb.view(...)``: the multiresolution viewer as a notebook widget.

The browser side is the same TypeScript viewer as JupyterLab's document viewer (bundled into
``bioimnb/static/viewer.js``); it asks this widget for tiles with custom comm messages and gets
pixels back as binary buffers.  For multichannel images it asks for the raw single-channel tiles
(``fmt: "channels"``, :meth:`bioimnb.core.tiles.TileRenderer.raw_tile`), keeps them and
composites contrast, colours and visibility itself, so changing those (from the panel or with
:meth:`Viewer.set_channel`) costs no message at all; RGB images and views with label overlays
get composited RGBA tiles (``fmt: "raw"``).  Requests are answered in a thread pool, so the
kernel answers other messages while pixels are read.

Synced state holds no storage URL and no credential: ``info["source"]`` is the display name
(the file or folder name) and everything else is geometry, channel names and contrast.

Notebooks that travel: a displayed viewer's output also holds a still picture of its view
(``image/png``, at most 512 px, rendered in the kernel by :mod:`bioimnb.core.tiles.snapshot`)
and a one-line caption (``text/plain``), which readers without a kernel (nbviewer, git hosts,
nbconvert HTML) show instead of the widget.  Until a browser draws the viewer (a headless run),
cells that change the view update that picture, so the saved notebook shows the last view.
"""

from __future__ import annotations

import contextlib
import copy
import os
import pathlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anywidget
import numpy as np
import traitlets

from ..core.errors import BioimnbError, display_source
from ..core.images import MultiscaleImage, open_image
from ..core.tiles import ChannelView, TileRenderer, ViewState, channel_dtype
from ..core.tiles.snapshot import SCREEN_WIDTH, SNAPSHOT_EDGE, Snapshot, snapshot
from ._snapshot import Republisher, with_static

__all__ = ["Viewer", "view"]

_BUNDLE = pathlib.Path(__file__).resolve().parent.parent / "static" / "viewer.js"

_MISSING_BUNDLE = """
export default {
  render({ el }) {
    el.textContent = "bioimnb: the viewer's JavaScript (bioimnb/static/viewer.js) is not built. "
      + "Build it with: cd labextension && jlpm install && jlpm build";
    el.style.color = "#a00";
  }
};
"""

#: Render threads shared by every viewer of the kernel (tile reads are I/O + numpy, which
#: release the GIL, so a few threads help even on two cores).
RENDER_THREADS = 4
#: Raw-tile cache of one viewer (the browser keeps its own cache of raw and composited tiles).
CACHE_BYTES = 128 * 2**20
_VIEW_KEYS = ("scene", "t", "z", "center_x", "center_y", "zoom", "channels", "labels", "label_opacity")

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=RENDER_THREADS, thread_name_prefix="bioimnb-viewer"
            )
        return _pool


def _display_name(source: str) -> str:
    """What a person may see of a source: its last path component, nothing else."""
    shown = display_source(source).rstrip("/")
    return shown.rsplit("/", 1)[-1] or shown


class Viewer(anywidget.AnyWidget):
    """An interactive multiresolution view of one image.

    ``view`` is the synced view state (see :class:`bioimnb.core.tiles.ViewState`): read it to
    know where the viewer looks, assign a (partial) dict to move it, e.g.
    ``v.view = {"center_x": 1000, "center_y": 800, "zoom": 2}`` or ``{"t": 3, "z": 10}``;
    missing keys keep their value (channels are merged by index) and ``zoom: None`` fits the
    image.  A new ``scene`` opens at that scene's default view (plane, fit, auto contrast), as
    with the viewer's scene picker; only the keys given with a value other than the current
    one are laid over it, so ``v.view = {**v.view, "scene": 1}`` does not carry the old
    scene's contrast over.  It is saved with the notebook's widget state.
    """

    _esm = _BUNDLE if _BUNDLE.is_file() else _MISSING_BUNDLE

    view = traitlets.Dict().tag(sync=True)
    info = traitlets.Dict().tag(sync=True)
    height = traitlets.Int(520).tag(sync=True)

    def __init__(
        self,
        image: MultiscaleImage,
        *,
        view: dict[str, Any] | ViewState | None = None,
        height: int = 520,
        tile_size: int = 256,
        own_image: bool = False,
        **kwargs: Any,
    ) -> None:
        self._image = image
        self._own_image = own_image
        self._renderer = _renderer_for(image, tile_size)
        self._name = _display_name(image.source)
        self._infos: dict[int, dict[str, Any]] = {}
        self._infos_lock = threading.Lock()
        self._cancelled: OrderedDict[str, None] = OrderedDict()
        self._from_browser = False
        self._cancel_lock = threading.Lock()
        self._republisher = Republisher(self._static_bundle)
        if isinstance(view, ViewState):
            view = view.to_dict()
        given = dict(view or {})
        info = self._scene_info(int(given.get("scene", image.scene_index)))
        initial = _merge_view(info["default_view"], given)
        super().__init__(info=info, view=initial, height=height, **kwargs)
        self.on_msg(self._on_msg)

    # -- Python API --------------------------------------------------------------------------

    @property
    def image(self) -> MultiscaleImage:
        return self._image

    @property
    def renderer(self) -> TileRenderer:
        return self._renderer

    @property
    def view_state(self) -> ViewState:
        """``view`` as a :class:`ViewState` (missing keys take their defaults)."""
        return ViewState.from_dict(dict(self.view))

    def go_to(self, x: float, y: float, zoom: float | None = None) -> None:
        """Centre the view on level-0 pixel (x, y), optionally at ``zoom`` screen px per pixel."""
        change: dict[str, Any] = {"center_x": float(x), "center_y": float(y)}
        if zoom is not None:
            change["zoom"] = float(zoom)
        elif self.view.get("zoom") is None:
            change["zoom"] = 1.0
        self.view = {**self.view, **change}

    def fit(self) -> None:
        """Fit the whole image into the viewer."""
        self.view = {**self.view, "center_x": None, "center_y": None, "zoom": None}

    def set_channel(self, index: int, **changes: Any) -> None:
        """Change one channel's ``visible``, ``color`` (RRGGBB), ``min`` or ``max``."""
        channels = [dict(c) for c in self.view.get("channels", [])]
        for c in channels:
            if c.get("index") == index:
                c.update(changes)
                break
        else:
            channels.append({"index": index, **changes})
        self.view = {**self.view, "channels": channels}

    # -- in-memory images and label overlays ----------------------------------------------------

    def add_labels(self, name: str, array: Any, *, show: bool = True) -> None:
        """Overlay ``array`` (integer ids: a segmentation) as label image ``name``, shown at
        once unless ``show=False``.  A label of that name is replaced (re-run a segmentation,
        call this again: the viewer repaints where it is).  Each id gets its own colour, 0 is
        transparent; the pixel readout shows the id under the cursor."""
        from ..core.readers.memory import attach_label

        attach_label(self._image, str(name), array)
        labels = [n for n in self.view.get("labels", []) if n != name]
        if show:
            labels.append(str(name))
        self._refresh({"labels": labels})

    def remove_labels(self, name: str) -> None:
        """Remove label overlay ``name``."""
        from ..core.readers.memory import detach_label

        detach_label(self._image, str(name))
        self._refresh({"labels": [n for n in self.view.get("labels", []) if n != name]})

    def update(self, obj: Any, **kwargs: Any) -> None:
        """Show ``obj`` (an array, DataArray, image object, path or opened image; ``kwargs`` as
        for :func:`view`: ``axes``, ``physical_size``, ``labels``, ...) in place of the current
        image, keeping the view (position, zoom, plane, channel settings) and the label
        overlays that still fit its shape."""
        from ..core.readers.memory import attach_label

        labels = kwargs.pop("labels", None) or {}
        scene = self.view.get("scene") if isinstance(obj, (str, os.PathLike)) else None
        image, own = _open(obj, scene, kwargs)
        old, old_own = self._image, self._own_image
        kept: dict[str, Any] = {}
        for name in old.labels:
            if name not in labels:
                with contextlib.suppress(BioimnbError):
                    kept[name] = old.label(name).levels[0][:, 0]  # (T, Z, Y, X), lazy
        try:
            for name, array in labels.items():
                attach_label(image, str(name), array)  # given labels must fit: errors are raised
            for name, array in kept.items():
                with contextlib.suppress(BioimnbError):  # old ones that no longer fit are dropped
                    attach_label(image, name, array)
        except BaseException:
            if own:
                image.close()
            raise
        self._image, self._own_image = image, own
        self._name = _display_name(image.source)
        shown = [*self.view.get("labels", []), *(str(n) for n in labels)]
        self._refresh({"labels": list(dict.fromkeys(shown))})
        if old_own and old is not image:
            old.close()

    def _refresh(self, change: dict[str, Any]) -> None:
        """Start again from the image as it is now (new renderer: no stale tile, label or
        contrast cache), keep the view, and tell the browser to drop its tiles."""
        self._renderer = _renderer_for(self._image, self._renderer.tile_size)
        with self._infos_lock:
            self._infos.clear()
        scene = int(self.view.get("scene", self._image.scene_index))
        info = self._scene_info(scene)
        names = set(info.get("labels") or [])
        view = {**self.view, **change}
        view["labels"] = [n for n in view.get("labels", []) if n in names]
        n_channels = len(info.get("channels") or [])
        view["channels"] = [c for c in view.get("channels", []) if int(c.get("index", 0)) < n_channels] or info["default_view"]["channels"]
        self.info = info
        self.view = view
        self._republisher.changed()  # the image or its labels changed even if the view did not
        self.send({"type": "refresh", "view": dict(self.view)})

    def close(self) -> None:
        super().close()
        self._republisher.close()
        if self._own_image:
            self._image.close()

    def __repr__(self) -> str:
        try:
            shape = self.info["levels"][0]["shape"]
            return (
                f"<bioimnb Viewer {self._name!r}: {shape[1]}x{shape[0]} px, "
                f"{len(self.info['channels'])} channel(s), {len(self.info['levels'])} level(s)>"
            )
        except Exception:  # noqa: BLE001 - repr must never raise
            return f"<bioimnb Viewer {self._name!r}>"

    # -- the still picture (notebooks that travel) -------------------------------------------

    def snapshot(self, max_edge: int = SNAPSHOT_EDGE) -> Snapshot:
        """A still picture of the current view (at most ``max_edge`` px a side) on a screen of
        the viewer's ``height`` and :data:`~bioimnb.core.tiles.snapshot.SCREEN_WIDTH` px; see
        :func:`bioimnb.core.tiles.snapshot.snapshot`."""
        view = dict(self.view)
        opacity = view.get("label_opacity")
        return snapshot(
            self._renderer,
            view,
            width=SCREEN_WIDTH,
            height=self.height,
            max_edge=max_edge,
            label_opacity=0.5 if opacity is None else float(opacity),
        )

    def _caption(self, shot: Snapshot | None, reason: str = "") -> str:
        info = self.info
        scene = int(self.view.get("scene", 0))
        if shot is None:
            return f"bioimnb viewer: {self._name}, scene {scene} (no still picture: {reason})"
        parts = [f"bioimnb viewer: {self._name}", f"scene {shot.scene}"]
        if int(info.get("size_t", 1)) > 1:
            parts.append(f"t {shot.t}")
        if int(info.get("size_z", 1)) > 1:
            parts.append(f"z {shot.z}")
        parts.append(f"level {shot.level}")
        if not shot.whole:
            x0, y0, x1, y1 = shot.region
            parts.append(f"x {x0:.0f}-{x1:.0f}, y {y0:.0f}-{y1:.0f}")
        if shot.labels:
            parts.append("labels " + " ".join(shot.labels))
        parts.append(f"{shot.width} x {shot.height} px")
        return ", ".join(parts)

    def _static_bundle(self, bundle: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """The widget's mime bundle with the still picture and its caption."""
        if bundle is None:
            bundle = super()._repr_mimebundle_()
        try:
            shot = self.snapshot()
            png = shot.png()
        except Exception as exc:  # noqa: BLE001 - a missing picture must not hide the widget
            return with_static(bundle, caption=self._caption(None, self._describe(exc)))
        return with_static(
            bundle, caption=self._caption(shot), png=png, size=(shot.width, shot.height)
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:  # closed
            return None
        return self._static_bundle(bundle)

    def _ipython_display_(self) -> None:
        # Displayed with a display id, so a headless run can update the picture after cells
        # that change the view (see bioimnb.widgets._snapshot.Republisher).
        if self._view_name is None:  # closed: nothing to show
            return
        self._republisher.display()

    # -- state ---------------------------------------------------------------------------------

    @traitlets.validate("view")
    def _validate_view(self, proposal: dict[str, Any]) -> dict[str, Any]:
        value = proposal["value"]
        if not isinstance(value, dict):
            raise traitlets.TraitError("view must be a dict (see bioimnb.core.tiles.ViewState)")
        unknown = set(value) - set(_VIEW_KEYS)
        if unknown:
            raise traitlets.TraitError(
                f"unknown view keys {sorted(unknown)}; known: {list(_VIEW_KEYS)}"
            )
        try:
            opacity = value.get("label_opacity")
            if opacity is not None and not (isinstance(opacity, (int, float)) and 0 <= opacity <= 1):
                raise ValueError(f"label_opacity must be a number from 0 to 1, not {opacity!r}")
            ViewState.from_dict(value)  # types and colours are checked here
            current = self.view
            if current:  # not the initial value (a whole view already)
                value = self._whole_view(current, value)
                ViewState.from_dict(value)
        except (TypeError, ValueError, KeyError) as exc:
            raise traitlets.TraitError(f"invalid view: {exc}") from None
        return value

    def set_state(self, sync_data: dict[str, Any]) -> None:
        # The browser's view is the one it shows, even just after a scene change.
        self._from_browser = True
        self._republisher.seen()
        try:
            super().set_state(sync_data)
        finally:
            self._from_browser = False

    def _whole_view(self, current: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
        """``given`` (a partial view) as a whole view: laid over the current view, or on a
        scene change made in Python, its keys with a new value laid over the new scene's
        default view."""
        scene = given.get("scene")
        if scene is None or scene == current.get("scene") or self._from_browser:
            return _merge_view(current, given)
        try:
            default = copy.deepcopy(self._scene_info(int(scene))["default_view"])
        except BioimnbError:  # no such scene: the browser shows that scene's error
            return _merge_view(current, given)
        changed = {k: v for k, v in given.items() if k not in current or current[k] != v}
        return _merge_view(default, changed)

    @traitlets.observe("view")
    def _view_changed(self, change: dict[str, Any]) -> None:
        if not self._from_browser:
            self._republisher.changed()
        scene = change["new"].get("scene")
        if scene is not None and scene != self.info.get("scene"):
            with contextlib.suppress(BioimnbError):  # the browser shows that scene's error
                self.info = self._scene_info(int(scene))

    def _scene_info(self, scene: int) -> dict[str, Any]:
        with self._infos_lock:
            found = self._infos.get(scene)
        if found is None:
            found = self._renderer.info(scene)
            found["source"] = self._name
            if isinstance(self._renderer, _LazyRenderer):
                found["lazy"] = True  # the browser fetches no coarse stand-in tiles
            with self._infos_lock:
                self._infos[scene] = found
        return found

    # -- messages from the browser -------------------------------------------------------------

    def _on_msg(self, _widget: Any, content: dict[str, Any], _buffers: list[bytes]) -> None:
        self._republisher.seen()  # a browser draws this viewer
        kind = content.get("type")
        if kind == "cancel":
            with self._cancel_lock:
                for mid in content.get("ids", []):
                    self._cancelled[str(mid)] = None
                while len(self._cancelled) > 4096:
                    self._cancelled.popitem(last=False)
            return
        handler = self._handlers().get(str(kind))
        mid = content.get("id")
        if handler is None or mid is None:
            return
        _executor().submit(self._run, handler, str(mid), content)

    def _handlers(
        self,
    ) -> dict[str, Callable[[dict[str, Any]], tuple[dict[str, Any], list[bytes]]]]:
        return {
            "tile": self._tile,
            "info": self._info_reply,
            "values": self._values,
            "histogram": self._histogram,
        }

    def _run(
        self,
        handler: Callable[[dict[str, Any]], tuple[dict[str, Any], list[bytes]]],
        mid: str,
        content: dict[str, Any],
    ) -> None:
        with self._cancel_lock:
            if mid in self._cancelled:
                del self._cancelled[mid]
                return
        try:
            reply, buffers = handler(content)
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the browser
            self.send({"type": "error", "id": mid, "message": self._describe(exc)})
            return
        self.send({**reply, "id": mid}, buffers=buffers or None)

    def _tile(self, c: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
        """One tile, as the request's ``fmt`` says:

        * ``"channels"`` (what the viewer asks for, except for RGB images and label overlays):
          the raw pixels of the channels listed in ``channels`` (indices), one buffer per
          channel, row-major, little-endian; the reply says ``{"mime": "channels", "dtype":
          "uint8" | "uint16" | "float32", "w", "h", "channels": [indices]}``;
        * ``"raw"``: the composited tile (``channels`` are view dicts), RGBA bytes;
        * ``"png"`` (the default): the composited tile as PNG.
        """
        scene, level = int(c.get("scene", 0)), int(c["level"])
        t, z, tx, ty = int(c.get("t", 0)), int(c.get("z", 0)), int(c["tx"]), int(c["ty"])
        fmt = str(c.get("fmt", "png"))
        if fmt == "channels":
            indices = [int(v["index"] if isinstance(v, dict) else v) for v in c["channels"]]
            planes = self._renderer.raw_tile(scene, level, t, z, tx, ty, indices)
            h, w = planes[0].shape if planes else (0, 0)
            dtype = channel_dtype(self._renderer.scene_image(scene).dtype)
            reply = {
                "type": "tile",
                "mime": "channels",
                "dtype": dtype.name,
                "w": int(w),
                "h": int(h),
                "channels": indices,
            }
            return reply, [p.tobytes() for p in planes]
        channels = [ChannelView.from_dict(v) for v in c.get("channels") or []]
        labels = [str(name) for name in c.get("labels") or []]
        args = (scene, level, t, z, tx, ty, channels, labels)
        if fmt == "raw":
            opacity = float(c.get("label_opacity", 0.5))
            if not 0.0 <= opacity <= 1.0:
                raise ValueError(f"label_opacity must be between 0 and 1, not {opacity}")
            rgba = self._renderer.render_rgba(*args, label_opacity=opacity)
            reply = {
                "type": "tile",
                "mime": "raw",
                "w": int(rgba.shape[1]),
                "h": int(rgba.shape[0]),
            }
            return reply, [rgba.tobytes()]
        return {"type": "tile", "mime": "image/png"}, [self._renderer.render(*args, "png")]

    def _info_reply(self, c: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
        return {"type": "info", "info": self._scene_info(int(c.get("scene", 0)))}, []

    def _values(self, c: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
        result = self._renderer.values(
            int(c.get("scene", 0)), int(c.get("t", 0)), int(c.get("z", 0)), int(c["x"]), int(c["y"])
        )
        return {"type": "values", "result": result}, []

    def _histogram(self, c: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
        result = self._renderer.histogram(int(c.get("scene", 0)), int(c["channel"]))
        return {"type": "histogram", "result": result}, []

    def _describe(self, exc: BaseException) -> str:
        """A one-line reason naming the image by its display name only."""
        if isinstance(exc, BioimnbError):
            return f"{self._name}: {exc.reason}"
        text = f"{type(exc).__name__}: {exc}"
        source = self._image.source
        for secret in {source, display_source(source)}:
            if secret:
                text = text.replace(secret, self._name)
        return f"{self._name}: {' '.join(text.split())}"


#: Edge of the level-0 centre square a lazy array's contrast is sampled from (about what the
#: first, 1:1 view shows).
LAZY_SAMPLE_EDGE = 1024


class _LazyRenderer(TileRenderer):
    """The renderer of a large lazy (dask) array: contrast and histograms sample the centre of
    level 0 (what the first view shows) instead of the coarsest level, which for a computed
    array means computing every chunk."""

    def _coarsest_sample(self, scene: int, t: int, z: int | None, channels: Any) -> np.ndarray:
        img = self.scene_image(scene)
        zz = int(img.shape[2]) // 2 if z is None else z
        h, w = int(img.shape[3]), int(img.shape[4])
        edge = LAZY_SAMPLE_EDGE
        ya, xa = max(0, (h - edge) // 2), max(0, (w - edge) // 2)
        ys, xs = slice(ya, min(h, ya + edge)), slice(xa, min(w, xa + edge))
        rows = [img.read(0, t=t, c=int(c), z=zz, y=ys, x=xs).reshape(-1) for c in channels]
        return np.stack(rows)


def _renderer_for(image: MultiscaleImage, tile_size: int) -> TileRenderer:
    cls = _LazyRenderer if _lazy_view(image) is not None else TileRenderer
    return cls(image, tile_size=tile_size, cache_bytes=CACHE_BYTES)


def _merge_view(default: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """``given`` (a partial view) laid over ``default``; channels are merged by index."""
    merged = {**default, **{k: v for k, v in given.items() if k != "channels"}}
    if given.get("channels"):
        by_index = {int(c["index"]): dict(c) for c in default.get("channels", [])}
        for c in given["channels"]:
            by_index.setdefault(int(c["index"]), {}).update(c)
        merged["channels"] = [by_index[i] for i in sorted(by_index)]
    return merged


def _open(source: Any, scene: int | str | None, options: dict[str, Any]) -> tuple[MultiscaleImage, bool]:
    """(image, whether the viewer owns it) for anything :func:`open_image` takes."""
    if isinstance(source, MultiscaleImage):
        return (source if scene is None else source.select_scene(scene)), False
    memory_keys = ("axes", "physical_size", "channel_names", "name")
    if not isinstance(source, (str, os.PathLike)):
        given = {k: options.pop(k) for k in memory_keys if k in options}
        if options:
            raise TypeError(f"unexpected arguments for an in-memory image: {sorted(options)}")
        return open_image(source, scene, **given), True
    return open_image(source, scene=scene, **options), True


def _lazy_view(image: MultiscaleImage) -> dict[str, Any] | None:
    """The first view of a large lazy (dask) array: 1:1 at its centre, so the first paint
    computes the few chunks on screen, not every chunk under a fitted overview (the user zooms
    out when they want that).  None for anything else (they open fitted)."""
    from ..core.readers.memory import is_lazy, level0_chunks

    if not is_lazy(image) or level0_chunks(image) <= LAZY_FIT_CHUNKS:
        return None
    h, w = int(image.shape[3]), int(image.shape[4])
    return {"center_x": w / 2, "center_y": h / 2, "zoom": 1.0}


#: A lazy (dask) array of more chunks than this opens at 1:1 (see :func:`_lazy_view`).
LAZY_FIT_CHUNKS = 64


def view(
    source: Any,
    *,
    scene: int | str | None = None,
    view: dict[str, Any] | ViewState | None = None,
    height: int = 520,
    labels: dict[str, Any] | None = None,
    **options: Any,
) -> Viewer:
    """Show an image in an interactive multiresolution viewer (a notebook widget).

    ``source`` is anything :func:`bioimnb.open_image` opens: a path, an fsspec URL with
    storage options, an opened :class:`MultiscaleImage`, or an image in memory (a numpy, dask
    or zarr array, an xarray DataArray, a bioio ``BioImage``; ``axes``, ``physical_size``,
    ``channel_names`` and ``name`` describe it where it does not).  Only the tiles on screen
    are read, or for a dask array computed.  ``labels`` (``{"nuclei": mask}``) are overlaid
    (see :meth:`Viewer.add_labels`).  ``view`` restores a saved view state (e.g. an earlier
    ``v.view``).

    >>> v = bioimnb.view("cells.ome.tif")
    >>> v = bioimnb.view(stack, axes="CZYX", labels={"nuclei": mask})
    >>> v.view = {**v.view, "zoom": 1.0}    # 1 screen pixel per image pixel
    """
    image, own = _open(source, scene, options)
    try:
        for name, array in (labels or {}).items():
            from ..core.readers.memory import attach_label

            attach_label(image, str(name), array)
        given = view.to_dict() if isinstance(view, ViewState) else dict(view or {})
        if labels:
            given.setdefault("labels", [str(n) for n in labels])
        if "zoom" not in given:
            given.update(_lazy_view(image) or {})
        return Viewer(image, view=given, height=height, own_image=own)
    except BaseException:
        if own:
            image.close()
        raise

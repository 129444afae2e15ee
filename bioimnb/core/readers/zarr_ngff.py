"""OME-Zarr (NGFF 0.4 on zarr v2, 0.5 on zarr v3) read with zarr-python directly.

Covers single images (multiscales + omero + labels), HCS plates (each field of each well is a
scene) and the bioformats2raw layout (each series is a scene, ``OME/METADATA.ome.xml`` is the
OME model).  Why not bioio-ome-zarr: it does not expose plates and labels as bioimnb needs them,
and going through zarr arrays directly gives chunk-exact region reads for previews.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cached_property
from typing import Any

import zarr
from zarr.storage import FsspecStore, LocalStore

from ..axes import AxisMap
from ..errors import CorruptFile, UnsupportedFormat
from ..ome import color_hex, parse_ome_xml, synthesize_ome
from ..storage import Resolved, storage_errors
from .base import (
    Backend,
    Channel,
    Level,
    PhysicalSize,
    SceneData,
    check_declared_size,
    default_colors,
    virtual_pyramid,
)

_UNIT_UM = {
    "micrometer": 1.0,
    "micron": 1.0,
    "nanometer": 1e-3,
    "millimeter": 1e3,
    "centimeter": 1e4,
    "meter": 1e6,
    "angstrom": 1e-4,
    "picometer": 1e-6,
    "kilometer": 1e9,
}


def open_store(res: Resolved) -> Any:
    if res.local:
        return LocalStore(res.path, read_only=True)
    protocol = res.url.split("://", 1)[0]
    if getattr(res.fs, "async_impl", False):
        return FsspecStore.from_url(res.url, storage_options=res.options, read_only=True)
    from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper

    wrapped = AsyncFileSystemWrapper(res.fs)
    return FsspecStore(wrapped, read_only=True, path=res.path if protocol else res.path)


def ome_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """NGFF 0.5 nests its metadata under ``"ome"``; 0.4 keeps it at the top level."""
    inner = attrs.get("ome")
    return inner if isinstance(inner, dict) else attrs


def _axis_letters(axes: list[Any], source: str) -> tuple[str, list[str | None]]:
    letters = []
    units: list[str | None] = []
    for ax in axes:
        if isinstance(ax, str):
            name, kind, unit = ax, None, None
        else:
            name, kind, unit = str(ax.get("name", "")), ax.get("type"), ax.get("unit")
        lname = name.lower()
        if lname in ("t", "c", "z", "y", "x"):
            letters.append(lname.upper())
        elif kind == "time":
            letters.append("T")
        elif kind == "channel":
            letters.append("C")
        else:
            letters.append("Q")
        units.append(unit)
    return "".join(letters), units


def _scale(transforms: list[dict[str, Any]] | None, ndim: int) -> list[float]:
    scale = [1.0] * ndim
    for tr in transforms or []:
        if tr.get("type") == "scale" and isinstance(tr.get("scale"), list) and len(tr["scale"]) == ndim:
            scale = [a * float(b) for a, b in zip(scale, tr["scale"], strict=True)]
    return scale


class ZarrBackend(Backend):
    format_name = "OME-Zarr"
    reader_name = "zarr"

    def __init__(self, res: Resolved) -> None:
        super().__init__(res.url)
        self.res = res
        with storage_errors(res.url):
            self.store = open_store(res)
            try:
                self.root: Any = zarr.open(store=self.store, mode="r")
            except (FileNotFoundError, KeyError) as exc:
                raise UnsupportedFormat(res.url, "not a zarr hierarchy (no zarr.json or .zgroup/.zarray)") from exc
            except (ValueError, json.JSONDecodeError, TypeError) as exc:
                raise CorruptFile(res.url, f"unreadable zarr metadata ({exc})") from exc
        if isinstance(self.root, zarr.Array):
            self.kind = "array"
            self.attrs: dict[str, Any] = {}
        else:
            self.attrs = ome_attrs(self.root.attrs.asdict())
            if "multiscales" in self.attrs:
                self.kind = "image"
            elif "plate" in self.attrs:
                self.kind = "plate"
                self.format_name = "OME-Zarr plate"
            elif "bioformats2raw.layout" in self.attrs:
                self.kind = "bioformats2raw"
            else:
                raise UnsupportedFormat(
                    res.url, "zarr group without OME-Zarr metadata (no multiscales, plate or bioformats2raw.layout)"
                )
        self.ngff_version = self._version()

    def _version(self) -> str | None:
        version = self.attrs.get("version")
        if version is None and self.kind == "image":
            ms = self.attrs["multiscales"]
            if ms and isinstance(ms[0], dict):
                version = ms[0].get("version")
        if version is None and self.kind == "plate":
            version = self.attrs["plate"].get("version")
        if version is None and isinstance(self.root, zarr.Group):
            version = "0.5" if self.root.metadata.zarr_format == 3 else None
        return str(version) if version is not None else None

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ngff_version": self.ngff_version}
        if isinstance(self.root, zarr.Group):
            raw = self.root.attrs.asdict()
            state = raw.get("bioimnb")
            if isinstance(state, dict) and state.get("status") not in (None, "complete"):
                out["incomplete"] = True
            if isinstance(state, dict) and isinstance(state.get("provenance"), dict):
                out["provenance"] = state["provenance"]
        return out

    # -- scenes ------------------------------------------------------------------------
    @cached_property
    def _scene_paths(self) -> list[tuple[str, str]]:
        """(scene name, group path) pairs."""
        if self.kind in ("image", "array"):
            return [(self._image_name(self.attrs) or self.res.name, "")]
        if self.kind == "plate":
            out = []
            for well in self.attrs["plate"].get("wells", []):
                wpath = str(well["path"])
                with storage_errors(self.res.url):
                    wgroup = self.root[wpath]
                images = ome_attrs(wgroup.attrs.asdict()).get("well", {}).get("images", [])
                for img in images:
                    out.append((f"{wpath}/{img['path']}", f"{wpath}/{img['path']}"))
            return out
        # bioformats2raw layout
        series: list[str] | None = None
        with storage_errors(self.res.url):
            if "OME" in self.root:
                series = ome_attrs(self.root["OME"].attrs.asdict()).get("series")
            if series is None:
                series = []
                i = 0
                while str(i) in self.root:
                    series.append(str(i))
                    i += 1
        names = self._b2r_names()
        return [(names[i] if i < len(names) and names[i] else f"Image:{i}", str(p)) for i, p in enumerate(series)]

    def _image_name(self, attrs: dict[str, Any]) -> str | None:
        ms = attrs.get("multiscales") or [{}]
        name = ms[0].get("name") if isinstance(ms[0], dict) else None
        return str(name) if name and name != "/" else None

    @cached_property
    def _ome_xml(self) -> str | None:
        if self.kind != "bioformats2raw":
            return None
        with storage_errors(self.res.url):
            try:
                raw = self.store_get("OME/METADATA.ome.xml")
            except FileNotFoundError:
                return None
        return raw.decode("utf-8", errors="replace") if raw else None

    def store_get(self, key: str) -> bytes | None:
        from zarr.core.buffer import default_buffer_prototype
        from zarr.core.sync import sync

        buf = sync(self.store.get(key, prototype=default_buffer_prototype()))
        return None if buf is None else buf.to_bytes()

    def _b2r_names(self) -> list[str]:
        xml = self._ome_xml
        if not xml:
            return []
        try:
            ome = parse_ome_xml(xml, self.res.url + "/OME/METADATA.ome.xml")
        except CorruptFile:
            return []
        return [img.name or "" for img in ome.images]

    def ome_xml(self) -> str | None:
        return self._ome_xml

    @property
    def scene_names(self) -> list[str]:
        return [name for name, _ in self._scene_paths]

    def plate_layout(self) -> dict[str, Any] | None:
        """For an HCS plate: name, row and column names, and per scene its (row, column, field)."""
        if self.kind != "plate":
            return None
        plate = self.attrs["plate"]
        rows = [str(r["name"]) for r in plate.get("rows", [])]
        cols = [str(c["name"]) for c in plate.get("columns", [])]
        fields: list[tuple[str, str, str]] = []
        for _, path in self._scene_paths:
            row, col, field = path.split("/")[-3:]
            fields.append((row, col, field))
        return {"name": plate.get("name") or self.res.name, "rows": rows, "columns": cols, "fields": fields}

    def _load_scene(self, index: int) -> SceneData:
        name, path = self._scene_paths[index]
        with storage_errors(self.res.url):
            node = self.root[path] if path else self.root
        scene = self._image(node, name, self.res.url + (f"/{path}" if path else ""))
        if self.kind == "bioformats2raw" and self._ome_xml:
            xml = self._ome_xml

            def from_xml() -> Any:
                ome = parse_ome_xml(xml, self.res.url + "/OME/METADATA.ome.xml")
                return ome

            scene.ome = from_xml
        return scene

    def _image(self, node: Any, name: str, where: str) -> SceneData:
        if isinstance(node, zarr.Array):
            letters = {2: "YX", 3: "ZYX", 4: "CZYX", 5: "TCZYX"}.get(node.ndim)
            if letters is None:
                raise UnsupportedFormat(where, f"cannot interpret a {node.ndim}-D zarr array as an image")
            check_declared_size(where, node.shape, node.dtype)
            level = Level(node, AxisMap(letters, where), chunks=_chunks(node), name="zarr")
            levels = [level, *virtual_pyramid(level)]
            channels = [Channel(f"C{i}", c) for i, c in enumerate(default_colors(level.shape[1]))]
            return self._finish(name, levels, PhysicalSize(), channels, {}, len(levels) > 1)
        attrs = ome_attrs(node.attrs.asdict())
        multiscales = attrs.get("multiscales")
        if not multiscales:
            raise UnsupportedFormat(where, "group has no multiscales metadata")
        ms = multiscales[0]
        axes = ms.get("axes") or ["t", "c", "z", "y", "x"][-len(ms["datasets"][0].get("shape", [0] * 5)) :]
        letters, units = _axis_letters(axes, where)
        axis_map = AxisMap(letters, where)
        levels = []
        scales = []
        for ds in ms.get("datasets", []):
            with storage_errors(where):
                try:
                    arr = node[ds["path"]]
                except KeyError as exc:
                    raise CorruptFile(where, f"multiscales lists dataset {ds['path']!r} which is missing") from exc
            if arr.ndim != len(letters):
                raise CorruptFile(where, f"dataset {ds['path']!r} has {arr.ndim} dimensions, axes say {len(letters)}")
            check_declared_size(where, arr.shape, arr.dtype)
            levels.append(Level(arr, axis_map, chunks=_chunks(arr), name="zarr"))
            scales.append(_scale(ds.get("coordinateTransformations"), arr.ndim))
        if not levels:
            raise CorruptFile(where, "multiscales lists no datasets")
        glob = _scale(ms.get("coordinateTransformations"), len(letters))
        scale0 = [a * b for a, b in zip(scales[0], glob, strict=True)]

        def size(axis: str) -> float | None:
            if axis not in letters:
                return None
            i = letters.index(axis)
            unit = units[i]
            if not unit:
                # No unit: a scale of exactly 1 is the writer's default, not a measurement;
                # anything else is taken as micrometres, the OME default unit.
                return None if scale0[i] == 1.0 else PhysicalSize.clean(scale0[i])
            factor = _UNIT_UM.get(str(unit).lower())
            return None if factor is None else PhysicalSize.clean(scale0[i] * factor)

        physical = PhysicalSize(size("X"), size("Y"), size("Z"))
        nc = levels[0].shape[1]
        colors = default_colors(nc)
        names = [f"C{i}" for i in range(nc)]
        omero = attrs.get("omero") or {}
        for i, ch in enumerate((omero.get("channels") or [])[:nc]):
            if isinstance(ch, dict):
                if ch.get("label"):
                    names[i] = str(ch["label"])
                colors[i] = color_hex(ch.get("color")) or colors[i]
        channels = [Channel(n, c) for n, c in zip(names, colors, strict=True)]
        virtual = False
        if len(levels) == 1:
            extra = virtual_pyramid(levels[0])
            levels += extra
            virtual = bool(extra)
        labels: dict[str, Callable[[], SceneData]] = {}
        with storage_errors(where):
            label_group = node.get("labels") if hasattr(node, "get") else None
            if isinstance(label_group, zarr.Group):
                for label_name in ome_attrs(label_group.attrs.asdict()).get("labels", []):
                    labels[str(label_name)] = self._label_loader(label_group, str(label_name), where)
        return self._finish(name, levels, physical, channels, labels, virtual)

    def _label_loader(self, group: Any, name: str, where: str) -> Callable[[], SceneData]:
        def load() -> SceneData:
            with storage_errors(where):
                node = group[name]
            return self._image(node, name, f"{where}/labels/{name}")

        return load

    def _finish(
        self,
        name: str,
        levels: list[Level],
        physical: PhysicalSize,
        channels: list[Channel],
        labels: dict[str, Callable[[], SceneData]],
        virtual: bool,
    ) -> SceneData:
        def build_ome() -> Any:
            return synthesize_ome([(name, levels[0].shape, levels[0].dtype, physical, channels)])

        return SceneData(
            name=name,
            levels=levels,
            physical_size=physical,
            channels=channels,
            ome=build_ome,
            labels=labels,
            virtual_pyramid=virtual,
            extra={"ngff_version": self.ngff_version},
        )


def _chunks(arr: Any) -> tuple[int, ...]:
    shards = getattr(arr, "shards", None)
    return tuple(int(c) for c in (shards or arr.chunks))


def open_zarr(res: Resolved) -> ZarrBackend:
    return ZarrBackend(res)

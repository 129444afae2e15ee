"""OME-Zarr: the NGFF attributes and ``OME/METADATA.ome.xml`` updated together, pixels untouched.

What an OME edit means for NGFF (per image, matched by position with the reader's scenes):

- channel names and colours -> ``omero.channels[i].label`` / ``.color``;
- physical sizes X/Y/Z -> every dataset's ``scale`` along that axis, keeping the ratio between
  levels, in the axis' own unit (asked of :mod:`bioimnb.core.metadata.units`; an axis without a
  unit gets ``micrometer``);
- the whole model (annotations, instruments, plates, the edit's provenance) -> ``OME/METADATA.ome.xml``.

Each document is replaced atomically: locally a temporary file in the same folder, ``fsync``,
then ``os.replace``; on object stores one PUT (an object is never seen half-written).  The XML is
written first, then the attributes, so a crash in between leaves the XML ahead of the NGFF
attributes, never a broken document.  zarr v3 keeps attributes in ``zarr.json`` (under ``ome``
for NGFF 0.5), v2 in ``.zattrs``.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from ..errors import CorruptFile
from ..limits import limits
from ..metadata.ome import color_hex
from ..metadata.units import NGFF_MICROMETER, to_micrometres, unit_factor
from ..storage import Resolved, storage_errors

__all__ = ["atomic_write", "ngff_updates", "read_windows", "write_ome_zarr"]


def atomic_write(res: Resolved, path: str, data: bytes) -> int:
    """Replace ``path`` on ``res.fs`` with ``data`` as one step; returns the bytes written."""
    with storage_errors(res.url):
        if res.local:
            folder = os.path.dirname(path)
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".bioimnb-", suffix=".tmp", dir=folder)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                if os.path.exists(path):
                    os.chmod(tmp, os.stat(path).st_mode & 0o7777)
                os.replace(tmp, path)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
            dfd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        else:
            res.fs.pipe_file(path, data)
    return len(data)


def _read_json(res: Resolved, path: str) -> dict[str, Any] | None:
    with storage_errors(res.url):
        try:
            if not res.fs.isfile(path):
                return None
            size = res.fs.size(path)
            if size and size > limits().max_metadata_bytes:
                raise CorruptFile(res.url, f"{os.path.basename(path)} is too large for metadata")
            raw = res.fs.cat_file(path)
        except FileNotFoundError:
            return None
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise CorruptFile(res.url, f"{os.path.basename(path)} is not valid JSON ({exc})") from None
    return doc if isinstance(doc, dict) else None


def _attrs_doc(res: Resolved, group: str) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
    """(path of the document, the document, the dict holding multiscales/omero) of a group."""
    base = res.path.rstrip("/") + (f"/{group}" if group else "")
    v3 = _read_json(res, base + "/zarr.json")
    if v3 is not None:
        attrs = v3.setdefault("attributes", {})
        holder = attrs["ome"] if isinstance(attrs.get("ome"), dict) else attrs
        return base + "/zarr.json", v3, holder
    v2 = _read_json(res, base + "/.zattrs")
    if v2 is not None:
        return base + "/.zattrs", v2, v2
    return None


def _um(size: Any, unit: Any) -> float | None:
    return None if size is None else to_micrometres(size, unit)


def ngff_updates(holder: dict[str, Any], old_image: Any, new_image: Any) -> list[str]:
    """Apply one image's OME edit to its NGFF attributes (in place); returns what changed."""
    done: list[str] = []
    old_px, new_px = old_image.pixels, new_image.pixels
    omero = holder.get("omero")
    if isinstance(omero, dict) and isinstance(omero.get("channels"), list):
        for i, ch in enumerate(new_px.channels):
            if i >= len(omero["channels"]) or not isinstance(omero["channels"][i], dict):
                break
            entry = omero["channels"][i]
            old_ch = old_px.channels[i] if i < len(old_px.channels) else None
            if ch.name is not None and (old_ch is None or old_ch.name != ch.name) and entry.get("label") != ch.name:
                entry["label"] = ch.name
                done.append(f"omero.channels[{i}].label")
            hexcolor = color_hex(ch.color)
            if old_ch is not None and hexcolor and color_hex(old_ch.color) != hexcolor and entry.get("color") != hexcolor:
                entry["color"] = hexcolor
                done.append(f"omero.channels[{i}].color")
    multiscales = holder.get("multiscales")
    if not (isinstance(multiscales, list) and multiscales and isinstance(multiscales[0], dict)):
        return done
    ms = multiscales[0]
    axes = ms.get("axes") or []
    names = [a.get("name") if isinstance(a, dict) else str(a) for a in axes]
    for letter in "xyz":
        if letter not in names:
            continue
        old_um = _um(getattr(old_px, f"physical_size_{letter}"), getattr(old_px, f"physical_size_{letter}_unit"))
        new_um = _um(getattr(new_px, f"physical_size_{letter}"), getattr(new_px, f"physical_size_{letter}_unit"))
        if new_um is None or (old_um is not None and abs(old_um - new_um) <= 1e-12 * new_um):
            continue
        k = names.index(letter)
        axis = axes[k] if isinstance(axes[k], dict) else None
        factor = unit_factor(axis.get("unit")) if axis and axis.get("unit") else None
        if axis is not None and factor is None:
            axis["unit"] = NGFF_MICROMETER
            factor = 1.0
        value = new_um / (factor or 1.0)
        datasets = ms.get("datasets") or []
        base = None
        for ds in datasets:
            for t in ds.get("coordinateTransformations") or []:
                if t.get("type") == "scale" and isinstance(t.get("scale"), list) and len(t["scale"]) > k:
                    if base is None:
                        base = float(t["scale"][k]) or 1.0
                    t["scale"][k] = value * float(t["scale"][k]) / base
        done.append(f"multiscales[0] scale {letter}")
    return done


Window = tuple[float, float]


def read_windows(res: Resolved, scene_paths: list[str]) -> dict[tuple[int, int], Window]:
    """The display window (``omero.channels[c].window`` start, end) of every image's channels."""
    out: dict[tuple[int, int], Window] = {}
    for i, group in enumerate(scene_paths):
        found = _attrs_doc(res, group)
        omero = found[2].get("omero") if found else None
        channels = omero.get("channels") if isinstance(omero, dict) else None
        for c, ch in enumerate(channels if isinstance(channels, list) else []):
            window = ch.get("window") if isinstance(ch, dict) else None
            if not isinstance(window, dict):
                continue
            try:
                out[(i, c)] = (float(window["start"]), float(window["end"]))
            except (TypeError, KeyError, ValueError):
                continue
    return out


def _set_windows(holder: dict[str, Any], windows: dict[int, Window]) -> list[str]:
    done = []
    channels = (holder.get("omero") or {}).get("channels") or []
    for c, (start, end) in sorted(windows.items()):
        if c < len(channels) and isinstance(channels[c], dict):
            window = channels[c].setdefault("window", {})
            if (window.get("start"), window.get("end")) != (start, end):
                window["start"], window["end"] = start, end
                window.setdefault("min", min(start, window.get("min", start)))
                window.setdefault("max", max(end, window.get("max", end)))
                done.append(f"omero.channels[{c}].window")
    return done


def write_ome_zarr(
    res: Resolved, scene_paths: list[str], old: Any, new: Any, xml: bytes, windows: dict[tuple[int, int], Window] | None = None
) -> tuple[int, list[str]]:
    """Write ``OME/METADATA.ome.xml`` and each image's NGFF attributes (``windows``: display
    windows to set, by (image, channel)); returns (bytes, what)."""
    written = atomic_write(res, res.path.rstrip("/") + "/OME/METADATA.ome.xml", xml)
    what = ["OME/METADATA.ome.xml"]
    for i, group in enumerate(scene_paths):
        if i >= len(new.images) or i >= len(old.images):
            break
        found = _attrs_doc(res, group)
        if found is None:
            continue
        path, doc, holder = found
        done = ngff_updates(holder, old.images[i], new.images[i])
        done += _set_windows(holder, {c: w for (j, c), w in (windows or {}).items() if j == i})
        if done:
            written += atomic_write(res, path, (json.dumps(doc, indent=2) + "\n").encode("utf-8"))
            rel = path[len(res.path.rstrip("/")) + 1 :]
            what.append(f"{rel} ({', '.join(done)})")
    return written, what

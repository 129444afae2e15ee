"""NGFF label images: a segmentation written into an OME-Zarr image's ``labels/`` group.

``add_labels(image_url, name, array)`` writes ``labels/<name>`` beside the image's own levels:
one level per image level, with the image's axes (the channel axis of length 1) and scales,
coarser levels reduced from the previous one with the ``mode`` rule of
:mod:`~bioimnb.core.convert.downsample` (the most frequent id of each window: no invented ids),
the ``image-label`` metadata (one colour per label id, the same hash colours the viewer paints,
:func:`bioimnb.core.tiles.render.label_colors`; ``source`` pointing at the image), and the
name added to ``labels/``'s list.  The label group is marked incomplete while written, then
verified (level 0 read back and compared plane by plane with the array; ome-zarr-models
validation of the image and its labels) and stamped with provenance, like a conversion.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import BioimnbError, CorruptFile
from ..images import open_image
from ..jobs import provenance
from ..readers.memory import label_array
from .downsample import reduce_block
from .stores import open_store
from .work import block_digest

__all__ = ["MAX_COLORS", "add_labels"]

MAX_COLORS = 10_000
"""``image-label`` lists colours for at most this many ids (the first ones, ascending); viewers
colour the others by their own rule."""

_AXIS = {"t": 0, "c": 1, "z": 2, "y": 3, "x": 4}


def _ome(attrs: dict[str, Any]) -> dict[str, Any]:
    return dict(attrs.get("ome", attrs))


def _image_group(root: Any, scene: int, source: str) -> tuple[Any, str]:
    """The group holding the image of ``scene``: the root, or ``<scene>/`` of a
    bioformats2raw layout."""
    attrs = _ome(root.attrs.asdict())
    if "multiscales" in attrs:
        return root, ""
    if "bioformats2raw.layout" in attrs and str(scene) in root:
        return root[str(scene)], str(scene)
    raise BioimnbError(source, "has no image group to add labels to (no multiscales at its root or in a bioformats2raw scene)")


def _wrap(attrs: dict[str, Any], version: str) -> dict[str, Any]:
    return {"ome": {"version": "0.5", **attrs}} if version == "0.5" else attrs


def add_labels(
    image: str | os.PathLike[str],
    name: str,
    array: Any,
    *,
    scene: int = 0,
    overwrite: bool = False,
    verify: bool = True,
    **storage_options: Any,
) -> dict[str, Any]:
    """Write ``array`` (integer or boolean ids, the image's Y and X, and Z and T where it has
    them) as NGFF label image ``name`` into the OME-Zarr ``image`` (NGFF 0.4 or 0.5, as the
    image is).  Refuses an existing label of that name unless ``overwrite``.  Returns
    ``{"dest", "label", "path", "levels", "colors", "checks"}``.

    >>> bioimnb.add_labels("cells.ome.zarr", "nuclei", mask)
    """
    import zarr

    dest = os.fspath(image)
    name = str(name)
    if not name or "/" in name or name in (".", ".."):
        raise BioimnbError(dest, f"label name {name!r} is not a usable group name")
    img = open_image(dest, scene=scene, **storage_options)
    try:
        if img.format != "OME-Zarr":
            raise BioimnbError(dest, f"label images are written into OME-Zarr images; this is {img.format}")
        canonical = label_array(array, img.shape, name, dest)
        ids_dtype = np.dtype(canonical.dtype)
    finally:
        img.close()
    root: Any = zarr.open_group(open_store(dest, storage_options), mode="r+")
    group, base = _image_group(root, scene, dest)
    version = "0.5" if root.metadata.zarr_format == 3 else "0.4"
    multiscales = _ome(group.attrs.asdict())["multiscales"][0]
    axes = [a["name"] if isinstance(a, dict) else str(a) for a in multiscales["axes"]]
    where = [_AXIS.get(a.lower()[:1]) for a in axes]
    if any(w is None for w in where):
        raise BioimnbError(dest, f"cannot place labels on image axes {axes}")
    datasets = multiscales["datasets"]
    image_arrays = [group[d["path"]] for d in datasets]
    shapes = [tuple(1 if a.lower().startswith("c") else int(s) for a, s in zip(axes, arr.shape, strict=True)) for arr in image_arrays]
    labels_group = group.require_group("labels")
    existing = [str(n) for n in _ome(labels_group.attrs.asdict()).get("labels", [])]
    if name in existing and not overwrite:
        raise BioimnbError(dest, f"already has a label image {name!r}; pass overwrite=True to replace it")
    out = labels_group.create_group(name, overwrite=True)
    out.attrs["bioimnb"] = {"status": "incomplete"}

    # Level 0, plane by plane (a dask label array is computed one plane at a time).
    kw: dict[str, Any] = {"dimension_names": axes} if version == "0.5" else {"chunk_key_encoding": {"name": "v2", "separator": "/"}}
    arrays = []
    for k, shape in enumerate(shapes):
        chunks = tuple(min(int(c), int(s)) if a.lower()[:1] in "yx" else 1 for a, c, s in zip(axes, image_arrays[k].chunks, shape, strict=True))
        arrays.append(out.create_array(str(k), shape=shape, dtype=ids_dtype, chunks=chunks, fill_value=0, **kw))
    ids: set[int] = set()
    t_n, z_n = int(canonical.shape[0]), int(canonical.shape[2])
    digests: dict[tuple[int, int], str] = {}
    for t in range(t_n):
        for z in range(z_n):
            plane = np.ascontiguousarray(np.asarray(canonical[t, 0, z]))
            digests[(t, z)] = block_digest(plane)
            if len(ids) <= MAX_COLORS:
                ids.update(int(v) for v in np.unique(plane)[: MAX_COLORS + 1])
            arrays[0][_key(axes, t, z)] = plane
            del plane
    # Coarser levels from the previous one (mode of each window), as the image's levels are,
    # block by block: memory is bounded by a block, never by the level.
    for k in range(1, len(shapes)):
        _reduce_level(arrays[k - 1], arrays[k])
    ids.discard(0)
    from ..tiles.render import label_colors

    values = sorted(ids)[:MAX_COLORS]
    rgb = label_colors(np.array(values, dtype=np.int64)) if values else np.zeros((0, 3), np.uint8)
    colors = [{"label-value": v, "rgba": [int(c[0]), int(c[1]), int(c[2]), 255]} for v, c in zip(values, rgb, strict=True)]
    ms: dict[str, Any] = {
        "name": name,
        "axes": multiscales["axes"],
        "datasets": [{"path": str(k), "coordinateTransformations": d["coordinateTransformations"]} for k, d in enumerate(datasets)],
    }
    if "coordinateTransformations" in multiscales:
        ms["coordinateTransformations"] = multiscales["coordinateTransformations"]
    image_label: dict[str, Any] = {"colors": colors, "source": {"image": "../../"}}
    if version == "0.4":
        ms["version"] = "0.4"
        image_label["version"] = "0.4"
    out.attrs.update(_wrap({"multiscales": [ms], "image-label": image_label}, version))
    names = [*existing, name] if name not in existing else existing
    labels_group.attrs.update(_wrap({"labels": names}, version))

    checks: list[str] = []
    if verify:
        checks = _verify(dest, group, arrays[0], axes, digests, name, version)
    record = provenance(
        f"in-memory label array {name!r}",
        None,
        label_shape=[int(s) for s in canonical.shape],
        label_dtype=str(ids_dtype),
        options={"downsample": "mode", "levels": len(shapes)},
    )
    out.attrs["bioimnb"] = {"status": "complete", "provenance": record}
    path = "/".join(p for p in (base, "labels", name) if p)
    return {"dest": dest, "label": name, "path": path, "levels": [list(s) for s in shapes], "colors": len(colors), "checks": checks}


_BLOCK_YX = 1024
"""Output block edge (Y and X) of a coarse label level: about 4 MiB of uint32 out, 16 MiB in."""


def _reduce_level(prev: Any, out: Any) -> None:
    """Write ``out`` as the mode-reduction of ``prev`` (zarr arrays), one output block at a
    time.  Equal to reducing the whole level and fitting it to ``out``'s shape (edges replicated)."""
    import itertools

    src, dst = tuple(int(n) for n in prev.shape), tuple(int(n) for n in out.shape)
    factors = tuple(max(1, round(p / s)) for p, s in zip(src, dst, strict=True))
    block = []
    for i, c in enumerate(out.chunks):
        c = max(1, int(c))
        big = i >= len(dst) - 2  # Y and X: several chunks per block
        block.append(max(c, (_BLOCK_YX // c) * c) if big else c)
    starts = [range(0, n, b) for n, b in zip(dst, block, strict=True)]
    for corner in itertools.product(*starts):
        want = [min(b, n - o) for o, b, n in zip(corner, block, dst, strict=True)]
        region = []
        for o, w, f, n in zip(corner, want, factors, src, strict=True):
            lo = o * f
            if lo >= n:  # beyond the reduced data: its last window, replicated below
                lo = ((n - 1) // f) * f
            region.append(slice(lo, min(n, (o + w) * f)))
        reduced = reduce_block(np.asarray(prev[tuple(region)]), factors, "mode")
        out[tuple(slice(o, o + w) for o, w in zip(corner, want, strict=True))] = _fit(reduced, tuple(want))


def _key(axes: list[str], t: int, z: int) -> tuple[Any, ...]:
    out: list[Any] = []
    for a in axes:
        letter = a.lower()[:1]
        out.append(t if letter == "t" else z if letter == "z" else 0 if letter == "c" else slice(None))
    return tuple(out)


def _fit(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``a`` cropped, or padded by edge replication, to ``shape`` (levels whose sizes are not
    an exact halving of the previous one)."""
    a = a[tuple(slice(0, s) for s in shape)]
    pads = [(0, s - n) for n, s in zip(a.shape, shape, strict=True)]
    return np.pad(a, pads, mode="edge") if any(p[1] for p in pads) else a


def _verify(dest: str, group: Any, level0: Any, axes: list[str], digests: dict[tuple[int, int], str], name: str, version: str) -> list[str]:
    bad = [f"t={t} z={z}" for (t, z), want in digests.items() if block_digest(np.ascontiguousarray(level0[_key(axes, t, z)])) != want]
    if bad:
        raise CorruptFile(dest, f"label {name!r} verification failed: {len(bad)} plane(s) differ from the array, first {bad[0]}")
    if version == "0.5":
        from ome_zarr_models.v05 import Image
        from ome_zarr_models.v05.labels import Labels
    else:
        from ome_zarr_models.v04 import Image  # type: ignore[assignment]
        from ome_zarr_models.v04.labels import Labels  # type: ignore[assignment]
    try:
        Image.from_zarr(group)
        Labels.from_zarr(group["labels"])
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CorruptFile(dest, f"label {name!r} fails OME-Zarr {version} validation ({first})") from exc
    tag = version.replace(".", "")
    return [
        f"label {name!r}: {len(digests)} plane(s) equal to the array",
        f"ome-zarr-models v{tag} validation of the image and its labels passed",
    ]

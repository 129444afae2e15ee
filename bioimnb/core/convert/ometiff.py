"""Pyramidal OME-TIFF output, the bioformats2raw + raw2ometiff way.

Stage 1 converts to a working OME-Zarr next to the destination (resumable, memory-bounded, each
level built from the previous one).  Stage 2 streams that pyramid tile by tile into a tiled
BigTIFF with SubIFD levels and OME-XML, written under a ``.partial`` name and renamed only after
verification, so the destination name never holds a half-written file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import BioimnbError, CorruptFile
from ..images import MultiscaleImage, open_image
from ..jobs import Progress
from ..metadata.ome import add_map_annotation, ome_tiff_metadata
from ..storage import Resolved, storage_errors
from .ngff import _channel_colors, _channel_names
from .options import ConvertOptions
from .pipeline import (
    ConversionReport,
    InMemory,
    ZarrRun,
    bytes_stored,
    plane_digests,
    provenance_record,
    source_facts,
    zarr_state,
)
from .plan import ScenePlan
from .work import block_digest, dest_codec

_TIFF_COMPRESSION = {"zstd": "zstd", "zlib": "zlib", "none": None}


def _is_rgb(plan: ScenePlan) -> bool:
    """An RGB source (3 samples per pixel, one channel): written as RGB, not 3 grey channels."""
    return plan.samples == 3 and plan.shapes[0][1] == 3 and np.dtype(plan.dtype) == np.uint8


def _tiff_shape(shape: tuple[int, ...], rgb: bool) -> tuple[int, ...]:
    """The array shape tifffile writes: TCZYX, or TZSYX for RGB (samples are the channels)."""
    t, c, z, y, x = shape
    return (t, z, c, y, x) if rgb else (t, c, z, y, x)


def _tiles(arr: Any, codec: Any, plan_shape: tuple[int, ...], tile: int, workers: int = 2, *, rgb: bool = False) -> Iterator[np.ndarray]:
    """Every tile (``tile`` x ``tile``, edge tiles padded with zeros) of every plane, in TIFF
    order; read and decoded a few tiles ahead on ``workers`` threads while tifffile encodes.

    Tiles equal the working pyramid's chunks, so each read is one stored chunk; the read-ahead
    holds ``4 x workers`` tiles, whatever the image width (whole rows of tiles would grow with it)."""
    from concurrent.futures import ThreadPoolExecutor

    t, c, z, y, x = plan_shape
    # Planes in TIFF order: T, C, Z; for RGB (TZSYX) the 3 sample planes of each plane follow
    # each other: T, Z, C.
    planes = [(ti, ci, zi) for ti in range(t) for ci in range(c) for zi in range(z)]
    if rgb:
        planes.sort(key=lambda p: (p[0], p[2], p[1]))
    keys = [(ti, ci, zi, y0, x0) for ti, ci, zi in planes for y0 in range(0, y, tile) for x0 in range(0, x, tile)]

    def read(key: tuple[int, int, int, int, int]) -> np.ndarray:
        ti, ci, zi, y0, x0 = key
        h, w = min(tile, y - y0), min(tile, x - x0)
        if codec is not None and codec.aligned(y0, y0 + h, x0, x0 + w):
            block = codec.read_block(ti, ci, zi, y0, x0, h, w)
        else:
            block = np.asarray(arr[ti, ci, zi, y0 : y0 + h, x0 : x0 + w])
        if block.shape != (tile, tile):
            padded = np.zeros((tile, tile), block.dtype)
            padded[:h, :w] = block
            block = padded
        return block  # type: ignore[no-any-return]

    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="bioimnb-tiff-read") as pool:
        ahead = max(4, 4 * workers)
        pending = [pool.submit(read, k) for k in keys[:ahead]]
        for i in range(len(keys)):
            block = pending[i].result()
            pending[i] = None  # type: ignore[call-overload]
            if i + ahead < len(keys):
                pending.append(pool.submit(read, keys[i + ahead]))
            yield block
            del block


def _ome_metadata(img: MultiscaleImage, plan: ScenePlan, rgb: bool = False) -> dict[str, Any]:
    scene = img.select_scene(plan.index)
    if rgb:
        name = scene.channels[0].name if scene.channels else "RGB"
        return ome_tiff_metadata(plan.name, scene.physical_size, [name], [], rgb=True)
    names = _channel_names(plan, scene.channels)
    colors = _channel_colors(plan, scene.channels)
    return ome_tiff_metadata(plan.name, scene.physical_size, names, colors)


def convert_to_ome_tiff(
    img: MultiscaleImage,
    src_res: Resolved | InMemory,
    dst_res: Resolved,
    opts: ConvertOptions,
    src_opts: dict[str, Any],
    dst_opts: dict[str, Any],
    scheduler: Any,
    progress: Callable[[Progress], None] | None,
    cancel: Any,
) -> ConversionReport:
    import tifffile
    import zarr

    start = time.monotonic()
    with storage_errors(dst_res.url):
        exists = dst_res.fs.exists(dst_res.path)
    if exists:
        if opts.resume:
            raise BioimnbError(dst_res.url, "is already complete; nothing to resume")
        if not opts.overwrite:
            raise BioimnbError(dst_res.url, "destination exists; pass overwrite=True (--overwrite) to replace it")
    if dst_res.local:
        workdir = None
        work = dst_res.path + ".bioimnb-work.zarr"
        partial = dst_res.path + ".partial"
    else:
        workdir = tempfile.mkdtemp(prefix="bioimnb-")
        work = os.path.join(workdir, "work.zarr")
        partial = os.path.join(workdir, "out.ome.tif.partial")
    if opts.overwrite:
        shutil.rmtree(work, ignore_errors=True)
    stage = replace(opts, to="ome-zarr", ngff="0.5", shards=None, compression="zstd", compression_level=1, overwrite=False)
    if os.path.exists(work):
        state = zarr_state(work, {})
        if not opts.resume and not opts.overwrite:
            raise BioimnbError(dst_res.url, f"an interrupted conversion left {work}; pass resume=True (--resume) to finish it or overwrite=True (--overwrite) to start again")
        if state is None:
            shutil.rmtree(work)
        stage.resume = state is not None
    else:
        stage.resume = False
    from ..storage import resolve

    work_res = resolve(work)
    run = ZarrRun(src_res.url, work, stage, src_opts, {}, scheduler, progress, cancel)
    try:
        plans, journal, written, kept = run.run_zarr(img, work_res)
        rechecked = run.verify_kept(plans, journal) if opts.verify else 0
    finally:
        run.close()

    root: Any = zarr.open_group(work, mode="r")
    compression = _TIFF_COMPRESSION[opts.compression or "zlib"]
    kw: dict[str, Any] = {"photometric": "minisblack", "tile": (opts.chunks, opts.chunks), "compression": compression}
    if compression is not None and opts.compression_level:
        kw["compressionargs"] = {"level": opts.compression_level}
    if os.path.exists(partial):
        os.remove(partial)
    workers = max(1, opts.workers or os.cpu_count() or 1)
    with tifffile.TiffWriter(partial, bigtiff=True, ome=True) as tw:
        for plan in plans:
            group = root[plan.path] if plan.path else root
            n = len(plan.shapes)
            base = plan.path + "/" if plan.path else ""
            rgb = _is_rgb(plan)
            # RGB sources stay RGB: one channel of 3 samples per pixel (what Fiji, OMERO and
            # Bio-Formats expect), stored plane by plane (planar configuration "separate").
            page = {**kw, "photometric": "rgb", "planarconfig": "separate"} if rgb else kw
            tw.write(
                _tiles(group["0"], dest_codec(work, "{}", f"{base}0"), plan.shapes[0], opts.chunks, workers, rgb=rgb),
                shape=_tiff_shape(plan.shapes[0], rgb),
                dtype=plan.dtype,
                subifds=n - 1,
                metadata=_ome_metadata(img, plan, rgb),
                **page,
            )
            for level in range(1, n):
                codec = dest_codec(work, "{}", f"{base}{level}")
                tiles = _tiles(group[str(level)], codec, plan.shapes[level], opts.chunks, workers, rgb=rgb)
                tw.write(tiles, shape=_tiff_shape(plan.shapes[level], rgb), dtype=plan.dtype, subfiletype=1, metadata=None, **page)
    provenance = provenance_record(img, src_res, opts)
    with tifffile.TiffFile(partial) as tf:
        xml = tf.ome_metadata or ""
    xml = add_map_annotation(xml, "Annotation:bioimnb-provenance", "https://bioimnb.org/provenance", provenance)
    tifffile.tiffcomment(partial, xml.encode("utf-8"))
    checks: list[str] = []
    if opts.verify:
        checks = _verify_tiff(partial, plans, journal, dst_res.url, rechecked)
    if dst_res.local:
        os.replace(partial, dst_res.path)
    else:
        with storage_errors(dst_res.url):
            if exists:
                dst_res.fs.rm(dst_res.path)
            dst_res.fs.put_file(partial, dst_res.path)
    shutil.rmtree(work, ignore_errors=True)
    if workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    raw = sum(int(np.prod(p.shapes[0])) * p.dtype.itemsize for p in plans)
    return ConversionReport(
        source=img.source,
        dest=dst_res.url,
        format="OME-TIFF",
        scenes=[{"index": p.index, "name": p.name, "levels": [list(s) for s in p.shapes]} for p in plans],
        bytes_in=source_facts(src_res)["size"],
        bytes_raw=raw,
        bytes_out=bytes_stored(dst_res),
        seconds=time.monotonic() - start,
        checks=checks,
        resumed_blocks=kept,
        written_blocks=written,
    )


def _verify_tiff(path: str, plans: list[ScenePlan], journal: dict[str, str], dest: str, rechecked: int = 0) -> list[str]:
    from ome_types import from_xml

    out = open_image(path)
    mismatches = []
    compared = 0
    for n, plan in enumerate(plans):
        scene = out.select_scene(n)
        rgb = scene.axes.endswith("S")
        # RGB output: its samples are the plan's channels.
        shapes = [(s[0], s[1] * s[5], s[2], s[3], s[4]) if rgb else s[:5] for s in scene.level_shapes]
        if shapes != [tuple(s) for s in plan.shapes]:
            raise CorruptFile(dest, f"verification failed: scene {n} levels {scene.level_shapes} differ from the plan {plan.shapes}")
        for b in plan.blocks(0):
            where = {"c": 0, "s": b.c} if rgb else {"c": b.c}
            got = block_digest(scene.read(0, t=b.t, z=b.z, y=slice(b.y0, b.y1), x=slice(b.x0, b.x1), **where))
            compared += 1
            if got != journal.get(f"{plan.index}/{b.key}"):
                mismatches.append(f"scene {plan.index} block {b.key}")
    out.close()
    if mismatches:
        raise CorruptFile(dest, f"verification failed: {len(mismatches)} level-0 block(s) differ from the source, first {mismatches[0]}")
    import tifffile

    with tifffile.TiffFile(path) as tf:
        xml = tf.ome_metadata or ""
    try:
        from_xml(xml, validate=True)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CorruptFile(dest, f"output OME-XML fails schema validation ({first[:200]})") from exc
    planes = sum(len(plane_digests(journal, p.index)) for p in plans)
    again = f" ({rechecked} written by the interrupted run re-read from the source)" if rechecked else ""
    return [
        f"level-0 checksums: {planes} plane(s), {compared} block(s) equal to the source{again}",
        "OME-XML validates against the OME schema (ome-types)",
    ]

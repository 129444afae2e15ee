"""Metadata editing: open, edit and save a 1 MB OME-XML (a 384-well plate) and a 4 GiB OME-TIFF.

Measures, medians of repeated runs in one process:
* OME-XML plate (generated: 384 wells x 3 fields, ~1 MB): ``EditSession(path)`` (safe parse),
  two edits (a channel name of image 1000, a key-value pair), ``save()`` (schema check,
  provenance, atomic replace) against the plain ome-types script a user would write
  (``from_xml`` -> edit -> ``to_xml`` -> write the file, no checks, not atomic);
* OME-TIFF (generated: 2 x 32768 x 32768 uint16, 1024-pixel uncompressed tiles of a few distinct
  values, 4 GiB on disk, BigTIFF): the same open/edit/save, and the bytes the save wrote
  (``/proc/self/io`` ``write_bytes``, what reached the block layer, and ``wchar``, what went
  through ``write()``), against ome-types + ``tifffile.tiffcomment`` (parse, edit, replace the
  ImageDescription in place: the usual script; not crash-safe, keeps no old XML).
  The file is fsynced and evicted from the page cache before the runs, so a save's ``fsync``
  flushes only what the save wrote.

``--quick``: a 96-well plate and a 64 MiB OME-TIFF, 2 repeats (the smoke test).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import base_parser, evict, median, ms, print_machine, progress, ratio, table  # noqa: E402


def _io() -> tuple[int, int]:
    """(write_bytes, wchar) of this process so far."""
    values = {}
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            key, _, value = line.partition(":")
            values[key] = int(value)
    except OSError:
        return 0, 0
    return values.get("write_bytes", 0), values.get("wchar", 0)


# -- data -----------------------------------------------------------------------------------


def make_plate(path: Path, rows: int, cols: int, fields: int) -> int:
    """An OME-XML plate with one image (2 channels, metadata only) per field; returns bytes."""
    if path.exists():
        return path.stat().st_size
    from ome_types import OME
    from ome_types.model import Channel, Image, ImageRef, Pixels, Plate, Well, WellSample

    images, wells = [], []
    n = 0
    for r in range(rows):
        for c in range(cols):
            samples = []
            for f in range(fields):
                px = Pixels(
                    id=f"Pixels:{n}", dimension_order="XYZCT", type="uint16", size_x=2048, size_y=2048, size_z=1, size_c=2, size_t=1,
                    physical_size_x=0.325, physical_size_y=0.325, metadata_only=True,
                    channels=[Channel(id=f"Channel:{n}:0", name="DAPI", samples_per_pixel=1), Channel(id=f"Channel:{n}:1", name="GFP", samples_per_pixel=1)],
                )  # fmt: skip
                images.append(Image(id=f"Image:{n}", name=f"{chr(65 + r)}{c + 1:02d} field {f}", pixels=px))
                samples.append(WellSample(id=f"WellSample:{n}", index=n, image_ref=ImageRef(id=f"Image:{n}")))
                n += 1
            wells.append(Well(id=f"Well:{r}_{c}", row=r, column=c, well_samples=samples))
    plate = Plate(id="Plate:0", name="bench plate", rows=rows, columns=cols, wells=wells)
    xml = OME(images=images, plates=[plate], creator="bioimnb benchmark").to_xml()
    path.write_text(xml, encoding="utf-8")
    return path.stat().st_size


def make_tiff(path: Path, side: int, tile: int = 1024) -> int:
    """2 x side x side uint16, uncompressed tiles of 7 distinct values, BigTIFF, fsynced."""
    if path.exists() and path.stat().st_size >= 2 * side * side * 2:
        return path.stat().st_size
    import numpy as np
    import tifffile

    tiles = [np.full((tile, tile), v * 1000, np.uint16) for v in range(7)]
    count = 2 * (side // tile) ** 2

    def gen() -> Any:
        for i in range(count):
            yield tiles[i % 7]

    tmp = path.with_suffix(".partial")
    tifffile.imwrite(
        tmp, gen(), shape=(2, side, side), dtype=np.uint16, tile=(tile, tile), bigtiff=True, ome=True,
        metadata={"axes": "CYX", "Name": "big", "PhysicalSizeX": 0.1, "PhysicalSizeY": 0.1, "Channel": {"Name": ["DAPI", "Ch2"]}},
    )  # fmt: skip
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.rename(path)
    return path.stat().st_size


# -- runs ---------------------------------------------------------------------------------------


def bioimnb_edit(path: Path, image: int) -> dict[str, float]:
    from bioimnb.core.curation.edit import EditSession

    t0 = time.perf_counter()
    s = EditSession(path)
    t1 = time.perf_counter()
    s.set(f"image[{image}].channel[1].name=EGFP-{time.time_ns()}", f"image[{image}].map.Run={time.time_ns()}")
    t2 = time.perf_counter()
    wb, wc = _io()
    s.save()
    t3 = time.perf_counter()
    wb2, wc2 = _io()
    return {"open": t1 - t0, "edit": t2 - t1, "save": t3 - t2, "total": t3 - t0, "write_bytes": wb2 - wb, "wchar": wc2 - wc}


def peer_xml(path: Path, image: int) -> dict[str, float]:
    from ome_types import from_xml

    t0 = time.perf_counter()
    ome = from_xml(path.read_text(encoding="utf-8"))
    t1 = time.perf_counter()
    ome.images[image].pixels.channels[1].name = f"EGFP-{time.time_ns()}"
    t2 = time.perf_counter()
    wb, wc = _io()
    path.write_text(ome.to_xml(), encoding="utf-8")
    t3 = time.perf_counter()
    wb2, wc2 = _io()
    return {"open": t1 - t0, "edit": t2 - t1, "save": t3 - t2, "total": t3 - t0, "write_bytes": wb2 - wb, "wchar": wc2 - wc}


def peer_tiff(path: Path, image: int) -> dict[str, float]:
    import tifffile
    from ome_types import from_xml

    t0 = time.perf_counter()
    with tifffile.TiffFile(path) as tif:
        xml = tif.ome_metadata or ""
    ome = from_xml(xml)
    t1 = time.perf_counter()
    ome.images[image].pixels.channels[1].name = f"EGFP-{time.time_ns()}"
    t2 = time.perf_counter()
    wb, wc = _io()
    tifffile.tiffcomment(path, ome.to_xml().encode("utf-8"))
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # the same durability bioimnb's save gives
    finally:
        os.close(fd)
    t3 = time.perf_counter()
    wb2, wc2 = _io()
    return {"open": t1 - t0, "edit": t2 - t1, "save": t3 - t2, "total": t3 - t0, "write_bytes": wb2 - wb, "wchar": wc2 - wc}


def runs(fn: Any, path: Path, image: int, n: int) -> dict[str, float]:
    results = [fn(path, image) for _ in range(n)]
    return {k: median([r[k] for r in results]) for k in results[0]}


def kib(n: float) -> str:
    return f"{n / 1024:.1f} KiB"


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    work = Path(args.workdir) / "metadata"
    work.mkdir(parents=True, exist_ok=True)
    repeats = 2 if args.quick else args.repeats
    print_machine(work)
    rows, cols, fields = (8, 12, 2) if args.quick else (16, 24, 5)
    side = 4096 if args.quick else 32768

    progress("making the plate OME-XML")
    plate_src = work / f"plate_{rows * cols}x{fields}.ome.xml"
    size = make_plate(plate_src, rows, cols, fields)
    image = min(1000, rows * cols * fields - 1)
    plate_a, plate_b = work / "plate_bioimnb.ome.xml", work / "plate_peer.ome.xml"
    shutil.copy(plate_src, plate_a)
    shutil.copy(plate_src, plate_b)
    progress("warming up (imports, schema)")
    bioimnb_edit(plate_a, image)
    peer_xml(plate_b, image)
    progress(f"plate: {repeats} runs each")
    ours_xml = runs(bioimnb_edit, plate_a, image, repeats)
    theirs_xml = runs(peer_xml, plate_b, image, repeats)

    progress(f"making the {2 * side * side * 2 / 2**30:.2f} GiB OME-TIFF")
    tiff_src = work / f"big_{side}.ome.tif"
    tsize = make_tiff(tiff_src, side)
    # Both scripts edit the same file: each save touches only metadata (bioimnb appends the new
    # XML; tiffcomment overwrites or appends it), so no 4 GiB copies are needed.
    tiff_a = tiff_b = tiff_src
    progress("warming up on the OME-TIFF (reader imports)")
    bioimnb_edit(tiff_a, 0)
    peer_tiff(tiff_b, 0)
    fd = os.open(tiff_src, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    evict([tiff_src])
    progress(f"OME-TIFF: {repeats} runs each")
    before = tiff_src.stat().st_size
    ours_tiff = runs(bioimnb_edit, tiff_a, 0, repeats)
    grown = tiff_a.stat().st_size - before
    theirs_tiff = runs(peer_tiff, tiff_b, 0, repeats)

    print(f"## Data\nplate OME-XML: {size / 2**20:.2f} MiB, {rows * cols} wells x {fields} fields = {rows * cols * fields} images\n"
          f"OME-TIFF: {tsize / 2**30:.3f} GiB (2 x {side} x {side} uint16, 1024-pixel tiles, uncompressed, BigTIFF)\n")  # fmt: skip
    head = ["what", "open ms", "edit ms", "save ms", "total ms", "write_bytes", "wchar"]

    def row(name: str, r: dict[str, float]) -> list[str]:
        return [name, ms(r["open"]), ms(r["edit"]), ms(r["save"]), ms(r["total"]), kib(r["write_bytes"]), kib(r["wchar"])]

    table(head, [row("bioimnb EditSession (plate XML)", ours_xml), row("ome-types script (plate XML)", theirs_xml)], "1 MB OME-XML plate: open, edit, save (medians)")
    table(head, [row("bioimnb EditSession (4 GiB OME-TIFF)", ours_tiff), row("ome-types + tiffcomment (4 GiB OME-TIFF)", theirs_tiff)], "OME-TIFF: open, edit, save (medians)")
    print(f"OME-TIFF file grew by {kib(grown)} over {repeats} bioimnb saves (the old XML of each save stays for undo).\n")
    table(
        ["ratio", "value"],
        [
            ["plate XML total time, bioimnb / ome-types script", ratio(ours_xml["total"], theirs_xml["total"])],
            ["OME-TIFF total time, bioimnb / ome-types + tiffcomment", ratio(ours_tiff["total"], theirs_tiff["total"])],
            ["OME-TIFF bytes through write(), bioimnb / tiffcomment", ratio(ours_tiff["wchar"], theirs_tiff["wchar"])],
            ["OME-TIFF bytes written by the save / file size", ratio(max(ours_tiff["wchar"], ours_tiff["write_bytes"]), tsize)],
        ],
        "Ratios of medians",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Test images made by independent writers (tifffile, ome-zarr-py, imageio), each returned with
the arrays that made it, so tests compare what bioimnb reads against ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
import zarr

RNG = np.random.default_rng(20261125)


def pyramid(data: np.ndarray, levels: int) -> list[np.ndarray]:
    """Level k = data sampled every 2**k pixels in the last two axes (or Y, X before S)."""
    out = [data]
    for k in range(1, levels):
        f = 2**k
        out.append(np.ascontiguousarray(data[..., ::f, ::f]))
    return out


def ome_tiff_subifd(path: Path, *, scenes: int = 2, levels: int = 3) -> list[list[np.ndarray]]:
    """Multi-scene OME-TIFF with SubIFD pyramids: scenes x (C=2, Y=600, X=800) uint16."""
    truth = []
    with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tw:
        for s in range(scenes):
            data = RNG.integers(0, 65535, (2, 600, 800), dtype=np.uint16)
            pyr = pyramid(data, levels)
            truth.append(pyr)
            opts = {"tile": (128, 128), "compression": "zlib", "photometric": "minisblack"}
            tw.write(
                pyr[0],
                subifds=levels - 1,
                metadata={
                    "axes": "CYX",
                    "Name": f"scene-{s}",
                    "PhysicalSizeX": 0.325,
                    "PhysicalSizeY": 0.325,
                    "Channel": {"Name": ["DAPI", "GFP"]},
                },
                **opts,
            )
            for lv in pyr[1:]:
                tw.write(lv, subfiletype=1, **opts)
    return truth


def svs_like(path: Path, levels: int = 3) -> list[np.ndarray]:
    """An Aperio-style tiled RGB pyramid in the main IFD chain, lossless, MPP 0.499."""
    yy, xx = np.mgrid[0:1536, 0:2048]
    base = np.stack([(xx // 8) % 256, (yy // 8) % 256, (xx + yy) % 256], axis=-1).astype(np.uint8)
    pyr = pyramid(base.transpose(2, 0, 1), levels)
    pyr = [np.ascontiguousarray(p.transpose(1, 2, 0)) for p in pyr]
    desc = "Aperio Image Library v12.0.15 \n2048x1536 [0,0 2048x1536] (256x256) |AppMag = 20|MPP = 0.499"
    with tifffile.TiffWriter(path) as tw:
        kw = {"photometric": "rgb", "metadata": None, "compression": "zlib"}
        tw.write(pyr[0], tile=(256, 256), description=desc, **kw)
        tw.write(pyr[0][::16, ::16], description="Aperio Image Library v12.0.15 \nthumbnail", **kw)
        for lv in pyr[1:]:
            tw.write(lv, tile=(256, 256), description="Aperio Image Library v12.0.15 \nlevel", **kw)
        tw.write(pyr[0][:64, :64], subfiletype=1, description="Aperio Image Library v12.0.15 \nlabel 64x64", **kw)
    return pyr


def flat_tiff(path: Path, shape: tuple[int, int] = (4096, 4096), rowsperstrip: int = 1, compression: str | None = "zlib") -> np.ndarray:
    """A single-level strip TIFF (no pyramid)."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    data = ((yy * 7 + xx * 3) % 65521).astype(np.uint16)
    tifffile.imwrite(path, data, rowsperstrip=rowsperstrip, compression=compression, photometric="minisblack")
    return data


def imagej_tiff(path: Path) -> np.ndarray:
    """ImageJ hyperstack T=2 Z=3 C=2, 0.2 um pixels, 1.5 um Z spacing."""
    data = RNG.integers(0, 255, (2, 3, 2, 64, 80), dtype=np.uint8)  # TZCYX
    tifffile.imwrite(
        path,
        data,
        imagej=True,
        resolution=(1 / 0.2, 1 / 0.2),
        metadata={"axes": "TZCYX", "spacing": 1.5, "unit": "um"},
    )
    return data


NGFF_AXES = [
    {"name": "c", "type": "channel"},
    {"name": "z", "type": "space", "unit": "micrometer"},
    {"name": "y", "type": "space", "unit": "micrometer"},
    {"name": "x", "type": "space", "unit": "micrometer"},
]


def ngff_image(path: Path, version: str, levels: int = 3) -> dict[str, list[np.ndarray]]:
    """An OME-Zarr image (C=2, Z=3, Y=300, X=400) written by ome-zarr-py, with a label image."""
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_multiscale, write_multiscale_labels

    fmt = FormatV04() if version == "0.4" else FormatV05()
    data = RNG.integers(0, 4000, (2, 3, 300, 400), dtype=np.uint16)
    pyr = pyramid(data, levels)
    root = zarr.open_group(str(path), mode="w", zarr_format=2 if version == "0.4" else 3)
    transforms = [[{"type": "scale", "scale": [1.0, 0.5, 0.25 * 2**i, 0.25 * 2**i]}] for i in range(levels)]
    write_multiscale(
        pyr,
        root,
        axes=NGFF_AXES,
        coordinate_transformations=transforms,
        fmt=fmt,
        storage_options={"chunks": (1, 1, 128, 128)},
        metadata={"omero": {"channels": [{"label": "DAPI", "color": "0000FF"}, {"label": "GFP", "color": "00FF00"}]}},
    )
    cells = (data[0] > 2000).astype(np.uint8)
    label_pyr = pyramid(cells, 2)
    write_multiscale_labels(label_pyr, root, name="cells", fmt=fmt, axes=["z", "y", "x"])
    return {"image": pyr, "cells": label_pyr}


def ngff_plate(path: Path, version: str = "0.4") -> dict[str, np.ndarray]:
    """A 1 x 2 plate with two fields per well, each field a 1-level (C=1, Y=64, X=64) image."""
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_image, write_plate_metadata, write_well_metadata

    fmt = FormatV04() if version == "0.4" else FormatV05()
    root = zarr.open_group(str(path), mode="w", zarr_format=2 if version == "0.4" else 3)
    write_plate_metadata(root, ["A"], ["1", "2"], ["A/1", "A/2"], fmt=fmt)
    truth = {}
    for well in ("A/1", "A/2"):
        row, col = well.split("/")
        wgroup = root.require_group(row).require_group(col)
        write_well_metadata(wgroup, ["0", "1"], fmt=fmt)
        for field in ("0", "1"):
            data = RNG.integers(0, 255, (1, 64, 64), dtype=np.uint8)
            write_image(data, wgroup.require_group(field), axes="cyx", fmt=fmt, scaler=None)
            truth[f"{well}/{field}"] = data
    return truth


#: Geometry and values of :func:`ome_tiff_planes`.
PLANES_SHAPE = {"scenes": 2, "t": 3, "z": 2, "c": 2, "y": 300, "x": 400}
PLANES_WHITE = (1000, 3000)
"""Per scene: the calibration strip's value (auto contrast gives the window ``(0, white)``)."""
PLANES_STRIPS = (40, 80)
"""Columns ``[0, 40)`` are 0 and ``[40, 80)`` are the scene's white in every plane and channel;
the plane's codes fill the columns from 80 on."""


def planes_code(scene: int, t: int, z: int) -> tuple[int, int]:
    """The values of channels 0 and 1 right of the strips in plane (scene, t, z) of
    :func:`ome_tiff_planes`: channel 0 is ``(1 + t * Z + z) / 8`` of the scene's white (one value
    per plane of a scene), channel 1 is ``2 / 8`` of it in scene 0 and ``6 / 8`` in scene 1."""
    white = PLANES_WHITE[scene]
    plane = t * PLANES_SHAPE["z"] + z
    return (1 + plane) * white // 8, (2 + 4 * scene) * white // 8


def ome_tiff_planes(path: Path) -> list[np.ndarray]:
    """A 2-scene OME-TIFF, each scene (T=3, Z=2, C=2, Y=300, X=400) uint16 with a 2-level
    SubIFD pyramid (128-px TIFF tiles): every (scene, t, z) plane is constant right of two
    calibration strips (see ``PLANES_STRIPS``, :func:`planes_code`), so with each scene's auto
    contrast the colour painted there names the plane shown.  Returns the scenes' arrays
    (TZCYX)."""
    s = PLANES_SHAPE
    x0, x1 = PLANES_STRIPS
    truth = []
    opts = {"tile": (128, 128), "compression": "zlib", "photometric": "minisblack"}
    with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tw:
        for scene in range(s["scenes"]):
            data = np.zeros((s["t"], s["z"], s["c"], s["y"], s["x"]), np.uint16)
            data[..., x0:x1] = PLANES_WHITE[scene]
            for t in range(s["t"]):
                for z in range(s["z"]):
                    for c, value in enumerate(planes_code(scene, t, z)):
                        data[t, z, c, :, x1:] = value
            truth.append(data)
            tw.write(
                data,
                subifds=1,
                metadata={
                    "axes": "TZCYX",
                    "Name": f"scene-{scene}",
                    "PhysicalSizeX": 0.5,
                    "PhysicalSizeY": 0.5,
                    "Channel": {"Name": ["PlaneCode", "SceneCode"]},
                },
                **opts,
            )
            tw.write(np.ascontiguousarray(data[..., ::2, ::2]), subfiletype=1, **opts)
    return truth


OME_NS = "http://www.openmicroscopy.org/Schemas/OME/2016-06"


def _uuid(tag: str) -> str:
    import uuid

    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, tag)}"


def ome_tiff_multifile(
    folder: Path,
    *,
    files: int = 2,
    planes: int = 2,
    shape: tuple[int, int] = (100, 120),
    members: str = "binaryonly",
    companion: bool = False,
    filenames: list[str] | None = None,
    paths: list[Path] | None = None,
    physical_size: float | None = 0.5,
    tile: tuple[int, int] | None = (64, 64),
    stem: str = "mf",
) -> dict:
    """A multi-file OME-TIFF fileset written by tifffile with hand-written OME-XML: ``files``
    TIFFs of ``planes`` Z-planes each (uint16, zlib, tiled), together one image (Z, Y, X).

    ``companion=False``: ``<stem>_0.ome.tif`` is the master holding the full OME-XML; the other
    members hold a ``BinaryOnly`` block pointing to it (``members="binaryonly"``) or a copy of
    the full XML with their own UUID (``members="full"``, as Bio-Formats writes them).
    ``companion=True``: ``<stem>.companion.ome`` holds the XML and every TIFF is ``BinaryOnly``.
    ``filenames`` overrides the ``FileName`` written for each member, ``paths`` where each is
    written (for hostile sets).  Returns ``{"paths", "companion", "truth", "parts"}`` where
    ``truth`` is the whole (Z, Y, X) array and ``parts[i]`` what member i holds.
    """
    import os

    folder.mkdir(parents=True, exist_ok=True)
    ny, nx = shape
    names = [f"{stem}_{i}.ome.tif" for i in range(files)]
    filenames = filenames or list(names)
    paths = paths or [folder / n for n in names]
    uuids = [_uuid(f"{folder}/{n}") for n in names]
    master_uuid = _uuid(f"{folder}/{stem}.companion.ome") if companion else uuids[0]
    parts = [RNG.integers(1, 60000, (planes, ny, nx), dtype=np.uint16) for _ in range(files)]
    size = "" if physical_size is None else f' PhysicalSizeX="{physical_size}" PhysicalSizeY="{physical_size}"'
    tiffdata = "".join(
        f'<TiffData FirstZ="{i * planes}" IFD="0" PlaneCount="{planes}"><UUID FileName="{fn}">{u}</UUID></TiffData>'
        for i, (fn, u) in enumerate(zip(filenames, uuids, strict=True))
    )

    def full(own_uuid: str) -> str:
        return (
            f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="{OME_NS}" UUID="{own_uuid}">'
            f'<Image ID="Image:0" Name="{stem}"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint16" '
            f'SizeX="{nx}" SizeY="{ny}" SizeZ="{files * planes}" SizeC="1" SizeT="1"{size}>'
            f'<Channel ID="Channel:0:0" Name="ch0" SamplesPerPixel="1"/>{tiffdata}</Pixels></Image></OME>'
        )

    def binary_only(own_uuid: str, metadata_file: str) -> str:
        return (
            f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="{OME_NS}" UUID="{own_uuid}">'
            f'<BinaryOnly MetadataFile="{metadata_file}" UUID="{master_uuid}"/></OME>'
        )

    companion_path = folder / f"{stem}.companion.ome"
    for i, (path, data) in enumerate(zip(paths, parts, strict=True)):
        if companion:
            desc = binary_only(uuids[i], os.path.relpath(companion_path, path.parent))
        elif i == 0 or members == "full":
            desc = full(uuids[i])
        else:
            desc = binary_only(uuids[i], os.path.relpath(paths[0], path.parent))
        path.parent.mkdir(parents=True, exist_ok=True)
        opts: dict = {"tile": tile} if tile else {"rowsperstrip": 16}
        tifffile.imwrite(path, data, compression="zlib", photometric="minisblack", metadata=None, description=desc, **opts)
    if companion:
        companion_path.write_text(full(master_uuid))
    return {
        "paths": paths,
        "companion": companion_path if companion else None,
        "truth": np.concatenate(parts, axis=0),
        "parts": parts,
    }


def aperio_svs(path: Path, *, thumbnail: bool = True, levels: int = 3) -> dict:
    """An Aperio-like SVS as the scanner writes it: tiled level 0, a strip thumbnail page (when
    ``thumbnail``; without it the second page is a tiled level), tiled reduced levels, then a
    strip label and a strip macro page (NewSubfileType 1 and 9, described "label"/"macro").
    Returns ``{"levels", "thumbnail", "label", "macro"}`` (RGB arrays)."""
    ny, nx = 1024, 1536
    yy, xx = np.mgrid[0:ny, 0:nx]
    base = np.stack([(xx // 4) % 256, (yy // 4) % 256, (xx * 3 + yy) % 256], axis=-1).astype(np.uint8)
    pyr = [np.ascontiguousarray(base[:: 4**k, :: 4**k]) for k in range(levels)]
    lib = "Aperio Image Library v12.0.15 \n"
    head = f"{lib}{nx}x{ny} [0,0 {nx}x{ny}] (256x256) JPEG/RGB Q=70|AppMag = 20|MPP = 0.4990"
    thumb = np.ascontiguousarray(base[::8, ::8])
    label = RNG.integers(0, 255, (80, 96, 3), dtype=np.uint8)
    macro = RNG.integers(0, 255, (120, 300, 3), dtype=np.uint8)
    kw = {"photometric": "rgb", "metadata": None, "compression": "zlib"}
    with tifffile.TiffWriter(path) as tw:
        tw.write(pyr[0], tile=(256, 256), description=head, **kw)
        if thumbnail:
            tw.write(thumb, description=f"{lib}{nx}x{ny} -> {thumb.shape[1]}x{thumb.shape[0]} - |AppMag = 20", rowsperstrip=16, **kw)
        for lv in pyr[1:]:
            tw.write(lv, tile=(256, 256), description=f"{lib}{nx}x{ny} -> {lv.shape[1]}x{lv.shape[0]} - |AppMag = 20", **kw)
        tw.write(label, subfiletype=1, description=f"{lib}label {label.shape[1]}x{label.shape[0]}", rowsperstrip=16, **kw)
        tw.write(macro, subfiletype=9, description=f"{lib}macro {macro.shape[1]}x{macro.shape[0]}", rowsperstrip=16, **kw)
    return {"levels": pyr, "thumbnail": thumb if thumbnail else None, "label": label, "macro": macro}

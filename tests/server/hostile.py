"""Hostile files for the server and CLI tests, generated on the spot (never shipped).

Each writer puts a file or folder at ``path`` and returns what a leak would look like, where that
applies.  ``CANARY`` is the byte every pixel of a file *outside* the root holds: no answer may
ever contain it as a pixel value.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import tifffile

#: Pixel value of every canary file (outside the root); a leak shows it in ``values``.
CANARY = 0xAB
#: Bytes that open every canary file: they must never appear in a response body.
CANARY_MARK = b"CANARY-7f3e-outside-the-root"


def canary_bytes(size: int) -> bytes:
    """``size`` bytes starting with :data:`CANARY_MARK`, the rest :data:`CANARY`."""
    return (CANARY_MARK + bytes([CANARY]) * size)[:size]


def _ngff04(path: Path, shape: list[int], chunks: list[int], *, write_chunks: bool = True) -> None:
    """A hand-written single-level NGFF 0.4 image, axes (c, y, x), uint8, uncompressed, chunk
    files ``0/c/y/x`` each filled with 7."""
    path.mkdir(parents=True)
    (path / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
    axes = [{"name": "c", "type": "channel"}, {"name": "y", "type": "space"}, {"name": "x", "type": "space"}]
    multiscales = [
        {
            "version": "0.4",
            "axes": axes,
            "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 1, 1]}]}],
        }
    ]
    (path / ".zattrs").write_text(json.dumps({"multiscales": multiscales}))
    _array(path / "0", shape, chunks, write_chunks=write_chunks)


def _array(path: Path, shape: list[int], chunks: list[int], *, write_chunks: bool = True, fill: int = 7) -> None:
    path.mkdir(parents=True)
    meta = {
        "zarr_format": 2,
        "shape": shape,
        "chunks": chunks,
        "dtype": "|u1",
        "compressor": None,
        "fill_value": 0,
        "order": "C",
        "filters": None,
        "dimension_separator": "/",
    }
    (path / ".zarray").write_text(json.dumps(meta))
    if not write_chunks:
        return
    grid = [-(-s // c) for s, c in zip(shape, chunks, strict=True)]
    size = int(np.prod(chunks))
    for index in np.ndindex(*grid):
        chunk = path.joinpath(*map(str, index))
        chunk.parent.mkdir(parents=True, exist_ok=True)
        chunk.write_bytes(bytes([fill]) * size)


def zarr_chunk_linked_out(path: Path, outside: Path) -> None:
    """An OME-Zarr whose first chunk file is a symlink to a canary file outside the root."""
    _ngff04(path, [1, 64, 64], [1, 32, 32])
    canary = outside / "canary-chunk.bin"
    canary.write_bytes(canary_bytes(32 * 32))
    chunk = path / "0" / "0" / "0" / "0"
    chunk.unlink()
    chunk.symlink_to(canary)


def zarr_array_linked_out(path: Path, outside: Path) -> None:
    """An OME-Zarr whose array folder ``0`` is a symlink to another zarr's array outside."""
    _ngff04(path, [1, 64, 64], [1, 32, 32], write_chunks=False)
    other = outside / "other.ome.zarr" / "0"
    other.parent.mkdir(parents=True)
    _array(other, [1, 64, 64], [1, 32, 32], fill=CANARY)
    for chunk in other.rglob("*"):
        if chunk.is_file() and chunk.name != ".zarray":
            chunk.write_bytes(canary_bytes(32 * 32))
    for item in (path / "0").iterdir():
        item.unlink()
    (path / "0").rmdir()
    (path / "0").symlink_to(other, target_is_directory=True)


def _ome_xml(name: str, companion: str, uuid_master: str, uuid_companion: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" '
        f'UUID="{uuid_master}">'
        f'<Image ID="Image:0" Name="{name}">'
        '<Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint8" SizeX="64" SizeY="64" '
        'SizeC="2" SizeZ="1" SizeT="1" BigEndian="false">'
        '<Channel ID="Channel:0:0" SamplesPerPixel="1"/>'
        '<Channel ID="Channel:0:1" SamplesPerPixel="1"/>'
        '<TiffData FirstC="0" FirstZ="0" FirstT="0" IFD="0" PlaneCount="1">'
        f'<UUID FileName="{name}">{uuid_master}</UUID></TiffData>'
        '<TiffData FirstC="1" FirstZ="0" FirstT="0" IFD="0" PlaneCount="1">'
        f'<UUID FileName="{companion}">{uuid_companion}</UUID></TiffData>'
        "</Pixels></Image></OME>"
    )


def ome_tiff_companion_out(path: Path, outside_file: Path, file_name: str) -> None:
    """A two-channel OME-TIFF holding channel 0 and naming ``file_name`` (``../x.ome.tif`` or an
    absolute path) for channel 1; ``outside_file`` (outside the root) holds canary pixels."""
    master, other = "urn:uuid:8c9e0000-0000-4000-8000-000000000001", "urn:uuid:8c9e0000-0000-4000-8000-000000000002"
    plane = np.full((64, 64), CANARY, dtype=np.uint8)
    plane.flat[: len(CANARY_MARK)] = np.frombuffer(CANARY_MARK, dtype=np.uint8)
    binary_only = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" UUID="{other}">'
        f'<BinaryOnly MetadataFile="{path.name}" UUID="{master}"/></OME>'
    )
    tifffile.imwrite(outside_file, plane, description=binary_only, metadata=None)
    tifffile.imwrite(
        path,
        np.full((64, 64), 7, dtype=np.uint8),
        description=_ome_xml(path.name, file_name, master, other),
        metadata=None,
    )


def zarr_zero_chunks(path: Path) -> None:
    """An OME-Zarr whose chunk shape is 0 (a division by zero for a naive reader)."""
    _ngff04(path, [1, 64, 64], [1, 0, 0], write_chunks=False)


def zlib_bomb_tiff(path: Path, side: int = 1_000_000) -> None:
    """A small zlib TIFF whose header declares one ``side`` x ``side`` uint8 strip (1 TB for the
    default): whoever trusts the declaration allocates it."""
    tifffile.imwrite(path, np.zeros((16, 16), np.uint8), compression="zlib", rowsperstrip=16)
    with tifffile.TiffFile(path, mode="r+b") as tif:
        tags = tif.pages[0].tags
        for name in ("ImageWidth", "ImageLength", "RowsPerStrip"):
            tags[name].overwrite(side)


def fifo(path: Path) -> None:
    """A named pipe where a file is expected: opening it for reading blocks forever."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)


def zstd_rle_frame(total: int) -> bytes:
    """A valid zstd frame of ``total`` zero bytes made of RLE blocks: about 4 bytes per 128 KiB
    (48 KB for 1.6 GB), written by hand so the test never holds the decoded bytes itself."""
    out = bytearray((0xFD2FB528).to_bytes(4, "little"))
    out += bytes([0xC0, 0x38]) + total.to_bytes(8, "little")  # 8-byte content size; 128 KiB window
    block, left = 1 << 17, total
    while left > 0:
        n = min(block, left)
        left -= n
        header = (1 if left == 0 else 0) | (1 << 1) | (n << 3)  # last flag, type RLE, size
        out += header.to_bytes(3, "little") + b"\x00"
    return bytes(out)


def zarr_zstd_bomb(path: Path, side: int = 40_000) -> None:
    """An NGFF 0.5 image of one zstd chunk (1, side, side) uint8 that is ~48 KB on disk and
    1.6 GB decoded (for the default side)."""
    path.mkdir(parents=True)
    axes = [{"name": "c", "type": "channel"}, {"name": "y", "type": "space"}, {"name": "x", "type": "space"}]
    dataset = {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 1, 1]}]}
    group = {
        "zarr_format": 3,
        "node_type": "group",
        "attributes": {"ome": {"version": "0.5", "multiscales": [{"axes": axes, "datasets": [dataset]}]}},
    }
    (path / "zarr.json").write_text(json.dumps(group))
    array = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": [1, side, side],
        "data_type": "uint8",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1, side, side]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0,
        "codecs": [
            {"name": "bytes", "configuration": {"endian": "little"}},
            {"name": "zstd", "configuration": {"level": 0, "checksum": False}},
        ],
        "dimension_names": ["c", "y", "x"],
    }
    (path / "0").mkdir()
    (path / "0" / "zarr.json").write_text(json.dumps(array))
    chunk = path / "0" / "c" / "0" / "0" / "0"
    chunk.parent.mkdir(parents=True)
    chunk.write_bytes(zstd_rle_frame(side * side))

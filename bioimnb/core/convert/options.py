"""Conversion options: validated once, recorded in the output, reused by ``--resume``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import BioimnbError
from .downsample import METHODS

__all__ = ["COMPRESSIONS", "ConvertOptions"]

COMPRESSIONS = ("zstd", "blosc-lz4", "zlib", "none")
_DEFAULT_LEVEL = {"zstd": 3, "blosc-lz4": 5, "zlib": 6, "none": 0}


@dataclass
class ConvertOptions:
    to: str = "ome-zarr"
    """``ome-zarr`` or ``ome-tiff``."""
    ngff: str = "0.5"
    """NGFF version of OME-Zarr output: ``0.5`` (zarr v3, sharded) or ``0.4`` (zarr v2)."""
    scenes: list[int | str] | None = None
    """Scenes to convert (indices or names); all by default."""
    chunks: int = 512
    """Chunk edge in Y and X (chunks are 1 in T, C and Z: 2-D browsing reads one plane)."""
    shards: int | None = None
    """Shard edge in Y and X for NGFF 0.5 (default 8 chunks); ignored for 0.4."""
    compression: str | None = None
    """zstd, blosc-lz4, zlib or none; default zstd for OME-Zarr, zlib (deflate) for OME-TIFF."""
    compression_level: int | None = None
    downsample: str = "mean"
    """``mean`` for intensities, ``mode`` or ``nearest`` for label images."""
    levels: int | None = None
    """Number of pyramid levels; default: halve Y and X until a level fits a 256-pixel tile."""
    downsample_z: bool = False
    overwrite: bool = False
    resume: bool = False
    verify: bool = True
    workers: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self, source: object) -> ConvertOptions:
        def bad(reason: str) -> BioimnbError:
            return BioimnbError(source, reason)

        self.to = self.to.lower().replace("_", "-")
        if self.to in ("zarr", "omezarr", "ngff"):
            self.to = "ome-zarr"
        if self.to in ("tiff", "tif", "ometiff"):
            self.to = "ome-tiff"
        if self.to not in ("ome-zarr", "ome-tiff"):
            raise bad(f"unknown output format {self.to!r}; choose ome-zarr or ome-tiff")
        self.ngff = str(self.ngff)
        if self.ngff not in ("0.4", "0.5"):
            raise bad(f"unsupported NGFF version {self.ngff!r}; choose 0.4 or 0.5")
        if self.compression is None:
            self.compression = "zlib" if self.to == "ome-tiff" else "zstd"
        if self.compression not in COMPRESSIONS:
            raise bad(f"unknown compression {self.compression!r}; choose from {', '.join(COMPRESSIONS)}")
        if self.to == "ome-tiff" and self.compression == "blosc-lz4":
            raise bad("blosc-lz4 is not a TIFF compression; use zstd, zlib or none for OME-TIFF")
        if self.compression_level is None:
            self.compression_level = _DEFAULT_LEVEL[self.compression]
        if self.downsample not in METHODS:
            raise bad(f"unknown downsampling {self.downsample!r}; choose from {', '.join(METHODS)}")
        if not 16 <= int(self.chunks) <= 16384 or int(self.chunks) % 16:
            raise bad(f"chunk edge {self.chunks} must be a multiple of 16 between 16 and 16384")
        self.chunks = int(self.chunks)
        if self.shards is None:
            self.shards = self.chunks * 8 if self.ngff == "0.5" and self.to == "ome-zarr" else None
        if self.shards is not None:
            self.shards = int(self.shards)
            if self.shards % self.chunks:
                raise bad(f"shard edge {self.shards} must be a multiple of the chunk edge {self.chunks}")
        if self.levels is not None and not 1 <= int(self.levels) <= 32:
            raise bad(f"number of levels {self.levels} must be between 1 and 32")
        return self

    def recorded(self) -> dict[str, Any]:
        """What is stored in the output and reused on resume (not overwrite/resume themselves)."""
        d = asdict(self)
        for key in ("overwrite", "resume", "workers", "extra", "verify"):
            d.pop(key, None)
        return d

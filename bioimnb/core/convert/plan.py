"""The conversion plan: per scene, the output levels, chunk/shard grid and the work blocks."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..images import MultiscaleImage
from .options import ConvertOptions

__all__ = ["Block", "ScenePlan", "make_plan", "plate_layout"]


@dataclass(frozen=True)
class Block:
    """One unit of work: a (t, c, z) plane and a Y/X rectangle of one output level."""

    level: int
    t: int
    c: int
    z: int
    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def key(self) -> str:
        return f"{self.level}/{self.t}-{self.c}-{self.z}-{self.y0}-{self.x0}"


@dataclass
class ScenePlan:
    index: int
    name: str
    path: str
    """Group path of the scene's image in the output ("" for a single-scene image at the root)."""
    dtype: np.dtype
    shapes: list[tuple[int, int, int, int, int]]
    """Output TCZYX shape per level (RGB samples become channels)."""
    factors: list[tuple[int, int, int]] = field(default_factory=list)
    """(z, y, x) reduction of each level relative to the previous one (level 0: (1, 1, 1))."""
    chunks: tuple[int, int, int, int, int] = (1, 1, 1, 512, 512)
    block_edge: int = 2048
    samples: int = 1
    """RGB(A) samples per pixel in the source (folded into channels in the output)."""
    well: tuple[str, str] | None = None
    """(row, column) names when the scene is a field of an HCS plate well."""
    fused: int = 0
    """Levels 1..fused are computed in memory from each level-0 block, in the same task (each
    level-0 block maps onto whole chunks/shards of those levels); later levels are built from
    the previous level as written."""

    def chunks_for(self, level: int) -> tuple[int, ...]:
        shape = self.shapes[level]
        return (1, 1, 1, min(self.chunks[3], shape[3]), min(self.chunks[4], shape[4]))

    def shards_for(self, level: int, shard_edge: int | None) -> tuple[int, ...] | None:
        if shard_edge is None:
            return None
        ch = self.chunks_for(level)
        shape = self.shapes[level]
        if 0 < level <= self.fused:
            shard_edge = shard_edge >> level  # one shard per level-0 block at fused levels
        sy = min(shard_edge, math.ceil(shape[3] / ch[3]) * ch[3])
        sx = min(shard_edge, math.ceil(shape[4] / ch[4]) * ch[4])
        return (1, 1, 1, sy, sx)

    @property
    def task_levels(self) -> list[int]:
        """Levels that get tasks of their own (the fused ones ride along with level 0)."""
        return [0, *range(self.fused + 1, len(self.shapes))]

    def blocks(self, level: int) -> list[Block]:
        t, c, z, y, x = self.shapes[level]
        ch = self.chunks_for(level)
        edge_y = max(ch[3], (self.block_edge // ch[3]) * ch[3])
        edge_x = max(ch[4], (self.block_edge // ch[4]) * ch[4])
        out = []
        for ti, ci, zi in itertools.product(range(t), range(c), range(z)):
            for y0 in range(0, y, edge_y):
                for x0 in range(0, x, edge_x):
                    out.append(Block(level, ti, ci, zi, y0, min(y, y0 + edge_y), x0, min(x, x0 + edge_x)))
        return out

    def scale(self, level: int, base: tuple[float, float, float]) -> list[float]:
        """Physical scale (t, c, z, y, x) of a level, from the level-0 (z, y, x) sizes."""
        fz = fy = fx = 1
        for f in self.factors[1 : level + 1]:
            fz, fy, fx = fz * f[0], fy * f[1], fx * f[2]
        return [1.0, 1.0, base[0] * fz, base[1] * fy, base[2] * fx]


def _pick_scenes(img: MultiscaleImage, wanted: list[int | str] | None) -> list[int]:
    if not wanted:
        return list(range(len(img.scenes)))
    out = []
    for item in wanted:
        out.append(img.select_scene(item).scene_index)
    return sorted(set(out))


def _row_name(i: int, convention: Any) -> str:
    if str(getattr(convention, "value", convention)).lower() == "number":
        return str(i + 1)
    name = ""
    i += 1
    while i:
        i, rem = divmod(i - 1, 26)
        name = chr(65 + rem) + name
    return name


def plate_layout(img: MultiscaleImage) -> dict[str, Any] | None:
    """The HCS plate a source describes: ``{"name", "rows", "columns", "fields"}`` where
    ``fields[scene] = (row, column, field)``; None when the source is not one complete plate."""
    layout = getattr(img._backend, "plate_layout", None)
    if callable(layout):
        found = layout()
        if found is not None:
            return found
    try:
        ome = img.ome
    except Exception:  # noqa: BLE001 - no OME model, no plate
        return None
    if len(ome.plates) != 1 or not ome.images:
        return None
    plate = ome.plates[0]
    index = {im.id: i for i, im in enumerate(ome.images)}
    fields: dict[int, tuple[str, str, str]] = {}
    rows: set[tuple[int, str]] = set()
    cols: set[tuple[int, str]] = set()
    for well in plate.wells:
        r = _row_name(int(well.row), plate.row_naming_convention or "letter")
        c = _row_name(int(well.column), plate.column_naming_convention or "number")
        rows.add((int(well.row), r))
        cols.add((int(well.column), c))
        for n, sample in enumerate(sorted(well.well_samples, key=lambda s: s.index)):
            if sample.image_ref is None or sample.image_ref.id not in index:
                return None
            fields[index[sample.image_ref.id]] = (r, c, str(n))
    if sorted(fields) != list(range(len(img.scenes))):
        return None
    return {
        "name": plate.name or "plate",
        "rows": [name for _, name in sorted(rows)],
        "columns": [name for _, name in sorted(cols)],
        "fields": [fields[i] for i in range(len(img.scenes))],
    }


def make_plan(img: MultiscaleImage, opts: ConvertOptions) -> list[ScenePlan]:
    indices = _pick_scenes(img, opts.scenes)
    plate = plate_layout(img) if len(indices) == len(img.scenes) and len(indices) > 1 else None
    single = len(indices) == 1
    plans = []
    for n, index in enumerate(indices):
        scene = img.select_scene(index)
        shape = scene.shape
        samples = shape[5] if len(shape) > 5 else 1
        t, c, z, y, x = shape[:5]
        shapes = [(t, c * samples, z, y, x)]
        factors = [(1, 1, 1)]
        limit = opts.levels
        while True:
            last = shapes[-1]
            if limit is not None:
                if len(shapes) >= limit:
                    break
            elif max(last[3], last[4]) <= 256:
                break
            if max(last[3], last[4]) <= 1:
                break
            fz = 2 if opts.downsample_z and last[2] > 1 else 1
            fy = 2 if last[3] > 1 else 1
            fx = 2 if last[4] > 1 else 1
            shapes.append((last[0], last[1], math.ceil(last[2] / fz), math.ceil(last[3] / fy), math.ceil(last[4] / fx)))
            factors.append((fz, fy, fx))
        edge = opts.shards if opts.shards else max(opts.chunks, 2048 // opts.chunks * opts.chunks)
        fused = 0
        for k in range(1, len(shapes)):
            sub = edge >> k
            if factors[k] != (1, 2, 2) or edge % (1 << k) or sub < opts.chunks or sub % opts.chunks:
                break
            fused = k
        well = None
        path = "" if single else str(n)
        if plate is not None:
            row, col, field_name = plate["fields"][index]
            well = (row, col)
            path = f"{row}/{col}/{field_name}"
        plans.append(
            ScenePlan(
                index=index,
                name=scene.scene,
                path=path,
                well=well,
                dtype=scene.dtype,
                shapes=shapes,
                factors=factors,
                chunks=(1, 1, 1, opts.chunks, opts.chunks),
                block_edge=edge,
                samples=samples,
                fused=fused,
            )
        )
    return plans

"""The block pipeline both outputs share: write an NGFF hierarchy level by level on a
:mod:`bioimnb.core.jobs` executor, journal each block, check a resumed source, record provenance.

``engine`` (OME-Zarr output) and ``ometiff`` (its working pyramid) both build on this module;
neither imports the other's internals through it, so there is no import cycle.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import BioimnbError
from ..images import MultiscaleImage
from ..jobs import (
    Cancelled,
    Executor,
    Journal,
    Progress,
    Runner,
    Task,
    changed,
    identity,
    provenance,
    run_tasks,
)
from ..storage import Resolved, resolve, storage_errors
from .ngff import codecs_for, image_attrs, window_for, wrap
from .options import ConvertOptions
from .plan import ScenePlan, make_plan
from .stores import open_store
from .work import Job, forget, run_block, source_digest

__all__ = [
    "ConversionCancelled",
    "ConversionReport",
    "Progress",
    "SourceChanged",
    "ZarrRun",
    "bytes_stored",
    "plane_digests",
    "provenance_record",
    "InMemory",
    "source_facts",
    "zarr_state",
]

RESUME_SAMPLE = 8
"""Level-0 blocks kept from an interrupted run that are re-read from the source (and compared
with the journal) before a resume writes anything."""


class ConversionCancelled(Cancelled):
    """The conversion was cancelled; the output is marked incomplete and can be resumed."""


class SourceChanged(BioimnbError):
    """The source differs from the one an interrupted conversion started from."""


@dataclass
class ConversionReport:
    source: str
    dest: str
    format: str
    scenes: list[dict[str, Any]]
    bytes_in: int
    bytes_raw: int
    bytes_out: int
    seconds: float
    checks: list[str] = field(default_factory=list)
    resumed_blocks: int = 0
    written_blocks: int = 0
    notes: list[str] = field(default_factory=list)
    """What the output does not carry over from the source, and why (label images an OME-TIFF
    cannot hold, a label on another grid)."""

    @property
    def ratio(self) -> float:
        return self.bytes_raw / self.bytes_out if self.bytes_out else float("nan")

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["ratio"] = round(self.ratio, 3) if self.bytes_out else None
        return d

    def summary(self) -> str:
        mb = 2**20
        lines = [
            f"{self.source} -> {self.dest} ({self.format})",
            f"  {len(self.scenes)} scene(s); {self.written_blocks} blocks written"
            + (f", {self.resumed_blocks} kept from an earlier run" if self.resumed_blocks else ""),
            f"  in {self.bytes_in / mb:.1f} MiB stored ({self.bytes_raw / mb:.1f} MiB raw), out {self.bytes_out / mb:.1f} MiB,"
            f" ratio {self.ratio:.2f}x raw, {self.seconds:.1f} s",
        ]
        lines += [f"  check: {c}" for c in self.checks]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


@dataclass(frozen=True)
class InMemory:
    """The source of a conversion of an in-memory image (an array, a DataArray, a BioImage): no
    storage behind it.  ``url`` is the key under which the block tasks reopen it
    (:func:`bioimnb.core.readers.memory.register`)."""

    url: str
    nbytes: int
    local: bool = False


def source_facts(res: Resolved | InMemory) -> dict[str, Any]:
    if isinstance(res, InMemory):
        return {"size": res.nbytes, "mtime": None}
    facts = provenance("", res)
    return {"size": facts["size"], "mtime": facts["mtime"]}


def provenance_record(img: MultiscaleImage, src_res: Resolved | InMemory, opts: ConvertOptions) -> dict[str, Any]:
    """Where an output came from: source (no credentials), its size and mtime, tool, options, time.
    An in-memory source is named by its kind and name, with its shape and dtype."""
    if isinstance(src_res, InMemory):
        shape = [list(img.select_scene(i).shape) for i in range(len(img.scenes))]
        return provenance(
            f"in-memory {img.reader} image {img.source!r}",
            None,
            size=src_res.nbytes,
            source_format=img.format,
            source_shape=shape[0] if len(shape) == 1 else shape,
            source_dtype=str(img.dtype),
            options=opts.recorded(),
        )
    return provenance(src_res.url if src_res.local else img.source, src_res, source_format=img.format, options=opts.recorded())


def bytes_stored(res: Resolved) -> int:
    with storage_errors(res.url):
        if res.local and os.path.isfile(res.path):
            return os.path.getsize(res.path)
        try:
            return int(res.fs.du(res.path))
        except FileNotFoundError:
            return 0


def plane_digests(journal: dict[str, str], scene_index: int) -> dict[str, str]:
    """Per (t, c, z) plane: a digest over its level-0 block digests in grid order."""
    planes: dict[str, list[tuple[int, int, str]]] = {}
    prefix = f"{scene_index}/0/"
    for key, digest in journal.items():
        if not key.startswith(prefix):
            continue
        t, c, z, y0, x0 = key[len(prefix) :].split("-")
        planes.setdefault(f"{t}-{c}-{z}", []).append((int(y0), int(x0), digest))
    out = {}
    for plane, blocks in planes.items():
        h = hashlib.sha256()
        for _, _, d in sorted(blocks):
            h.update(d.encode())
        out[plane] = h.hexdigest()
    return out


def options_json(options: dict[str, Any]) -> str:
    return json.dumps(options, sort_keys=True, default=str)


def zarr_state(run_dest: str, options: dict[str, Any]) -> dict[str, Any] | None:
    import zarr

    try:
        root = zarr.open_group(open_store(run_dest, options, read_only=True), mode="r")
    except Exception:  # noqa: BLE001 - not a zarr group
        return None
    state = root.attrs.get("bioimnb")
    return dict(state) if isinstance(state, dict) else None


def source_identity(img: MultiscaleImage, source_options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Size and mtime (or ETag) of every file of the source's file set, keyed by path."""
    out: dict[str, dict[str, Any]] = {}
    for f in img.files:
        try:
            res = resolve(f, **source_options)
            out.update(identity(res, [res.path]))
        except BioimnbError:
            out[f] = {"unavailable": True}  # recorded as such: a resume sees it if that changes
    return out


def release_memory() -> None:
    """Hand the heap memory freed by the finished phase back to the system (glibc keeps freed
    blocks in its per-thread arenas; the next phase allocates differently sized buffers, so
    without this the peak RSS is the sum of both phases' buffers, not the larger)."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim): nothing to do
        pass


class ZarrRun:
    """One run of the block pipeline into an NGFF hierarchy (the output, or OME-TIFF's work pyramid)."""

    def __init__(
        self,
        source: str,
        dest: str,
        opts: ConvertOptions,
        source_options: dict[str, Any],
        dest_options: dict[str, Any],
        scheduler: Any,
        progress: Callable[[Progress], None] | None,
        cancel: Any,
    ) -> None:
        self.source = source
        self.dest = dest
        self.opts = opts
        self.source_options = source_options
        self.dest_options = dest_options
        self.scheduler = scheduler
        self.progress_cb = progress
        self.cancel = cancel
        self.start = time.monotonic()
        self.kept_ids: list[str] = []
        """Level-0 block ids finished by an earlier run (verification re-reads them from the source)."""
        self._executor: Executor | None = None
        self.source_version = ""
        """Digest of the source's identity at the start of this run (see :class:`work.Job`)."""

    @property
    def executor(self) -> Executor:
        """One executor for the whole run (writing, then verification): the same worker threads
        reuse their memory instead of new threads growing new malloc arenas."""
        if self._executor is None or (self._executor.pool is not None and self._executor.pool._shutdown):
            self._executor = Executor(self.scheduler, self.opts.workers, name="bioimnb-convert")
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.close()
            self._executor = None

    def source_job(self, plan: ScenePlan) -> Job:
        base = plan.path + "/" if plan.path else ""
        return Job(
            source=self.source,
            source_options=options_json(self.source_options),
            scene=plan.index,
            samples=plan.samples,
            dest=self.dest,
            dest_options=options_json(self.dest_options),
            array_path=f"{base}0",
            prev_path=None,
            factors=(1, 1, 1),
            method=self.opts.downsample,
            source_version=self.source_version,
        )

    def check_source(self, executor: Executor, plans: list[ScenePlan], done: dict[str, str], ids: list[str]) -> int:
        """Re-read the level-0 blocks ``ids`` from the source and compare them with the digests
        an earlier run journalled; raises :class:`SourceChanged` on the first difference."""
        by_key = {f"{p.index}/{b.key}": (p, b) for p in plans for b in p.blocks(0)}
        tasks = [Task(i, source_digest, (self.source_job(by_key[i][0]), by_key[i][1])) for i in ids if i in by_key]
        compared = 0
        try:
            for task, digest in run_tasks(executor, tasks):
                compared += 1
                if digest != done.get(task.id):
                    raise SourceChanged(
                        self.source,
                        f"changed since the interrupted conversion (block {task.id} of level 0 differs from what was written); "
                        "refusing to mix two versions: start again with overwrite=True (--overwrite)",
                    )
        except BaseException:
            executor.close(cancel=True)
            raise
        return compared

    def run_zarr(self, img: MultiscaleImage, res: Resolved) -> tuple[list[ScenePlan], dict[str, str], int, int]:
        """Write the NGFF hierarchy; returns (plans, journal, blocks written, blocks kept)."""

        opts = self.opts
        plans = make_plan(img, opts)
        journal = Journal(res)
        inputs = source_identity(img, self.source_options)
        self.source_version = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()
        store = open_store(self.dest, self.dest_options)
        zarr_format = 3 if opts.ngff == "0.5" else 2
        total = sum(len(p.blocks(k)) for p in plans for k in p.task_levels)
        executor = self.executor
        runner = Runner(
            executor,
            journal=journal,
            resume=opts.resume,
            progress=self.progress_cb,
            cancel=self.cancel,
            total=total,
            source=self.dest,
            cancelled=ConversionCancelled,
            interrupted_reason="interrupted; the output is marked incomplete, resume it with resume=True (--resume)",
            cancelled_reason="cancelled; the output is marked incomplete, resume it with resume=True (--resume)",
        )
        runner.start = self.start
        try:
            return self._run_levels(img, res, plans, journal, inputs, store, zarr_format, runner)
        except BaseException:
            executor.close(cancel=True)
            raise

    def _run_levels(
        self,
        img: MultiscaleImage,
        res: Resolved,
        plans: list[ScenePlan],
        journal: Journal,
        inputs: dict[str, dict[str, Any]],
        store: Any,
        zarr_format: int,
        runner: Runner,
    ) -> tuple[list[ScenePlan], dict[str, str], int, int]:
        import zarr

        opts = self.opts
        executor = runner.executor
        done = runner.done
        if done:
            recorded = journal.get("inputs")
            why = changed(recorded, inputs) if recorded is not None else None
            if why is not None:
                raise SourceChanged(self.source, f"changed since the interrupted conversion ({why}); refusing to resume: start again with overwrite=True (--overwrite)")
            level0 = sorted(k for k in done if k.split("/")[1:2] == ["0"])
            self.kept_ids = level0
            if RESUME_SAMPLE > 0:
                step = max(1, len(level0) // RESUME_SAMPLE)
                self.check_source(executor, plans, done, level0[::step][:RESUME_SAMPLE])
        if not done and not self._has_root(store):
            self._create(img, plans, store, zarr_format)  # mode "w": clears the folder, journal included
        if not done:
            journal.put("inputs", inputs)
        root = zarr.open_group(store, mode="r+")
        forget(self.dest)
        dest_json = options_json(self.dest_options)
        src_json = options_json(self.source_options)
        kept = runner.kept(f"{p.index}/{b.key}" for p in plans for k in p.task_levels for b in p.blocks(k))
        for plan in plans:
            base = plan.path + "/" if plan.path else ""
            for level in plan.task_levels:
                job = Job(
                    source=self.source,
                    source_options=src_json,
                    scene=plan.index,
                    samples=plan.samples,
                    dest=self.dest,
                    dest_options=dest_json,
                    array_path=f"{base}{level}",
                    prev_path=None if level == 0 else f"{base}{level - 1}",
                    factors=plan.factors[level],
                    method=opts.downsample,
                    fused_paths=tuple(f"{base}{k}" for k in range(1, plan.fused + 1)) if level == 0 else (),
                    source_version=self.source_version,
                )
                tasks = (Task(f"{plan.index}/{b.key}", run_block, (job, b)) for b in plan.blocks(level))
                for _ in runner.run(tasks, f"scene {plan.index} level {level}", measure=lambda r: (r[1] or "-", r[2])):
                    pass
                release_memory()
        del root
        return plans, done, runner.written, kept

    @staticmethod
    def _has_root(store: Any) -> bool:
        import zarr

        try:
            zarr.open_group(store, mode="r")
            return True
        except Exception:  # noqa: BLE001 - any failure means there is no usable root yet
            return False

    def status_attrs(self, status: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        from ..version import VERSION

        d: dict[str, Any] = {"status": status, "version": VERSION, "options": self.opts.recorded()}
        if extra:
            d.update(extra)
        return d

    def _create(self, img: MultiscaleImage, plans: list[ScenePlan], store: Any, zarr_format: int) -> None:
        import zarr

        opts = self.opts
        root = zarr.open_group(store, mode="w", zarr_format=zarr_format)  # type: ignore[arg-type]
        multi = len(plans) > 1 or plans[0].path != ""
        is_plate = all(p.well is not None for p in plans)
        attrs: dict[str, Any] = {}
        if is_plate:
            attrs = wrap({"plate": _plate_attrs(img, plans, opts)}, opts.ngff)
            for row, col in dict.fromkeys(p.well for p in plans if p.well):
                fields = [p.path.rsplit("/", 1)[-1] for p in plans if p.well == (row, col)]
                well_attrs: dict[str, Any] = {"images": [{"path": f} for f in fields]}
                if opts.ngff == "0.4":
                    well_attrs["version"] = "0.4"
                root.require_group(f"{row}/{col}").attrs.update(wrap({"well": well_attrs}, opts.ngff))
        elif multi:
            attrs = wrap({"bioformats2raw.layout": 3}, opts.ngff)
        attrs["bioimnb"] = self.status_attrs("incomplete")
        for plan in plans:
            scene = img.select_scene(plan.index)
            group = root.require_group(plan.path) if plan.path else root
            for level, shape in enumerate(plan.shapes):
                kwargs: dict[str, Any] = codecs_for(opts, plan.dtype)
                if zarr_format == 3:
                    kwargs["dimension_names"] = ["t", "c", "z", "y", "x"]
                    shards = plan.shards_for(level, opts.shards)
                    if shards is not None:
                        kwargs["shards"] = shards
                else:
                    kwargs["chunk_key_encoding"] = {"name": "v2", "separator": "/"}
                group.create_array(
                    str(level),
                    shape=shape,
                    dtype=plan.dtype,
                    chunks=plan.chunks_for(level),
                    fill_value=0,
                    overwrite=True,
                    **kwargs,
                )
            image = wrap(image_attrs(plan, scene.physical_size, scene.channels, opts), opts.ngff)
            if plan.path:
                group.attrs.update(image)
            else:
                attrs.update(image)
        root.attrs.update(attrs)
        if multi and not is_plate:
            ome = root.require_group("OME")
            ome.attrs.update(wrap({"series": [p.path for p in plans]}, opts.ngff))

    def finish_zarr(self, img: MultiscaleImage, res: Resolved, plans: list[ScenePlan], journal: dict[str, str], provenance: dict[str, Any]) -> None:
        import zarr

        store = open_store(self.dest, self.dest_options)
        root: Any = zarr.open_group(store, mode="r+")
        for plan in plans:
            group = root[plan.path] if plan.path else root
            coarse = np.asarray(group[str(len(plan.shapes) - 1)][...])
            windows = [window_for(coarse[:, c]) for c in range(coarse.shape[1])]
            scene = img.select_scene(plan.index)
            image = wrap(image_attrs(plan, scene.physical_size, scene.channels, self.opts, windows), self.opts.ngff)
            group.attrs.update(image)
        if len(plans) > 1 or plans[0].path:
            xml = _ome_xml_for(img, plans)
            target = res.path.rstrip("/") + "/OME/METADATA.ome.xml"
            with storage_errors(self.dest):
                if res.local:
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                res.fs.pipe_file(target, xml.encode("utf-8"))
        checksums = {str(p.index): plane_digests(journal, p.index) for p in plans}
        root.attrs["bioimnb"] = self.status_attrs("incomplete", {"provenance": provenance, "checksums": checksums})

    def mark_complete(self) -> None:
        import zarr

        root: Any = zarr.open_group(open_store(self.dest, self.dest_options), mode="r+")
        attrs = dict(root.attrs.get("bioimnb", {}))
        attrs["status"] = "complete"
        root.attrs["bioimnb"] = attrs

    def verify_kept(self, plans: list[ScenePlan], journal: dict[str, str]) -> int:
        """Verification of a resumed run: the level-0 blocks an earlier run wrote are compared
        with the source as it reads now (not only with the journal)."""
        if not self.kept_ids:
            return 0
        return self.check_source(self.executor, plans, journal, self.kept_ids)


def _plate_attrs(img: MultiscaleImage, plans: list[ScenePlan], opts: ConvertOptions) -> dict[str, Any]:
    from .plan import plate_layout

    layout = plate_layout(img) or {}
    rows = [r for r in layout.get("rows", []) if any(p.well and p.well[0] == r for p in plans)]
    cols = [c for c in layout.get("columns", []) if any(p.well and p.well[1] == c for p in plans)]
    wells = []
    for row, col in dict.fromkeys(p.well for p in plans if p.well):
        wells.append({"path": f"{row}/{col}", "rowIndex": rows.index(row), "columnIndex": cols.index(col)})
    per_well: dict[tuple[str, str], int] = {}
    for p in plans:
        if p.well:
            per_well[p.well] = per_well.get(p.well, 0) + 1
    plate: dict[str, Any] = {
        "name": str(layout.get("name") or "plate"),
        "rows": [{"name": r} for r in rows],
        "columns": [{"name": c} for c in cols],
        "wells": wells,
        "field_count": max(per_well.values()),
    }
    if opts.ngff == "0.4":
        plate["version"] = "0.4"
    return plate


def _ome_xml_for(img: MultiscaleImage, plans: list[ScenePlan]) -> str:
    """The full OME-XML of the source restricted to the converted scenes."""
    from ..metadata.ome import synthesize_ome

    ome = img.ome
    if len(ome.images) >= len(img.scenes):
        picked = ome.model_copy(deep=True)
        picked.images = [ome.images[p.index] for p in plans]
        return picked.to_xml()
    scenes = [img.select_scene(p.index) for p in plans]
    return synthesize_ome([(s.scene, s.shape, s.dtype, s.physical_size, s.channels) for s in scenes]).to_xml()


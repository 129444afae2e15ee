"""``convert``: plan, write level by level, journal, verify, record provenance.

The output is marked incomplete (``attrs["bioimnb"]["status"] = "incomplete"``) from the moment
its metadata exists until every block is written and verified.  Each finished block leaves a
journal entry (its level-0 checksum), so ``resume=True`` skips finished blocks after Ctrl-C, a
kernel restart or kill -9, and verification compares what was read from the source with what
reads back from the output.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as _dt
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import BioimnbError, CorruptFile
from ..images import MultiscaleImage, open_image
from ..storage import Resolved, resolve, storage_errors
from .ngff import codecs_for, image_attrs, window_for, wrap
from .options import ConvertOptions
from .plan import Block, ScenePlan, make_plan
from .stores import open_store
from .work import Job, forget, run_block, verify_block

__all__ = ["ConversionCancelled", "ConversionReport", "Progress", "convert"]

JOURNAL = ".bioimnb/journal"


class ConversionCancelled(BioimnbError):
    """The conversion was cancelled; the output is marked incomplete and can be resumed."""


@dataclass
class Progress:
    phase: str
    done: int
    total: int
    bytes_done: int
    elapsed: float

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    @property
    def eta(self) -> float | None:
        if not self.done or self.done >= self.total:
            return None if self.done < self.total else 0.0
        return self.elapsed / self.done * (self.total - self.done)


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
        return "\n".join(lines)


# -- executors -----------------------------------------------------------------------------


class _Executor:
    def __init__(self, scheduler: Any, workers: int | None) -> None:
        self.client = None
        self.pool: cf.ThreadPoolExecutor | None = None
        if scheduler in (None, "threads", "local"):
            self.workers = workers or max(1, os.cpu_count() or 1)
            self.pool = cf.ThreadPoolExecutor(self.workers, thread_name_prefix="bioimnb-convert")
        elif scheduler in ("synchronous", "sync"):
            self.workers = 1
            self.pool = cf.ThreadPoolExecutor(1, thread_name_prefix="bioimnb-convert")
        else:
            from distributed import Client

            self.client = scheduler if isinstance(scheduler, Client) else Client(scheduler, set_as_default=False)
            self._own_client = not isinstance(scheduler, Client)
            info = self.client.scheduler_info()
            self.workers = max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.client is not None:
            return self.client.submit(fn, *args, pure=False)
        assert self.pool is not None
        return self.pool.submit(fn, *args)

    def wait_any(self, futures: set[Any]) -> tuple[set[Any], set[Any]]:
        if self.client is not None:
            from distributed import wait

            with self.client.as_current():
                res = wait(list(futures), return_when="FIRST_COMPLETED")
            return set(res.done), set(res.not_done)
        done, pending = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
        return set(done), set(pending)

    def close(self, cancel: bool = False) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=cancel)
        if self.client is not None and getattr(self, "_own_client", False):
            self.client.close()


# -- journal ------------------------------------------------------------------------------


class _Journal:
    def __init__(self, res: Resolved) -> None:
        self.res = res
        self.root = res.path.rstrip("/") + "/" + JOURNAL

    def load(self) -> dict[str, str]:
        fs = self.res.fs
        with storage_errors(self.res.url):
            if not fs.exists(self.root):
                return {}
            files = fs.find(self.root)
            contents = fs.cat(files) if files else {}
        out = {}
        for path, data in contents.items():
            rel = path[len(self.root.lstrip("/")) :] if not path.startswith(self.root) else path[len(self.root) :]
            out[rel.strip("/")] = data.decode() if isinstance(data, bytes) else str(data)
        return out

    def mark(self, key: str, digest: str) -> None:
        path = f"{self.root}/{key}"
        fs = self.res.fs
        if self.res.local:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = path + ".tmp"
            with open(tmp, "w") as fh:
                fh.write(digest)
            os.replace(tmp, path)
        else:
            fs.pipe_file(path, digest.encode())

    def clear(self) -> None:
        fs = self.res.fs
        base = self.res.path.rstrip("/") + "/.bioimnb"
        with storage_errors(self.res.url):
            if fs.exists(base):
                fs.rm(base, recursive=True)


# -- helpers ------------------------------------------------------------------------------


def _same_or_nested(a: Resolved, b: Resolved) -> bool:
    if a.local != b.local:
        return False
    if a.local:
        pa, pb = os.path.realpath(a.path), os.path.realpath(b.path)
    else:
        if a.url.split("://")[0] != b.url.split("://")[0]:
            return False
        pa, pb = a.path.rstrip("/"), b.path.rstrip("/")
    return pa == pb or pa.startswith(pb + "/") or pb.startswith(pa + "/")


def _source_facts(res: Resolved) -> dict[str, Any]:
    with storage_errors(res.url):
        info = res.fs.info(res.path)
        size = int(info.get("size") or 0)
        if info.get("type") == "directory":
            size = int(res.fs.du(res.path)) if res.local else 0
    mtime = info.get("mtime") or info.get("LastModified") or info.get("last_modified")
    if isinstance(mtime, (int, float)):
        mtime = _dt.datetime.fromtimestamp(mtime, _dt.UTC).isoformat()
    return {"size": size, "mtime": str(mtime) if mtime is not None else None}


def _options_json(options: dict[str, Any]) -> str:
    return json.dumps(options, sort_keys=True, default=str)


def provenance_record(img: MultiscaleImage, src_res: Resolved, opts: ConvertOptions) -> dict[str, Any]:
    """Where an output came from: source (no credentials), its size and mtime, tool, options, time."""
    from ..version import VERSION as __version__

    return {
        "source": src_res.url if src_res.local else img.source,
        **_source_facts(src_res),
        "source_format": img.format,
        "tool": f"bioimnb {__version__}",
        "options": opts.recorded(),
        "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def _plane_digests(journal: dict[str, str], scene_index: int) -> dict[str, str]:
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


# -- the conversion -----------------------------------------------------------------------


class _Run:
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

    # .. progress and cancellation ..
    def _emit(self, phase: str, done: int, total: int, nbytes: int) -> None:
        if self.progress_cb is not None:
            self.progress_cb(Progress(phase, done, total, nbytes, time.monotonic() - self.start))

    def _cancelled(self) -> bool:
        return bool(self.cancel is not None and self.cancel.is_set())

    def run_zarr(self, img: MultiscaleImage, res: Resolved) -> tuple[list[ScenePlan], dict[str, str], int, int]:
        """Write the NGFF hierarchy; returns (plans, journal, blocks written, blocks kept)."""
        import zarr

        opts = self.opts
        plans = make_plan(img, opts)
        journal = _Journal(res)
        done = journal.load() if opts.resume else {}
        store = open_store(self.dest, self.dest_options)
        zarr_format = 3 if opts.ngff == "0.5" else 2
        if not done and not self._has_root(store):
            self._create(img, plans, store, zarr_format)
        root = zarr.open_group(store, mode="r+")
        forget(self.dest)
        dest_json = _options_json(self.dest_options)
        src_json = _options_json(self.source_options)
        total = sum(len(p.blocks(k)) for p in plans for k in p.task_levels)
        kept = sum(1 for p in plans for k in p.task_levels for b in p.blocks(k) if f"{p.index}/{b.key}" in done)
        count = kept
        nbytes = 0
        written = 0
        executor = _Executor(self.scheduler, opts.workers)
        try:
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
                    )
                    todo = [b for b in plan.blocks(level) if f"{plan.index}/{b.key}" not in done]
                    for key, digest, n in self._run_blocks(executor, job, todo):
                        journal.mark(f"{plan.index}/{key}", digest or "-")
                        done[f"{plan.index}/{key}"] = digest or "-"
                        count += 1
                        written += 1
                        nbytes += n
                        self._emit(f"scene {plan.index} level {level}", count, total, nbytes)
        except KeyboardInterrupt:
            executor.close(cancel=True)
            raise ConversionCancelled(self.dest, "interrupted; the output is marked incomplete, resume it with --resume") from None
        except BaseException:
            executor.close(cancel=True)
            raise
        executor.close()
        del root
        return plans, done, written, kept

    def _run_blocks(self, executor: _Executor, job: Job, blocks: list[Block]) -> Iterable[tuple[str, str, int]]:
        limit = max(2, executor.workers * 2)
        pending: set[Any] = set()
        it = iter(blocks)
        exhausted = False
        while pending or not exhausted:
            while not exhausted and len(pending) < limit:
                if self._cancelled():
                    exhausted = True
                    break
                nxt = next(it, None)
                if nxt is None:
                    exhausted = True
                    break
                pending.add(executor.submit(run_block, job, nxt))
            if not pending:
                break
            finished, pending = executor.wait_any(pending)
            for fut in finished:
                yield fut.result()
        if self._cancelled():
            raise ConversionCancelled(self.dest, "cancelled; the output is marked incomplete, resume it with --resume")

    @staticmethod
    def _has_root(store: Any) -> bool:
        import zarr

        try:
            zarr.open_group(store, mode="r")
            return True
        except Exception:  # noqa: BLE001 - any failure means there is no usable root yet
            return False

    def _status_attrs(self, status: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        from ..version import VERSION as __version__

        d: dict[str, Any] = {"status": status, "version": __version__, "options": self.opts.recorded()}
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
        attrs["bioimnb"] = self._status_attrs("incomplete")
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
        checksums = {str(p.index): _plane_digests(journal, p.index) for p in plans}
        root.attrs["bioimnb"] = self._status_attrs(
            "incomplete", {"provenance": provenance, "checksums": checksums}
        )

    def mark_complete(self) -> None:
        import zarr

        root: Any = zarr.open_group(open_store(self.dest, self.dest_options), mode="r+")
        attrs = dict(root.attrs.get("bioimnb", {}))
        attrs["status"] = "complete"
        root.attrs["bioimnb"] = attrs


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
    from ..ome import synthesize_ome

    ome = img.ome
    if len(ome.images) >= len(img.scenes):
        picked = ome.model_copy(deep=True)
        picked.images = [ome.images[p.index] for p in plans]
        return picked.to_xml()
    scenes = [img.select_scene(p.index) for p in plans]
    return synthesize_ome([(s.scene, s.shape, s.dtype, s.physical_size, s.channels) for s in scenes]).to_xml()


def _verify_zarr(run: _Run, plans: list[ScenePlan], journal: dict[str, str]) -> list[str]:
    """Re-read level 0 of the output, block by block on the executor, and compare with the
    checksums taken from the source while converting."""
    checks = []
    dest_json = _options_json(run.dest_options)
    forget(run.dest)
    mismatches = []
    compared = 0
    executor = _Executor(run.scheduler, run.opts.workers)
    try:
        for plan in plans:
            base = plan.path + "/" if plan.path else ""
            job = Job(
                source=run.source,
                source_options="{}",
                scene=plan.index,
                samples=plan.samples,
                dest=run.dest,
                dest_options=dest_json,
                array_path=f"{base}0",
                prev_path=None,
                factors=(1, 1, 1),
                method=run.opts.downsample,
            )
            pending = {executor.submit(verify_block, job, b) for b in plan.blocks(0)}
            while pending:
                finished, pending = executor.wait_any(pending)
                for fut in finished:
                    key, got = fut.result()
                    compared += 1
                    if journal.get(f"{plan.index}/{key}") != got:
                        why = f" ({got})" if got.startswith("unreadable") else ""
                        mismatches.append(f"scene {plan.index} block {key}{why}")
    finally:
        executor.close()
    if mismatches:
        raise CorruptFile(run.dest, f"verification failed: {len(mismatches)} level-0 block(s) differ from the source, first {mismatches[0]}")
    planes = sum(len(_plane_digests(journal, p.index)) for p in plans)
    checks.append(f"level-0 checksums: {planes} plane(s), {compared} block(s) equal to the source")
    checks.append(_validate_ngff(run, plans))
    return checks


def _validate_ngff(run: _Run, plans: list[ScenePlan]) -> str:
    import zarr

    if run.opts.ngff == "0.5":
        from ome_zarr_models.v05 import Image
    else:
        from ome_zarr_models.v04 import Image  # type: ignore[assignment]
    root: Any = zarr.open_group(open_store(run.dest, run.dest_options, read_only=True), mode="r")
    try:
        for plan in plans:
            Image.from_zarr(root[plan.path] if plan.path else root)
        if all(p.well is not None for p in plans):
            if run.opts.ngff == "0.5":
                from ome_zarr_models.v05 import HCS
            else:
                from ome_zarr_models.v04 import HCS  # type: ignore[assignment]
            HCS.from_zarr(root)
            return f"ome-zarr-models v{run.opts.ngff.replace('.', '')} validation passed ({len(plans)} image(s) in an HCS plate)"
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CorruptFile(run.dest, f"output fails OME-Zarr {run.opts.ngff} validation ({first})") from exc
    return f"ome-zarr-models v{run.opts.ngff.replace('.', '')} validation passed ({len(plans)} image(s))"


def _bytes_stored(res: Resolved) -> int:
    with storage_errors(res.url):
        if res.local and os.path.isfile(res.path):
            return os.path.getsize(res.path)
        try:
            return int(res.fs.du(res.path))
        except FileNotFoundError:
            return 0


def convert(
    source: str | os.PathLike[str] | MultiscaleImage,
    dest: str | os.PathLike[str],
    *,
    to: str | None = None,
    ngff: str = "0.5",
    scenes: list[int | str] | None = None,
    chunks: int = 512,
    shards: int | None = None,
    compression: str | None = None,
    compression_level: int | None = None,
    downsample: str = "mean",
    levels: int | None = None,
    downsample_z: bool = False,
    overwrite: bool = False,
    resume: bool = False,
    verify: bool = True,
    scheduler: Any = None,
    workers: int | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: Any = None,
    source_options: dict[str, Any] | None = None,
    dest_options: dict[str, Any] | None = None,
    **storage_options: Any,
) -> ConversionReport:
    """Convert any readable image to OME-Zarr (NGFF 0.4/0.5) or pyramidal OME-TIFF.

    Never modifies the source; refuses an existing destination unless ``overwrite`` (start again)
    or ``resume`` (finish an interrupted conversion, keeping finished blocks).  ``scheduler`` is
    ``None`` (local threads), ``"synchronous"``, a ``dask.distributed`` scheduler address or
    ``Client``.  ``progress`` receives :class:`Progress` updates; ``cancel`` is any object with
    ``is_set()`` (a ``threading.Event``).  ``storage_options`` apply to both ends unless
    ``source_options`` / ``dest_options`` are given.
    """
    if isinstance(source, MultiscaleImage):
        source = source.source
    source = os.fspath(source)
    dest = os.fspath(dest)
    src_opts = dict(source_options if source_options is not None else storage_options)
    dst_opts = dict(dest_options if dest_options is not None else storage_options)
    if not dest:
        raise BioimnbError(dest, "no destination given")
    if to is None:
        to = "ome-tiff" if dest.lower().rstrip("/").endswith((".tif", ".tiff", ".btf", ".tf2", ".tf8")) else "ome-zarr"
    opts = ConvertOptions(
        to=to,
        ngff=str(ngff),
        scenes=list(scenes) if scenes else None,
        chunks=chunks,
        shards=shards,
        compression=compression,
        compression_level=compression_level,
        downsample=downsample,
        levels=levels,
        downsample_z=downsample_z,
        overwrite=overwrite,
        resume=resume,
        verify=verify,
        workers=workers,
    ).validate(dest)
    if overwrite and resume:
        raise BioimnbError(dest, "choose either overwrite (start again) or resume (finish), not both")
    src_res = resolve(source, **src_opts)
    dst_res = resolve(dest, **dst_opts)
    if _same_or_nested(src_res, dst_res):
        raise BioimnbError(dest, f"destination overlaps the source {src_res.url}; refusing to write there")
    img = open_image(source, **src_opts)
    if opts.to == "ome-tiff":
        from .ometiff import convert_to_ome_tiff

        return convert_to_ome_tiff(img, src_res, dst_res, opts, src_opts, dst_opts, scheduler, progress, cancel)
    return _convert_zarr(img, src_res, dst_res, opts, src_opts, dst_opts, scheduler, progress, cancel)


def _prepare_dest(res: Resolved, opts: ConvertOptions, marker_check: Callable[[], dict[str, Any] | None]) -> None:
    fs = res.fs
    with storage_errors(res.url):
        exists = fs.exists(res.path)
    if not exists:
        return
    if opts.resume:
        state = marker_check()
        if state is None:
            raise BioimnbError(res.url, "exists but was not written by bioimnb; nothing to resume")
        if state.get("status") == "complete":
            raise BioimnbError(res.url, "is already complete; nothing to resume")
        recorded = state.get("options") or {}
        for key, value in recorded.items():
            if hasattr(opts, key):
                setattr(opts, key, value)
        return
    if not opts.overwrite:
        raise BioimnbError(res.url, "destination exists; pass overwrite=True (--overwrite) to replace it or resume=True (--resume) to finish it")
    with storage_errors(res.url):
        if res.local:
            if os.path.isdir(res.path) and not os.path.islink(res.path):
                shutil.rmtree(res.path)
            else:
                os.remove(res.path)
        else:
            fs.rm(res.path, recursive=True)
    forget(res.url)


def _zarr_state(run_dest: str, options: dict[str, Any]) -> dict[str, Any] | None:
    import zarr

    try:
        root = zarr.open_group(open_store(run_dest, options, read_only=True), mode="r")
    except Exception:  # noqa: BLE001 - not a zarr group
        return None
    state = root.attrs.get("bioimnb")
    return dict(state) if isinstance(state, dict) else None


def _convert_zarr(
    img: MultiscaleImage,
    src_res: Resolved,
    dst_res: Resolved,
    opts: ConvertOptions,
    src_opts: dict[str, Any],
    dst_opts: dict[str, Any],
    scheduler: Any,
    progress: Callable[[Progress], None] | None,
    cancel: Any,
) -> ConversionReport:
    _prepare_dest(dst_res, opts, lambda: _zarr_state(dst_res.url, dst_opts))
    run = _Run(src_res.url, dst_res.url, opts, src_opts, dst_opts, scheduler, progress, cancel)
    plans, journal, written, kept = run.run_zarr(img, dst_res)
    run.finish_zarr(img, dst_res, plans, journal, provenance_record(img, src_res, opts))
    checks: list[str] = []
    if opts.verify:
        checks = _verify_zarr(run, plans, journal)
    run.mark_complete()
    _Journal(dst_res).clear()
    raw = sum(int(np.prod(p.shapes[0])) * p.dtype.itemsize for p in plans)
    return ConversionReport(
        source=img.source,
        dest=dst_res.url,
        format=f"OME-Zarr {opts.ngff}",
        scenes=[{"index": p.index, "name": p.name, "path": p.path, "levels": [list(s) for s in p.shapes]} for p in plans],
        bytes_in=_source_facts(src_res)["size"],
        bytes_raw=raw,
        bytes_out=_bytes_stored(dst_res),
        seconds=time.monotonic() - run.start,
        checks=checks,
        resumed_blocks=kept,
        written_blocks=written,
    )

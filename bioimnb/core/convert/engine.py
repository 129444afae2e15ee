"""``convert``: check the request, plan, write level by level, journal, verify, record provenance.

The output is marked incomplete (``attrs["bioimnb"]["status"] = "incomplete"``) from the moment
its metadata exists until every block is written and verified.  Each finished block leaves a
journal entry (its level-0 checksum, :mod:`bioimnb.core.jobs`), so ``resume=True`` skips
finished blocks after Ctrl-C, a kernel restart or kill -9.  A resume first checks that the
source is the one the interrupted run read (size and mtime or ETag of every file of its file
set, and a sample of finished blocks re-read from it); verification compares what reads back
from the output with pixels read from the source (in this run, or re-read for blocks an
earlier run wrote), never with the journal alone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..errors import AccessDenied, BioimnbError, CorruptFile
from ..images import MultiscaleImage, open_image
from ..jobs import Progress, Task, run_tasks
from ..storage import Resolved, resolve, storage_errors
from .labels import add_labels
from .ometiff import convert_to_ome_tiff
from .options import ConvertOptions
from .pipeline import (
    ConversionCancelled,
    ConversionReport,
    InMemory,
    ZarrRun,
    bytes_stored,
    options_json,
    plane_digests,
    provenance_record,
    source_facts,
    zarr_state,
)
from .plan import ScenePlan
from .stores import open_store
from .work import Job, forget, verify_block

__all__ = ["ConversionCancelled", "ConversionReport", "Progress", "convert", "provenance_record"]

ZARR_SUFFIXES = (".zarr",)
TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf2", ".tf8")
_TYPE_SUFFIX = re.compile(r"\.[a-z][a-z0-9]{0,7}")
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


# -- checks before any work ----------------------------------------------------------------------


def output_kind(dest: str, to: str | None) -> str:
    """``ome-zarr`` or ``ome-tiff`` from ``to`` and the destination's name; refuses a name whose
    type bioimnb does not write (``a.png``) or that contradicts ``to``."""
    name = dest.rstrip("/").rsplit("/", 1)[-1].lower()
    suffix = os.path.splitext(name)[1]
    by_name = "ome-tiff" if suffix in TIFF_SUFFIXES else "ome-zarr" if suffix in ZARR_SUFFIXES else None
    if by_name is None and _TYPE_SUFFIX.fullmatch(suffix):
        raise BioimnbError(dest, f"a {suffix} destination is not written by bioimnb; use .ome.zarr or .ome.tif")
    if to is None:
        return by_name or "ome-zarr"
    wanted = ConvertOptions(to=to).validate(dest).to
    if by_name is not None and by_name != wanted:
        use = ".ome.tif" if wanted == "ome-tiff" else ".ome.zarr"
        raise BioimnbError(dest, f"a {suffix} destination does not hold {wanted}; name it {use} or choose the matching --to")
    return wanted


def _writable_parent(res: Resolved) -> None:
    """Create the destination's parent folder now and prove it takes a file, so a folder that
    cannot be created or is read-only is one error before any work (local destinations)."""
    if not res.local:
        return
    parent = os.path.dirname(res.path.rstrip(os.sep)) or os.sep
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise BioimnbError(res.url, f"cannot create the destination folder {parent} ({why})") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".bioimnb-probe-", dir=parent)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        if isinstance(exc, PermissionError) or exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise AccessDenied(res.url, f"cannot write into {parent} ({why})") from None
        raise BioimnbError(res.url, f"cannot write into {parent} ({why})") from None


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


def _guard_file_set(img: MultiscaleImage, dst_res: Resolved, src_opts: dict[str, Any]) -> None:
    """Refuse a destination that is, contains or lies inside any file of the source's file set
    (companion files of a multi-file OME-TIFF, MRXS data folders, zarr stores)."""
    for member in img.files:
        try:
            res = resolve(member, **src_opts)
        except BioimnbError:
            continue
        if _same_or_nested(res, dst_res):
            raise BioimnbError(dst_res.url, f"destination overlaps {member}, part of the source's file set; refusing to write there")


@contextlib.contextmanager
def write_errors(dest: str) -> Iterator[None]:
    """A failed write of the output (disk full, quota, read-only) as one line; the output stays
    marked incomplete and the journal keeps what was finished, so ``resume`` can finish it."""
    try:
        yield
    except BioimnbError:
        raise
    except OSError as exc:
        if exc.errno not in _WRITE_ERRNOS:
            raise
        why = exc.strerror or os.strerror(exc.errno or 0)
        raise BioimnbError(dest, f"writing the output failed ({why}); it is marked incomplete: fix that, then finish it with resume=True (--resume)") from None


# -- entry point ---------------------------------------------------------------------------------


def convert(
    source: Any,
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
    labels: dict[str, Any] | None = None,
    axes: str | None = None,
    physical_size: Any = None,
    channel_names: list[str] | None = None,
    name: str | None = None,
    **storage_options: Any,
) -> ConversionReport:
    """Convert any readable image to OME-Zarr (NGFF 0.4/0.5) or pyramidal OME-TIFF.

    Never modifies the source; refuses an existing destination unless ``overwrite`` (start again)
    or ``resume`` (finish an interrupted conversion, keeping finished blocks), and any destination
    that overlaps a file of the source's file set.  ``dest`` names what is written: ``*.zarr``
    (OME-Zarr) or ``*.tif``/``*.tiff`` (OME-TIFF); other types (``a.png``) are refused.
    ``scheduler`` is ``None`` (local threads), ``"synchronous"``, a ``dask.distributed``
    scheduler address or ``Client``.  ``progress`` receives :class:`Progress` updates; ``cancel``
    is any object with ``is_set()`` (a ``threading.Event``).  ``storage_options`` apply to both
    ends unless ``source_options`` / ``dest_options`` are given.

    ``source`` may be an image in memory (a numpy, dask or zarr array, an xarray DataArray, a
    bioio ``BioImage``; ``axes``, ``physical_size``, ``channel_names`` and ``name`` as for
    :func:`~bioimnb.core.images.open_image`): its blocks are read on local threads and verified
    against it like a file's.  ``labels`` (``{"nuclei": mask, ...}``) are written into the
    output's ``labels/`` group as NGFF label images (OME-Zarr only; see :func:`add_labels`).
    """
    memory = _memory_image(source, axes, physical_size, channel_names, name)
    if memory is None:
        source = os.fspath(source.source if isinstance(source, MultiscaleImage) else source)
        given = [k for k, v in (("axes", axes), ("physical_size", physical_size), ("channel_names", channel_names), ("name", name)) if v is not None]
        if given:
            raise BioimnbError(source, f"{', '.join(given)} describe in-memory arrays; a file says its own (edit its metadata instead)")
    dest = os.fspath(dest)
    src_opts = dict(source_options if source_options is not None else storage_options)
    dst_opts = dict(dest_options if dest_options is not None else storage_options)
    if not dest:
        raise BioimnbError(dest, "no destination given")
    to = output_kind(dest, to)
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
    if labels and opts.to != "ome-zarr":
        raise BioimnbError(dest, "label images are written into OME-Zarr only; name the destination .ome.zarr")
    dst_res = resolve(dest, **dst_opts)
    src_res: Resolved | InMemory
    if memory is not None:
        if scheduler not in (None, "synchronous", "sync", "threads"):
            raise BioimnbError(dest, "an in-memory image is converted on local threads; a Dask cluster cannot read it (save it first, or pass scheduler=None)")
        img, src_res = memory
        src_opts = {}
        prepared = _prepared_labels(img, labels, dest)
    else:
        src_res = resolve(source, **src_opts)
        if _same_or_nested(src_res, dst_res):
            raise BioimnbError(dest, f"destination overlaps the source {src_res.url}; refusing to write there")
        img = open_image(source, **src_opts)
        _guard_file_set(img, dst_res, src_opts)
        prepared = _prepared_labels(img, labels, dest)
    _writable_parent(dst_res)
    with write_errors(dst_res.url):
        if opts.to == "ome-tiff":
            tiff = convert_to_ome_tiff(img, src_res, dst_res, opts, src_opts, dst_opts, scheduler, progress, cancel)
            for scene in tiff.scenes:
                tiff.notes.extend(_source_labels(img, int(scene["index"]), set(), opts.to)[1])
            return tiff
        report = _convert_zarr(img, src_res, dst_res, opts, src_opts, dst_opts, scheduler, progress, cancel)
        # The caller's labels go to the first written scene; each written scene also keeps the
        # source's own label images (OME-Zarr labels/) that the caller did not replace.
        for position, scene in enumerate(report.scenes):
            requested: dict[str, Any] = prepared if position == 0 else {}
            own, skipped = _source_labels(img, int(scene["index"]), set(requested), opts.to)
            report.notes.extend(skipped)
            for label_name, label in {**own, **requested}.items():
                written = add_labels(dest, label_name, label, scene=position, overwrite=True, verify=opts.verify, **dst_opts)
                report.checks.extend(written["checks"])
        return report


def _memory_image(
    source: Any, axes: str | None, physical_size: Any, channel_names: list[str] | None, name: str | None
) -> tuple[MultiscaleImage, InMemory] | None:
    """An in-memory source opened, with the key its block tasks reopen it by; None for a path."""
    from ..readers.memory import MemoryBackend, register

    if isinstance(source, MultiscaleImage):
        backend = source._backend
        if not isinstance(backend, MemoryBackend):
            return None
        img = source
    elif isinstance(source, (str, os.PathLike)):
        return None
    else:
        img = open_image(source, axes=axes, physical_size=physical_size, channel_names=channel_names, name=name)
        backend = img._backend
        assert isinstance(backend, MemoryBackend)
    key = register(backend)
    nbytes = sum(int(np.prod(img.select_scene(i).shape)) * img.dtype.itemsize for i in range(len(img.scenes)))
    return open_image(key, scene=img.scene_index), InMemory(key, nbytes)


def _source_labels(img: MultiscaleImage, scene: int, replaced: set[str], to: str) -> tuple[dict[str, Any], list[str]]:
    """The label images of the source's ``scene`` to write into the output (level 0 as
    ``(T, Z, Y, X)``; the output's coarser levels are made as for any label), and a note for
    each one that cannot go (OME-TIFF has no label images; a label on another grid)."""
    from ..readers.memory import label_array

    try:
        source = img.select_scene(scene)
        names = [n for n in source.labels if n not in replaced]
    except BioimnbError:
        return {}, []
    out: dict[str, Any] = {}
    notes: list[str] = []
    for name in names:
        if to != "ome-zarr":
            notes.append(f"label image {name!r} not carried: OME-TIFF has no label images (convert to .ome.zarr to keep it)")
            continue
        try:
            level0 = source.label(name).levels[0][:, 0]
            label_array(level0, source.shape, name, img.source)
        except BioimnbError as exc:
            notes.append(f"label image {name!r} not carried: {exc.reason}")
            continue
        out[name] = level0
    return out, notes


def _prepared_labels(img: MultiscaleImage, labels: dict[str, Any] | None, dest: str) -> dict[str, Any]:
    """Label arrays checked against the image before anything is written (shape, dtype, names)."""
    from ..readers.memory import label_array

    out: dict[str, Any] = {}
    for label_name, array in (labels or {}).items():
        text = str(label_name)
        if not text or "/" in text or text in (".", ".."):
            raise BioimnbError(dest, f"label name {text!r} is not a usable group name")
        label_array(array, img.shape, text, img.source)
        out[text] = array
    return out


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


def _convert_zarr(
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
    from ..jobs import Journal

    _prepare_dest(dst_res, opts, lambda: zarr_state(dst_res.url, dst_opts))
    run = ZarrRun(src_res.url, dst_res.url, opts, src_opts, dst_opts, scheduler, progress, cancel)
    try:
        plans, journal, written, kept = run.run_zarr(img, dst_res)
        run.finish_zarr(img, dst_res, plans, journal, provenance_record(img, src_res, opts))
        checks: list[str] = []
        if opts.verify:
            checks = _verify_zarr(run, plans, journal)
    finally:
        run.close()
    run.mark_complete()
    Journal(dst_res).clear()
    raw = sum(int(np.prod(p.shapes[0])) * p.dtype.itemsize for p in plans)
    return ConversionReport(
        source=img.source,
        dest=dst_res.url,
        format=f"OME-Zarr {opts.ngff}",
        scenes=[{"index": p.index, "name": p.name, "path": p.path, "levels": [list(s) for s in p.shapes]} for p in plans],
        bytes_in=source_facts(src_res)["size"],
        bytes_raw=raw,
        bytes_out=bytes_stored(dst_res),
        seconds=time.monotonic() - run.start,
        checks=checks,
        resumed_blocks=kept,
        written_blocks=written,
    )


# -- verification --------------------------------------------------------------------------------


def _verify_zarr(run: ZarrRun, plans: list[ScenePlan], journal: dict[str, str]) -> list[str]:
    """Re-read level 0 of the output, block by block on the executor, and compare with the
    checksums of the source's pixels: taken while converting for the blocks written in this run,
    re-read from the source now for the blocks an earlier (interrupted) run wrote."""
    checks = []
    rechecked = run.verify_kept(plans, journal)
    dest_json = options_json(run.dest_options)
    forget(run.dest)
    mismatches = []
    compared = 0
    executor = run.executor
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
            tasks = (Task(b.key, verify_block, (job, b)) for b in plan.blocks(0))
            for _, (key, got) in run_tasks(executor, tasks):
                compared += 1
                if journal.get(f"{plan.index}/{key}") != got:
                    why = f" ({got})" if got.startswith("unreadable") else ""
                    mismatches.append(f"scene {plan.index} block {key}{why}")
    except BaseException:
        executor.close(cancel=True)
        raise
    if mismatches:
        raise CorruptFile(run.dest, f"verification failed: {len(mismatches)} level-0 block(s) differ from the source, first {mismatches[0]}")
    planes = sum(len(plane_digests(journal, p.index)) for p in plans)
    again = f" ({rechecked} written by the interrupted run re-read from the source)" if rechecked else ""
    checks.append(f"level-0 checksums: {planes} plane(s), {compared} block(s) equal to the source{again}")
    checks.append(_validate_ngff(run, plans))
    return checks


def _validate_ngff(run: ZarrRun, plans: list[ScenePlan]) -> str:
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

"""Metadata completeness: a score per image and per folder against one stated minimum.

The minimum is :data:`MINIMUM` (image metadata) plus, when a REMBI sidecar applies to an
image's folder, REMBI's required study fields (:func:`bioimnb.core.curation.rembi.required_fields`).
Each image scores the share of the fields that apply to it which it has; a folder scores the
mean over its images.  Everything is computed from :class:`~bioimnb.core.facts.ImageFacts`
(headers only, cached by the scan), so assessing a tree again opens nothing.

Rules for what counts as present, decided here only:

- physical sizes: every scene states X and Y; Z too when a scene has more than one plane in Z;
- channel names: every channel of every scene has a name that is not a reader's placeholder
  (``C0``, ``C1``, ... which readers give unnamed channels);
- objective: the OME ``Objective`` states both ``LensNA`` and ``NominalMagnification``;
- acquisition date and instrument (OME ``Microscope`` manufacturer/model): stated at all.

An image that cannot be read scores 0 with ``readable`` missing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ..facts import ImageFacts
    from .rembi import RembiStudy, StudyIndex

__all__ = ["MINIMUM", "Requirement", "assess", "completeness", "format_line", "format_summary", "minimum_fields", "summarize"]


@dataclass(frozen=True)
class Requirement:
    field: str
    label: str
    source: str
    """Who asks for it."""


MINIMUM: tuple[Requirement, ...] = (
    Requirement("physical_size_x", "pixel size X", "QUAREP-LiMi (report pixel size); REMBI Image Data; OME Pixels@PhysicalSizeX"),
    Requirement("physical_size_y", "pixel size Y", "QUAREP-LiMi (report pixel size); REMBI Image Data; OME Pixels@PhysicalSizeY"),
    Requirement("physical_size_z", "Z step (stacks only)", "QUAREP-LiMi (report voxel size); REMBI Image Data; OME Pixels@PhysicalSizeZ"),
    Requirement("channel_names", "channel names", "QUAREP-LiMi (fluorophores / channels); REMBI Specimen channel content; OME Channel@Name"),
    Requirement("objective_na", "objective NA", "QUAREP-LiMi (objective lens numerical aperture); OME Objective@LensNA"),
    Requirement("objective_magnification", "objective magnification", "QUAREP-LiMi (objective lens magnification); OME Objective@NominalMagnification"),
    Requirement("acquisition_date", "acquisition date", "REMBI Image Acquisition; OME Image/AcquisitionDate"),
    Requirement("instrument", "instrument / microscope", "REMBI Image Acquisition (imaging instrument); QUAREP-LiMi; OME Instrument/Microscope"),
)
"""The image-level minimum, as data: field name, what it is, and who asks for it."""

UNREADABLE = "readable"
"""The one field an unreadable image lacks."""

_PLACEHOLDER_CHANNEL = re.compile(r"^(C\d+|Channel[ :_]?\d+)?$", re.IGNORECASE)
# The scan appends "<mag>x" then "NA <na>" to the objective's manufacturer and model
# (facts.ome_acquisition); anchored at the end so a model name such as "63x/1.4 Oil" alone
# does not count as a stated magnification.
_MAGNIFICATION = re.compile(r"(?:^| )(\d+(?:\.\d+)?)x(?: NA \d+(?:\.\d+)?)?$")
_NA = re.compile(r"(?:^| )NA (\d+(?:\.\d+)?)$")


def minimum_fields(with_study: bool = False) -> list[str]:
    """The names of the fields checked: the image minimum, then REMBI's required study fields."""
    names = [r.field for r in MINIMUM]
    if with_study:
        from .rembi import required_fields

        names += required_fields()
    return names


def objective_parts(text: str | None) -> tuple[float | None, float | None]:
    """(magnification, NA) from :attr:`ImageFacts.objective`, which the scan writes as
    ``"<manufacturer> <model> <mag>x NA <na>"`` with the parts it found."""
    if not text:
        return None, None
    mag = _MAGNIFICATION.search(text)
    na = _NA.search(text)
    return (float(mag.group(1)) if mag else None, float(na.group(1)) if na else None)


def _z_planes(scene: dict[str, Any]) -> int:
    axes = str(scene.get("axes") or "")
    shape = scene.get("shape") or []
    if "Z" in axes and len(shape) == len(axes):
        return int(shape[axes.index("Z")])
    return 1


def _image_missing(facts: ImageFacts) -> tuple[list[str], int]:
    """(missing fields, number of fields that apply) for one readable image."""
    scenes = facts.scenes or []
    stack = any(_z_planes(s) > 1 for s in scenes)
    missing: list[str] = []
    applies = len(MINIMUM) - (0 if stack else 1)

    def all_scenes(axis: str) -> bool:
        return bool(scenes) and all((s.get("physical_size_um") or {}).get(axis) not in (None, 0) for s in scenes)

    if not all_scenes("X"):
        missing.append("physical_size_x")
    if not all_scenes("Y"):
        missing.append("physical_size_y")
    if stack and not all(_z_planes(s) <= 1 or (s.get("physical_size_um") or {}).get("Z") not in (None, 0) for s in scenes):
        missing.append("physical_size_z")
    names = [str(n or "").strip() for s in scenes for n in (s.get("channels") or [])]
    if not names or any(_PLACEHOLDER_CHANNEL.match(n) for n in names):
        missing.append("channel_names")
    mag, na = objective_parts(facts.objective)
    if na is None:
        missing.append("objective_na")
    if mag is None:
        missing.append("objective_magnification")
    if not (facts.acquired or "").strip():
        missing.append("acquisition_date")
    if not (facts.instrument or "").strip():
        missing.append("instrument")
    return missing, applies


def assess(facts: ImageFacts, study: RembiStudy | None = None) -> dict[str, Any]:
    """``{"score": 0..1, "missing": [field, ...]}`` for one image; ``study``: the REMBI study
    that applies to its folder (its required fields then count too)."""
    return _assess(facts, study, {})


def _assess(facts: ImageFacts, study: RembiStudy | None, memo: dict[int, tuple[Any, list[str]]]) -> dict[str, Any]:
    """:func:`assess`, with the study's missing fields worked out once per study (``memo``:
    ``id(study) -> (study, missing)``; many images share a folder's study)."""
    if facts.error:
        return {"score": 0.0, "missing": [UNREADABLE]}
    missing, applies = _image_missing(facts)
    if study is not None:
        from .rembi import required_fields

        known = memo.get(id(study))
        if known is None or known[0] is not study:
            known = memo[id(study)] = (study, study.missing())
        missing += known[1]
        applies += len(required_fields())
    score = (applies - len(missing)) / applies if applies else 1.0
    return {"score": round(score, 4), "missing": missing}


StudyLookup = Callable[[str], "RembiStudy | None"]


def _lookup(studies: StudyIndex | StudyLookup | bool | None, root: str | os.PathLike[str] | None = None) -> StudyLookup | None:
    if studies is False or studies is None:
        return None
    if studies is True:
        from .rembi import StudyIndex

        index = StudyIndex(root=root, remote=False)
        return index.for_path
    if hasattr(studies, "for_path"):
        return studies.for_path  # type: ignore[union-attr]
    return studies  # type: ignore[return-value]


class _Tally:
    def __init__(self) -> None:
        self.images = 0
        self.complete = 0
        self.unreadable = 0
        self.total = 0.0
        self.missing: dict[str, int] = {}
        self.with_study = 0

    def add(self, result: dict[str, Any], has_study: bool) -> None:
        self.images += 1
        self.total += result["score"]
        if not result["missing"]:
            self.complete += 1
        if UNREADABLE in result["missing"]:
            self.unreadable += 1
        if has_study:
            self.with_study += 1
        for name in result["missing"]:
            self.missing[name] = self.missing.get(name, 0) + 1

    def summary(self) -> dict[str, Any]:
        order = {name: i for i, name in enumerate(minimum_fields(True) + [UNREADABLE])}
        return {
            "score": round(self.total / self.images, 4) if self.images else 0.0,
            "images": self.images,
            "complete": self.complete,
            "missing": dict(sorted(self.missing.items(), key=lambda kv: (order.get(kv[0], 999), kv[0]))),
            "minimum": minimum_fields(self.with_study > 0),
            "unreadable": self.unreadable,
            "with_study": self.with_study,
        }


def summarize(
    facts: Iterable[ImageFacts],
    *,
    studies: StudyIndex | StudyLookup | bool | None = True,
    root: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Completeness of many images (e.g. a :func:`~bioimnb.core.facts.scan`).

    Returns ``score`` (mean of the images' scores, 0..1), ``images``, ``complete`` (images with
    nothing missing), ``missing`` (``{field: images lacking it}``), ``minimum`` (the fields
    checked), ``unreadable`` and ``with_study`` (images a REMBI sidecar applies to).  Entries
    that are not images (other files) are ignored.  ``studies``: True looks for ``rembi.json``
    sidecars of local folders; a :class:`~bioimnb.core.curation.rembi.StudyIndex` (or any
    ``path -> RembiStudy | None``) to use those; False to check image metadata only.
    ``root``: the root the facts' paths are relative to (a scan under a root gives them so);
    sidecars above it do not apply.
    """
    lookup = _lookup(studies, root)
    tally = _Tally()
    memo: dict[int, tuple[Any, list[str]]] = {}
    for f in facts:
        if f.kind != "image":
            continue
        study = lookup(f.path) if lookup is not None else None
        tally.add(_assess(f, study, memo), study is not None)
    return tally.summary()


def completeness(
    url: str | os.PathLike[str],
    *,
    recursive: bool = True,
    root: str | os.PathLike[str] | None = None,
    cache: bool | str | os.PathLike[str] = True,
    studies: bool = True,
    per_image: Callable[[ImageFacts, dict[str, Any]], None] | None = None,
    workers: int | None = None,
    **storage_options: Any,
) -> dict[str, Any]:
    """Scan ``url`` (a folder, bucket or prefix; cached, headers only) and :func:`summarize` it;
    ``url`` may also be a single image.

    ``per_image(facts, assessment)`` is called for each image as it comes (the CLI prints
    them).  The result is the summary plus ``folders``: ``{folder: {"score", "images",
    "complete"}}`` for each folder holding images.  ``studies``: look for REMBI sidecars.
    """
    from ..classify import classify
    from ..facts import image_facts, scan
    from .rembi import StudyIndex

    index = StudyIndex(root=root, **storage_options) if studies else None
    tally = _Tally()
    folders: dict[str, _Tally] = {}
    memo: dict[int, tuple[Any, list[str]]] = {}
    found = classify(url, root=root, **storage_options)
    if found.kind == "folder":
        facts: Iterable[ImageFacts] = scan(url, recursive=recursive, root=root, cache=cache, workers=workers, **storage_options)
    else:  # one image (an OME-Zarr too) or file
        facts = [image_facts(os.fspath(url), root=os.fspath(root) if root is not None else None, found=found, **storage_options)]
    for f in facts:
        if f.kind != "image":
            continue
        study = index.for_path(f.path) if index is not None else None
        result = _assess(f, study, memo)
        tally.add(result, study is not None)
        folder = _folder_of(f.path)
        folders.setdefault(folder, _Tally()).add(result, study is not None)
        if per_image is not None:
            per_image(f, result)
    out = tally.summary()
    out["folders"] = {
        name: {k: t.summary()[k] for k in ("score", "images", "complete")} for name, t in sorted(folders.items())
    }
    if index is not None and index.errors:
        out["sidecar_errors"] = sorted(index.errors.values())
    return out


def _folder_of(path: str) -> str:
    if "://" in path:
        return path.rstrip("/").rsplit("/", 1)[0]
    return os.path.dirname(path.rstrip("/")) or "."


# --------------------------------------------------------------------------------------------
# Text, as the front ends show it
# --------------------------------------------------------------------------------------------


def format_line(path: str, result: dict[str, Any]) -> str:
    """One image: ``  75%  path  missing: a, b``."""
    missing = result["missing"]
    tail = f"  missing: {', '.join(missing)}" if missing else "  complete"
    return f"{result['score'] * 100:5.0f}%  {path}{tail}"


def format_summary(summary: dict[str, Any]) -> str:
    """The folder's score and what is missing how often, a few lines."""
    images = summary["images"]
    lines = [
        f"completeness {summary['score'] * 100:.0f}% over {images} image(s); "
        f"{summary['complete']} complete, {summary['unreadable']} unreadable, "
        f"{summary['with_study']} with a REMBI study"
    ]
    for name, count in summary["missing"].items():
        lines.append(f"  missing {name}: {count} of {images}")
    for line in summary.get("sidecar_errors", []):
        lines.append(f"  sidecar not applied: {line}")
    return "\n".join(lines)

"""Load the OME model of any source, and know where an edit of it is saved.

:func:`load` answers one question for every front end: "what is the OME metadata of this
source, and where does an edit go?"  The answer is a :class:`MetadataDocument`:

=============  =========================================================  ====================
kind           model from                                                 edits saved to
=============  =========================================================  ====================
``ome-tiff``   the first IFD's ImageDescription (OME-XML)                 the file, in place
``ome-zarr``   ``OME/METADATA.ome.xml``, else the NGFF attributes         NGFF attrs + XML
``ome-xml``    an ``.ome.xml`` / ``.companion.ome`` document              that document
``sidecar``    any other format (``open_image(...).ome``), or the         ``<file>.ome.xml``
               companion ``<file>.ome.xml`` written by an earlier edit    next to the file
=============  =========================================================  ====================

What a path is comes from :func:`~bioimnb.core.classify.classify`; the image's own OME model from
:func:`~bioimnb.core.images.open_image`; XML is parsed only through the safe reader in
:mod:`bioimnb.core.metadata.ome` (no DOCTYPE or entity ever reaches a parser).
"""

from __future__ import annotations

import os
import re
import warnings
from typing import TYPE_CHECKING, Any

from ..errors import BioimnbError, CorruptFile, UnsupportedFormat
from ..metadata.ome import check_xml, parse_ome_xml
from ..storage import Resolved, read_confined, resolve, storage_errors

if TYPE_CHECKING:  # pragma: no cover
    from ome_types import OME

__all__ = ["OME_2016_06", "XML_SUFFIXES", "MetadataDocument", "load", "sidecar_path", "xml_schema"]

OME_2016_06 = "http://www.openmicroscopy.org/Schemas/OME/2016-06"
XML_SUFFIXES = (".ome.xml", ".companion.ome", ".xml")
SIDECAR_SUFFIX = ".ome.xml"
_NS = re.compile(rb"<(?:\w+:)?OME\b[^>]*?\bxmlns(?::\w+)?\s*=\s*[\"']([^\"']+)[\"']", re.DOTALL)


class MetadataDocument:
    """The OME metadata of one source and where its edits are saved.

    ``xml`` is the stored OME-XML (None when the source has none and the model was built from
    what the reader knows); ``tree`` is that XML parsed safely with lxml, ``ome`` the ome-types
    model of it (both built on first use: a large plate's model costs seconds, its tree
    milliseconds, and editing needs only the tree)."""

    def __init__(
        self,
        source: str,
        kind: str,
        res: Resolved,
        target: str,
        format: str | None = None,
        xml: str | None = None,
        schema: str = OME_2016_06,
        notes: list[str] | None = None,
        scene_paths: list[str] | None = None,
        *,
        ome: OME | None = None,
    ) -> None:
        self.source = source
        self.kind = kind
        """``ome-tiff``, ``ome-zarr``, ``ome-xml`` or ``sidecar``."""
        self.res = res
        self.target = target
        """Where a save writes (the file itself, the zarr root, or the companion sidecar)."""
        self.format = format
        """The image format (``OME-TIFF``, ``OME-Zarr``, ``CZI``, ...) or None for a bare XML file."""
        self.xml = xml
        self.schema = schema
        """The namespace of the stored XML (older ones are upgraded to 2016-06 when saved)."""
        self.notes = list(notes or [])
        """Things a person should know: a sidecar is used, the schema will be upgraded, an ID was fixed."""
        self.scene_paths = list(scene_paths or [])
        """OME-Zarr: the group path of each image (``""`` for an image at the root)."""
        self._ome = ome
        self._tree: Any = None

    @property
    def ome(self) -> OME:
        """The ome-types model of the stored metadata (do not edit it: edits go through a change list)."""
        if self._ome is None:
            assert self.xml is not None
            self._ome, notes, _ = parse_document(self.xml, self.source)
            self.notes.extend(n for n in notes if n not in self.notes)
        return self._ome

    @property
    def tree(self) -> Any:
        """The stored OME-XML as an lxml tree (2016-06; older schemas upgraded)."""
        if self._tree is None:
            from .xmltree import parse_tree

            if self.xml is not None and self.schema == OME_2016_06:
                self._tree = parse_tree(self.xml, self.source)
            else:
                self._tree = parse_tree(self.ome.to_xml(), self.source)
        return self._tree

    def replace(self, tree: Any, xml: str) -> None:
        """The document as just saved."""
        self._tree, self.xml, self._ome, self.schema = tree, xml, None, OME_2016_06

    @property
    def writes_sidecar(self) -> bool:
        return self.kind == "sidecar"

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind,
            "format": self.format,
            "saved_to": self.target,
            "schema": self.schema,
            "notes": list(self.notes),
        }

    def __repr__(self) -> str:
        return f"<MetadataDocument {self.kind} {self.source!r} -> {self.target!r}>"


def xml_schema(xml: str | bytes) -> str | None:
    """The namespace of an OME-XML document's root element (None when it has none)."""
    data = xml.encode("utf-8") if isinstance(xml, str) else xml
    m = _NS.search(data[:65536])
    return m.group(1).decode("utf-8", "replace") if m else None


def sidecar_path(path: str) -> str:
    """The companion OME-XML file that holds edits of a read-only or proprietary image."""
    return path.rstrip("/") + SIDECAR_SUFFIX


def parse_document(xml: str | bytes, source: object) -> tuple[OME, list[str], str]:
    """(model, notes, schema) of an OME-XML document, parsed safely; older schemas are
    transformed to 2016-06 (noted), unknown ones refused naming the schema."""
    data = check_xml(xml, source)
    schema = xml_schema(data) or "(no namespace)"
    notes: list[str] = []
    if schema != OME_2016_06:
        if not schema.startswith("http://www.openmicroscopy.org/Schemas/OME/"):
            raise UnsupportedFormat(source, f"not an OME-XML document (namespace {schema}); bioimnb edits OME 2016-06")
        notes.append(f"OME schema {schema.rsplit('/', 1)[-1]} is upgraded to 2016-06 when saved")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ome = parse_ome_xml(data, source)
        except CorruptFile as exc:
            if "Unsupported document namespace" in exc.reason:
                raise UnsupportedFormat(source, f"OME schema {schema} cannot be upgraded to 2016-06; refused") from None
            raise
    for w in caught:
        text = str(w.message)
        if text.startswith("Casting invalid"):
            # "Casting invalid ChannelID 'x' to 'Channel:3'"
            what, _, to = text[len("Casting ") :].partition(" to ")
            notes.append(f"the stored document has an {what} (shown as {to}); saves keep it as it is: `meta validate` reports it")
    return ome, notes, schema


def _light(xml: str | bytes, source: object) -> tuple[OME | None, list[str], str]:
    """(model or None, notes, schema) without building the model for 2016-06 documents: the
    tree is enough to edit, and the model is built when asked for."""
    data = check_xml(xml, source)
    schema = xml_schema(data) or "(no namespace)"
    if schema == OME_2016_06:
        from .xmltree import parse_tree

        parse_tree(data, source)  # well-formed, an OME root: refused now rather than at save
        return None, [], schema
    return parse_document(data, source)


def load(source: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None, **storage_options: Any) -> MetadataDocument:
    """The OME model of ``source`` (an image in any format bioimnb reads, or an OME-XML file)."""
    res = resolve(source, root=root, **storage_options)
    from ..classify import classify_resolved

    found = classify_resolved(res)
    name = res.name.lower()
    if found.kind != "image" or found.format == "OME-TIFF fileset":
        if found.kind == "file" and name.endswith(XML_SUFFIXES) or found.format == "OME-TIFF fileset":
            data = _read_small(res)
            ome, notes, schema = _light(data, res.url)
            return MetadataDocument(res.url, "ome-xml", res, res.url, None, data.decode("utf-8", "replace"), schema, notes, ome=ome)
        if found.error:
            raise CorruptFile(res.url, found.error)
        if found.kind == "folder":
            raise UnsupportedFormat(res.url, "is a folder, not an image or an OME-XML file")
        raise UnsupportedFormat(res.url, "neither an image bioimnb reads nor an OME-XML file (.ome.xml, .companion.ome)")
    from ..images import open_resolved

    with open_resolved(res, found=found) as img:
        fmt = img.format
        readonly = None  # why a format that is edited in place is not, here
        if fmt == "OME-TIFF" and res.local:
            xml = img.ome_xml
            holder = _xml_holder(res.path, xml, img.files) if xml else None
            if holder is not None and not os.access(holder, os.W_OK):
                readonly = f"{os.path.basename(holder)} is read-only"
            elif xml and holder is not None:
                ome, notes, schema = _light(xml, res.url)
                if holder == res.path:
                    return MetadataDocument(res.url, "ome-tiff", res, res.url, fmt, xml, schema, notes, ome=ome)
                # A member of a multi-file set: the set's OME-XML lives in another file (the
                # master TIFF or the .companion.ome); edits go there, never into this member.
                kind = "ome-xml" if holder.lower().endswith(".companion.ome") else "ome-tiff"
                notes.insert(0, f"the OME-XML of this file set is kept in {os.path.basename(holder)}; edits are saved there")
                held = resolve(holder, root=res.root)
                return MetadataDocument(res.url, kind, held, holder, fmt, xml, schema, notes, ome=ome)
        is_zarr = (found.format or "").startswith("OME-Zarr")  # the classification's names: OME-Zarr, OME-Zarr plate
        if is_zarr and res.local and not os.access(res.path, os.W_OK):
            readonly = f"{res.name} is read-only"
        elif is_zarr:
            paths = _scene_paths(img)
            raw = _zarr_xml(res)
            if raw is not None:
                ome, notes, schema = _light(raw, res.url + "/OME/METADATA.ome.xml")
                doc = MetadataDocument(res.url, "ome-zarr", res, res.url, fmt, raw.decode("utf-8", "replace"), schema, notes, paths, ome=ome)
            else:
                model = _all_scenes(img) if len(img.scenes) > 1 else img.ome
                doc = MetadataDocument(res.url, "ome-zarr", res, res.url, fmt, None, OME_2016_06, [], paths, ome=model)
            from .xmltree import kids

            count = len(kids(doc.tree, "Image"))
            if count != len(paths):
                doc.notes.append(f"the OME model has {count} images for {len(paths)} NGFF images; names, channels and scales are matched by position")
            return doc
        # Any other format, an OME-TIFF on remote storage, or a file or store that cannot be
        # written: edits go to a companion file next to it.
        target = sidecar_path(res.url if not res.local else res.path)
        side = _read_sidecar(res)
        if readonly is not None:
            reason = readonly
        else:
            reason = f"{fmt} files are not rewritten" if fmt != "OME-TIFF" else "remote OME-TIFFs are not rewritten in place"
        if side is not None:
            ome, notes, schema = _light(side, target)
            notes.insert(0, f"{reason}: the metadata shown comes from the companion file {os.path.basename(target)}, where edits are saved")
            return MetadataDocument(res.url, "sidecar", res, target, fmt, side.decode("utf-8", "replace"), schema, notes, ome=ome)
        xml = img.ome_xml
        if xml:
            ome, notes, schema = _light(xml, res.url)
        else:
            ome, notes, schema = (_all_scenes(img) if len(img.scenes) > 1 else img.ome), [], OME_2016_06
        notes.insert(0, f"{reason}: edits are saved to the companion file {os.path.basename(target)} next to it")
        return MetadataDocument(res.url, "sidecar", res, target, fmt, xml, schema, notes, ome=ome)


def _xml_holder(path: str, xml: str, files: list[str]) -> str | None:
    """Which file of an OME-TIFF set holds ``xml`` as its own document: the file itself, another
    member's first ImageDescription, or the ``.companion.ome`` (None when none does)."""
    from .write_tiff import read_description

    want = xml.encode("utf-8").strip().rstrip(b"\0").strip()
    for candidate in [path, *(f for f in files if os.path.realpath(f) != os.path.realpath(path))]:
        try:
            if candidate.lower().endswith(".companion.ome"):
                have = read_confined(candidate).strip()
            else:
                have = read_description(candidate).strip()
        except (BioimnbError, OSError):
            continue
        if have == want:
            return candidate
    return None


def _all_scenes(img: Any) -> OME:
    """One OME model with every scene (``img.ome`` of a synthesised source describes one)."""
    first = img.ome
    if len(first.images) >= len(img.scenes):
        return first
    from ..metadata.ome import synthesize_ome

    scenes = [img.select_scene(i) for i in range(len(img.scenes))]
    return synthesize_ome([(s.scene, s.shape, s.dtype, s.physical_size, s.channels) for s in scenes])


def _scene_paths(img: Any) -> list[str]:
    # The NGFF reader already decided which group holds which scene (single image, plate field,
    # bioformats2raw series); ask it rather than walking the hierarchy a second time.
    return [str(p) for p in img.scene_locations]


def _read_small(res: Resolved) -> bytes:
    with storage_errors(res.url):
        if res.local:
            return read_confined(res.path, res.root, res.url)
        from ..limits import limits

        cap = limits().max_metadata_bytes
        with res.fs.open(res.path, "rb") as fh:
            data = fh.read(cap + 1)
    if len(data) > cap:
        raise CorruptFile(res.url, f"larger than {cap} bytes, too large for metadata")
    return bytes(data)


def _exists(res: Resolved, path: str) -> bool:
    with storage_errors(res.url):
        try:
            return bool(res.fs.isfile(path))
        except FileNotFoundError:
            return False


def _zarr_xml(res: Resolved) -> bytes | None:
    path = res.path.rstrip("/") + "/OME/METADATA.ome.xml"
    if not _exists(res, path):
        return None
    sub = Resolved(res.fs, path, res.url.rstrip("/") + "/OME/METADATA.ome.xml", res.options, res.root)
    return _read_small(sub)


def _read_sidecar(res: Resolved) -> bytes | None:
    path = sidecar_path(res.path)
    if not _exists(res, path):
        return None
    url = sidecar_path(res.url)
    try:
        return _read_small(Resolved(res.fs, path, url, res.options, res.root))
    except BioimnbError:
        raise

"""The plan as text: one section per Science Europe core requirement, in Markdown and HTML.

The Markdown is the single source; the HTML is that Markdown rendered by mistune (raw HTML in
answers is escaped) inside a small page with the charts embedded as PNG data URIs.  Every
measured figure in the text carries a marker ``[F3]`` that points to a row of the appendix
table (fact, value, how it was measured), so each number can be traced to the scan.
"""

from __future__ import annotations

import base64
import html
import re
from typing import TYPE_CHECKING

from ..version import VERSION
from .aggregate import count, size
from .answers import licences
from .repositories import gb

if TYPE_CHECKING:  # pragma: no cover
    from .plan import Plan

__all__ = ["SECTIONS", "render_html", "render_markdown", "size"]

SECTIONS = (
    "Data description and collection or re-use of existing data",
    "Documentation and data quality",
    "Storage and backup during the research process",
    "Legal and ethical requirements, codes of conduct",
    "Data sharing and long-term preservation",
    "Data management responsibilities and resources",
)
CHART_TITLES = {"volume_by_format": "Volume by format", "growth": "Growth over time"}
MAX_LISTED_FAILURES = 100


def _esc(text: object) -> str:
    """User text inside Markdown: no emphasis, links, HTML or table breaks."""
    return re.sub(r"([\\`*_\[\]<>|#!])", r"\\\1", str(text))


def _code(text: object) -> str:
    t = str(text).replace("`", "'").replace("|", "\\|")
    return f"`{t}`"


def _pct(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:.1f} %" if whole else "0 %"


class _Facts:
    """The appendix: each call registers a fact once and returns its value with the marker."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []
        self._ids: dict[str, str] = {}

    def __call__(self, label: str, value: str, basis: str = "scan (headers only)") -> str:
        fid = self._ids.get(label)
        if fid is None:
            fid = f"F{len(self.rows) + 1}"
            self._ids[label] = fid
            self.rows.append((fid, label, value, basis))
        return f"{value} [{fid}]"


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def render_markdown(plan: Plan, chart_links: dict[str, str] | None = None) -> str:
    """The plan in Markdown.  ``chart_links``: chart name -> image path to link (``--output``);
    without it the Markdown says where the charts are (the HTML embeds them)."""
    return _fill_charts(_markdown_with_placeholders(plan), chart_links)


def _fill_charts(text: str, chart_links: dict[str, str] | None) -> str:
    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        if chart_links and name in chart_links:
            return f"![{CHART_TITLES.get(name, name)}]({chart_links[name]})"
        return f"*Chart: {CHART_TITLES.get(name, name)} (in the HTML version, or written beside the plan with --output).*"

    return re.sub(r"^CHART:(\w+)$", repl, text, flags=re.M)


def _markdown_with_placeholders(plan: Plan) -> str:
    f, a = plan.facts, plan.answers
    F = _Facts()
    lines: list[str] = []
    add = lines.append
    title = a.title or "Imaging data of " + ", ".join(plan.facts.sources)
    add(f"# Data management plan: {_esc(title)}")
    add("")
    when = f.scanned_at[:10]
    add(
        f"*Drafted by bioimnb {VERSION} on {when} from a scan of "
        + ", ".join(_code(s) for s in f.sources)
        + ". Figures marked [F1], [F2], ... were measured from the data; Appendix A lists each one"
        " with how it was measured. Regenerate the plan when the data change.*"
    )
    add("")

    # 1 ---------------------------------------------------------------------------------------
    add(f"## 1. {SECTIONS[0]}")
    add("")
    if f.empty:
        add(
            "**The scanned locations hold no files yet**: "
            + F("Files on storage", "0")
            + ". This plan will state the volumes, formats and dimensions once data are there; "
            "until then every figure below is zero."
        )
        add("")
    else:
        sources = _join([_code(s) for s in f.sources])
        add(
            f"The data held at {sources} are "
            + F("Images that open", count(f.images, "image"))
            + " ("
            + F("Scenes (series, positions, wells)", count(f.scenes, "scene"))
            + ") in "
            + F("Files on storage", count(f.files, "file"))
            + ", "
            + F("Bytes on storage", f"{f.bytes:,} bytes")
            + f" ({size(f.bytes)}). "
            + (
                F("Other files (not images)", count(f.other_files, "other file"))
                + f" ({size(f.other_bytes)}) sit beside the images."
                if f.other_files
                else "There are no files other than images."
            )
        )
        add("")
        open_names = [n for n, s in f.formats.items() if s.open]
        prop_names = [n for n, s in f.formats.items() if not s.open]
        parts = []
        if f.open_images:
            parts.append(
                F("Images in open formats", count(f.open_images, "image"))
                + " ("
                + F("Bytes in open formats", f"{size(f.open_bytes)}")
                + f", {_pct(f.open_bytes, f.image_bytes)} of the image volume) are in open formats ("
                + ", ".join(open_names)
                + ")"
            )
        if f.proprietary_images:
            parts.append(
                F("Images in proprietary formats", count(f.proprietary_images, "image"))
                + " ("
                + F("Bytes in proprietary formats", f"{size(f.proprietary_bytes)}")
                + f", {_pct(f.proprietary_bytes, f.image_bytes)}) are in vendors' formats ("
                + ", ".join(prop_names)
                + ")"
            )
        if parts:
            add(_join(parts) + ". bioimnb reads every format below without conversion, with the reader named.")
            add("")
            add("| Format | Open | Images | Files | Bytes | Reader | Media type |")
            add("|---|---|---:|---:|---:|---|---|")
            for name, st in f.formats.items():
                add(
                    f"| {_esc(name)} | {'open' if st.open else 'proprietary'} | {st.images:,} | {st.files:,} | {st.bytes:,} "
                    f"| {_esc(', '.join(st.readers))} | {_esc(st.media_type or '-')} |"
                )
            add("")
            add("CHART:volume_by_format")
            add("")
        if f.dims:
            dims = []
            for ax in "XYZCT":
                lo, hi = f.dims.get(ax, [1, 1])
                dims.append(f"{ax} {lo:,}" if lo == hi else f"{ax} {lo:,} to {hi:,}")
            add(
                "Image dimensions (level 0): "
                + F("Dimensions XYZCT (smallest to largest)", "; ".join(dims))
                + ". "
                + F("Time series (T > 1)", f"{f.time_series:,}")
                + " time series, "
                + F("Z stacks (Z > 1)", f"{f.z_stacks:,}")
                + " z-stacks and "
                + F("Multichannel images (C > 1)", f"{f.multichannel:,}")
                + " multichannel images. Pixel types: "
                + ", ".join(f"{_esc(k)} ({v})" for k, v in f.dtypes.items())
                + ". Uncompressed, the pixels of full resolution amount to "
                + F("Uncompressed level-0 pixel bytes", f"{f.raw_bytes:,} bytes")
                + f" ({size(f.raw_bytes)})."
            )
            add("")
        if f.instruments or f.objectives:
            inst = ", ".join(f"{_esc(k)} ({v})" for k, v in f.instruments.items()) or "none named"
            obj = ", ".join(f"{_esc(k)} ({v})" for k, v in f.objectives.items()) or "none named"
            add(
                "Instruments named in the metadata: "
                + F("Instruments (images)", inst, "OME metadata")
                + ". Objectives: "
                + F("Objectives (images)", obj, "OME metadata")
                + "."
            )
        else:
            add("The image metadata name no instrument or objective.")
        if f.modalities:
            add("Modality from the metadata: " + ", ".join(f"{k} ({v} images)" for k, v in f.modalities.items()) + ".")
        if a.modality:
            add(f"Modality (answer): {_esc(a.modality)}.")
        add("")
        if f.acquired_first:
            basis = f.growth_basis
            add(
                "The data were acquired between "
                + F("First acquisition", f.acquired_first, basis)
                + " and "
                + F("Last acquisition", f.acquired_last or "", basis)
                + f" (dated by {basis}: {f.dated_by_acquisition} from acquisition dates, {f.dated_by_mtime} from file modification times). "
                + (
                    "They grew by "
                    + F("Growth per month", f"{size(f.growth_bytes_per_month)} per month", f"bytes dated in those months / {len(f.growth)} months")
                    + f" on average over {len(f.growth)} months."
                    if len(f.growth) > 1
                    else "All of them date from one month, "
                    + F("Growth per month", f"{size(f.growth_bytes_per_month)} per month", "bytes dated in that one month")
                    + ": a rate measured over a single month; regenerate the plan as data arrive to measure it better."
                )
            )
            add("")
            add("CHART:growth")
            add("")
        elif f.images:
            add("No image states an acquisition date and no modification time could be read: growth is not measured.")
            add("")
        if f.failures:
            add(
                F("Files that could not be opened", count(len(f.failures), "file"))
                + " could not be opened; they are counted above and listed in Appendix B with the reason."
            )
            add("")
        if f.proprietary_images:
            z = f.zarr_estimate
            add(
                f"Converted to OME-Zarr, the {count(f.proprietary_images, 'proprietary image')} would take about "
                + F("Expected OME-Zarr size of the proprietary images", size(z["estimated_bytes"]), z["rule"])
                + f" (at most {size(z['upper_bound_bytes'])} uncompressed), so the whole collection about "
                + F("Expected total after conversion", size(z["after_conversion_total_bytes"]), "open-format bytes + expected OME-Zarr bytes")
                + ". Estimation rule: "
                + z["rule"]
                + "."
            )
            add("")

    # 2 ---------------------------------------------------------------------------------------
    add(f"## 2. {SECTIONS[1]}")
    add("")
    add(
        "Image metadata follow the OME data model: OME-XML inside OME-TIFF files and beside OME-Zarr images "
        "(OME-NGFF, with its multiscales and axes metadata), read from vendors' files by bioimnb. "
        "Study-level metadata follow REMBI (Recommended Metadata for Biological Images)."
    )
    add("")
    comp = f.completeness
    if comp and "error" not in comp:
        missing = comp.get("missing") or {}
        worst = sorted(missing.items(), key=lambda kv: -kv[1])[:5]
        add(
            "Metadata completeness: "
            + F("Metadata completeness score", f"{float(comp.get('score', 0.0)):.2f}", "curation completeness summary")
            + "; "
            + F("Images with the minimum metadata", f"{comp.get('complete', 0):,} of " + count(int(comp.get('images', 0)), "image"), "curation completeness summary")
            + " carry the minimum fields ("
            + ", ".join(_esc(m) for m in comp.get("minimum") or [])
            + ")."
            + (" Missing most often: " + ", ".join(f"{_esc(k)} ({v})" for k, v in worst) + "." if worst else "")
        )
    else:
        add("Metadata completeness has not been assessed yet.")
    add("")
    if f.manifests:
        for m in f.manifests:
            if m.get("error"):
                add(f"A manifest at {_code(m['folder'])} ({_code(m['file'])}) could not be read: {_esc(m['error'])}.")
                continue
            add(
                f"Fixity: a {m['kind']} at {_code(m['folder'])} dated "
                + F(f"Manifest date ({m['folder']})", m.get("created") or "undated", m["file"])
                + " lists "
                + F(f"Manifest files ({m['folder']})", count(int(m.get('files', 0)), "file"), m["file"])
                + " and "
                + F(f"Manifest bytes ({m['folder']})", f"{m.get('bytes', 0):,} bytes", m["file"])
                + f" with {m.get('algorithm')} checksums"
                + (f", written by {_esc(m['tool'])}" if m.get("tool") else "")
                + "; re-checking it proves the copy unchanged."
            )
    else:
        add("No checksum manifest or BagIt bag was found with the data; `bioimnb transfer` writes one when data are copied.")
    add("")
    if f.incomplete:
        add(f"{len(f.incomplete):,} conversions have not finished and are marked incomplete: " + ", ".join(_code(p) for p in f.incomplete[:20]) + ".")
        add("")

    # 3 ---------------------------------------------------------------------------------------
    c = plan.cost
    add(f"## 3. {SECTIONS[2]}")
    add("")
    add(
        "During the project the data are stored on "
        + (_esc(a.storage) if a.storage else "*(storage not stated yet: answer `storage`)*")
        + f", in {c.copies} copies (the working copy and {a.backup_copies} backup{'s' if a.backup_copies != 1 else ''}), "
        f"and kept for {a.retention_years} years."
    )
    add("")
    add(
        "Projected volume: "
        + F("Projected volume", f"{c.projected_bytes:,} bytes", f"volume now + growth per month x {c.growth_months} months")
        + f" ({size(c.projected_bytes)})."
        + (
            " Storage cost: "
            + F("Storage cost", f"{c.total:,.2f} {c.currency}", "projected TB x copies x years x price")
            + f" (projected TB x {c.copies} copies x {c.retention_years} years x {c.price_per_tb_year:,.2f} {c.currency} per TB per year)"
            + (
                f"; with the proprietary files converted to OME-Zarr about {c.zarr_total:,.2f} {c.currency}."
                if f.proprietary_images and c.zarr_total is not None
                else "."
            )
            if c.total is not None
            else " The cost is not computed until a price per TB per year is given (answer `price_per_tb_year`)."
        )
    )
    add("")
    add("Assumptions:")
    add("")
    for line in c.assumptions:
        add(f"- {line}")
    add("")

    # 4 ---------------------------------------------------------------------------------------
    add(f"## 4. {SECTIONS[3]}")
    add("")
    words = {"yes": "include", "no": "do not include", "unknown": "may include (not answered yet)"}
    add(f"The data {words[a.personal_data]} personal data and {words[a.health_data]} protected health information.")
    if a.personal_data == "yes" or a.health_data == "yes":
        add(
            "They are therefore kept on access-controlled storage, shared only under agreements that the data protection "
            "officer approves, and deposited only where such data are accepted (see section 5)."
        )
    add("")
    if a.licence:
        lic = licences()[a.licence]
        add(f"The data will be shared under {lic['name']} ({_code(a.licence)}, {lic['url']}).")
    else:
        add("The licence is not chosen yet (answer `licence` with an SPDX id, e.g. `CC-BY-4.0` or `CC0-1.0`).")
    if a.embargo_months:
        add(f"An embargo of {a.embargo_months} months applies before the data are public.")
    add("")

    # 5 ---------------------------------------------------------------------------------------
    add(f"## 5. {SECTIONS[4]}")
    add("")
    if a.repository:
        match = [x for x in plan.advice if x.planned]
        add(
            f"The data will be deposited in {_esc(a.repository)}"
            + (f", which the measured facts mark **{match[0].status}**." if match else " (not in the repository table below).")
        )
    else:
        add("The repository is not chosen yet (answer `repository`); the table shows which repositories fit the measured data.")
    add("")
    add("Repository fit for the " + F("Bytes on storage", f"{f.bytes:,} bytes") + f" ({gb(f.bytes)}) measured:")
    add("")
    add("| Repository | Type | Fit | Why | DOI | Cost |")
    add("|---|---|---|---|---|---|")
    for adv in plan.advice:
        mark = " (planned)" if adv.planned else ""
        add(
            f"| [{_esc(adv.name)}]({adv.url}){mark} | {adv.type} | **{adv.status}** | {_esc('; '.join(adv.reasons))} "
            f"| {'yes' if adv.doi else 'not stated'} | {_esc(adv.cost)} |"
        )
    add("")
    add(
        f"For long-term preservation the images are kept in open formats (OME-TIFF or OME-Zarr) for {a.retention_years} years; "
        + (
            f"the {count(f.proprietary_images, 'image')} in vendors' formats are converted with `bioimnb convert` (verified, pixel by pixel) "
            "and the originals kept beside them."
            if f.proprietary_images
            else "all measured images are already in open formats."
        )
    )
    add("")

    # 6 ---------------------------------------------------------------------------------------
    add(f"## 6. {SECTIONS[5]}")
    add("")
    if a.contacts:
        for ct in a.contacts:
            bits = [_esc(ct.name)]
            if ct.role:
                bits.append(_esc(ct.role))
            if ct.email:
                bits.append(_esc(ct.email))
            if ct.orcid:
                bits.append(f"ORCID [{ct.orcid}](https://orcid.org/{ct.orcid})")
            add("- " + ", ".join(bits))
    else:
        add("- *(no contact named yet: answer `contacts` with name, email and ORCID)*")
    add("")
    if a.funder:
        add(f"Funded by {_esc(a.funder)}" + (f" (grant {_esc(a.grant_id)})" if a.grant_id else "") + ".")
    if c.total is not None:
        add(f"Storage is budgeted at {c.total:,.2f} {c.currency} over {c.retention_years} years (section 3).")
    add(
        "The plan is regenerated from the data (`bioimnb dmp`) whenever they grow, so the figures stay current; the "
        "contacts above keep the answers up to date."
    )
    add("")

    # Appendices ---------------------------------------------------------------------------
    add("## Appendix A: measured facts")
    add("")
    add("| Id | Fact | Value | Measured by |")
    add("|---|---|---|---|")
    for fid, label, value, basis in F.rows:
        add(f"| {fid} | {_esc(label)} | {_esc(value)} | {_esc(basis)} |")
    add("")
    add(
        f"Scan of {len(f.sources)} location{'s' if len(f.sources) != 1 else ''} on {f.scanned_at}: "
        f"{f.entries:,} entries, {f.cached:,} from the facts cache, {f.scan_seconds:.2f} s."
    )
    add("")
    if f.failures:
        add("## Appendix B: files that could not be opened")
        add("")
        add("| File | Reason |")
        add("|---|---|")
        for row in f.failures[:MAX_LISTED_FAILURES]:
            add(f"| {_code(row['path'])} | {_esc(row['error'])} |")
        if len(f.failures) > MAX_LISTED_FAILURES:
            add(f"| ... | and {len(f.failures) - MAX_LISTED_FAILURES:,} more (`bioimnb scan --json` lists all) |")
        add("")
    return "\n".join(lines)


_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; line-height: 1.5; color: #1d1d1f; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; vertical-align: top; }
th { background: #f3f3f3; }
code { background: #f5f5f5; padding: 0 0.2rem; }
figure { margin: 1rem 0; }
figcaption { font-size: 0.85rem; color: #555; }
"""


def render_html(plan: Plan, *, full_page: bool = True) -> str:
    """The plan as HTML: the Markdown rendered by mistune (answers' raw HTML escaped), charts
    embedded as PNG data URIs.  ``full_page=False``: a fragment (notebooks, the panel)."""
    import mistune

    md = mistune.create_markdown(escape=True, plugins=["table"])
    body = str(md(_markdown_with_placeholders(plan)))
    charts = plan.charts

    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        png = charts.get(name)
        if png is None:
            return ""
        data = base64.b64encode(png).decode("ascii")
        title = html.escape(CHART_TITLES.get(name, name))
        return (
            f'<figure class="bioimnb-chart" data-chart="{name}"><img alt="{title}" '
            f'src="data:image/png;base64,{data}"/><figcaption>{title}</figcaption></figure>'
        )

    body = re.sub(r"<p>CHART:(\w+)</p>", repl, body)
    if not full_page:
        return f'<div class="bioimnb-dmp">{body}</div>'
    title = html.escape(plan.answers.title or "Data management plan")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{title}</title><style>{_CSS}</style></head><body>\n{body}\n</body></html>\n"
    )


def summary_line(plan: Plan) -> str:
    f = plan.facts
    return f"{count(f.images, 'image')}, {count(f.files, 'file')}, {size(f.bytes)}, {len(f.failures):,} unreadable"

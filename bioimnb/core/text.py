"""Plain-text renderings of core results, shared by the command line and the ``%bioim`` magic."""

from __future__ import annotations

from typing import Any

__all__ = ["format_info", "format_listing", "human_size"]


def human_size(n: int | None) -> str:
    if n is None:
        return ""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)


def _yx(shape: list[int], axes: str) -> str:
    y, x = (shape[-3], shape[-2]) if axes.endswith("S") else (shape[-2], shape[-1])
    return f"{y}x{x}"


def format_info(info: dict[str, Any]) -> str:
    """``MultiscaleImage.describe()`` as a few readable lines."""
    lines = [f"{info['source']}  [{info['format']}, read by {info['reader']}]"]
    for warning in info.get("warnings") or []:
        lines.append(f"  WARNING: {warning}")
    if info.get("associated"):
        lines.append(f"  associated images: {', '.join(info['associated'])}  (img.associated(name))")
    if info.get("incomplete"):
        lines.append("  INCOMPLETE: an interrupted conversion wrote this; finish it with `bioimnb convert SRC DST --resume`")
    for scene in info["scenes"]:
        px = scene["physical_size_um"]
        size = " x ".join("?" if px[a] is None else f"{px[a]:g}" for a in ("X", "Y", "Z"))
        pyramid = "virtual pyramid" if scene.get("virtual_pyramid") else "levels"
        lines += [
            f"  scene {scene['index']}: {scene['name']}",
            f"    axes {scene['axes']}  shape {tuple(scene['shape'])}  dtype {scene['dtype']}",
            f"    {pyramid}: " + ", ".join(_yx(lv, scene["axes"]) for lv in scene["levels"]),
            f"    pixel size (X x Y x Z, um): {size}",
            f"    channels: {', '.join(scene['channels'])}",
        ]
        if scene.get("labels"):
            lines.append(f"    labels: {', '.join(scene['labels'])}")
    return "\n".join(lines)


def format_listing(page: dict[str, Any]) -> str:
    """A listing page (``ListingPage.to_dict()``) as aligned lines."""
    lines = []
    for entry in page["entries"]:
        kind = entry["format"] or entry["kind"]
        files = f" ({entry['files']} files)" if entry.get("files") and entry["files"] > 1 else ""
        name = entry["name"] + ("/" if entry["kind"] == "folder" else "")
        lines.append(f"{kind:>14}  {human_size(entry['size']):>9}  {name}{files}")
    if page.get("next_page"):
        lines.append(f"... more: --page {page['next_page']}")
    return "\n".join(lines)


def format_scan_line(facts: dict[str, Any]) -> str:
    """One entry of ``bioimnb scan`` as a readable line."""
    kind = facts.get("format") or facts["kind"]
    extra = ""
    scenes = facts.get("scenes") or []
    if scenes:
        first = scenes[0]
        extra = f"  {first['axes']} {'x'.join(map(str, first['shape']))} {first['dtype']}"
        if len(scenes) > 1:
            extra += f" (+{len(scenes) - 1} scenes)"
    if facts.get("incomplete"):
        extra += "  INCOMPLETE"
    if facts.get("error"):
        extra += f"  ERROR: {facts['error']}"
    return f"{kind:>14}  {human_size(facts.get('bytes')):>9}  {facts['path']}{extra}"


def format_scan_summary(summary: dict[str, Any]) -> str:
    return (
        f"{summary['images']} image(s), {summary['files']} other file(s), "
        f"{human_size(summary['bytes'])}, {summary['errors']} error(s) in {summary['seconds']:.1f} s"
    )

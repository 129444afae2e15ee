"""Charts of the plan (matplotlib, Agg, no pyplot state): volume by format, growth over time.

Each chart is PNG bytes; the HTML embeds them as data URIs, ``--output`` writes them beside the
plan.  Figures are made with :class:`matplotlib.figure.Figure` directly, so nothing touches the
global pyplot state or the notebook's backend.
"""

from __future__ import annotations

import io

from .aggregate import DmpFacts

__all__ = ["growth_chart", "make_charts", "volume_chart"]

OPEN_COLOUR = "#2a9d8f"
PROPRIETARY_COLOUR = "#e76f51"
OTHER_COLOUR = "#8d99ae"


def _png(fig: object) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # type: ignore[arg-type]
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)  # type: ignore[attr-defined]
    return buf.getvalue()


def _unit(n: float) -> tuple[float, str]:
    for div, name in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if n >= div:
            return div, name
    return 1.0, "bytes"


def volume_chart(facts: DmpFacts) -> bytes | None:
    """Horizontal bars: bytes per format (open green, proprietary orange, other files grey)."""
    rows = [(name, st.bytes, OPEN_COLOUR if st.open else PROPRIETARY_COLOUR) for name, st in facts.formats.items()]
    failed_bytes = facts.image_bytes - sum(st.bytes for st in facts.formats.values())
    if failed_bytes > 0:
        rows.append(("unreadable images", failed_bytes, OTHER_COLOUR))
    if facts.other_bytes:
        rows.append(("other files", facts.other_bytes, OTHER_COLOUR))
    if not rows:
        return None
    from matplotlib.figure import Figure

    div, unit = _unit(max(r[1] for r in rows))
    fig = Figure(figsize=(6.4, 0.5 + 0.45 * len(rows) + 0.8))
    ax = fig.add_subplot(1, 1, 1)
    names = [r[0] for r in rows][::-1]
    values = [r[1] / div for r in rows][::-1]
    ax.barh(names, values, color=[r[2] for r in rows][::-1])
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:,.2f}", va="center", fontsize=8)
    ax.set_xlabel(f"volume ({unit})")
    ax.set_title("Volume by format (green: open, orange: proprietary)", fontsize=10)
    ax.set_xlim(0, max(values) * 1.2 or 1)
    fig.tight_layout()
    return _png(fig)


def growth_chart(facts: DmpFacts) -> bytes | None:
    """Bars of bytes per month and the cumulative volume as a line."""
    if not facts.growth:
        return None
    from matplotlib.figure import Figure

    months = list(facts.growth)
    per_month = [facts.growth[m]["bytes"] for m in months]
    cumulative = []
    total = 0
    for v in per_month:
        total += v
        cumulative.append(total)
    div, unit = _unit(max(cumulative) or 1)
    fig = Figure(figsize=(6.4, 3.4))
    ax = fig.add_subplot(1, 1, 1)
    x = range(len(months))
    ax.bar(x, [v / div for v in per_month], color=OPEN_COLOUR, label="added that month")
    ax.plot(x, [v / div for v in cumulative], color="#264653", marker="o", label="cumulative")
    step = max(1, len(months) // 12)
    ax.set_xticks(list(x)[::step])
    ax.set_xticklabels(months[::step], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(f"volume ({unit})")
    ax.set_title(f"Growth per month (from {facts.growth_basis})", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def make_charts(facts: DmpFacts) -> dict[str, bytes]:
    """``{"volume_by_format": png, "growth": png}``, without the charts that have no data."""
    out: dict[str, bytes] = {}
    volume = volume_chart(facts)
    if volume is not None:
        out["volume_by_format"] = volume
    growth = growth_chart(facts)
    if growth is not None:
        out["growth"] = growth
    return out

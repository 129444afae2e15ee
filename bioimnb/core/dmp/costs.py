"""Storage cost: volume x copies x years x price, with the measured growth, assumptions shown.

TB here is decimal (10^12 bytes), as storage is sold.  The projected volume is what is stored
now plus the measured growth per month continued for ``growth_months`` (an answer, default
12); the cost is that volume x copies (working copy + backups) x retention years x the price per
TB per year.  Every input is listed in :attr:`Cost.assumptions` so the reader can redo the sum.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .aggregate import DmpFacts, size
from .answers import Answers

__all__ = ["TB", "Cost", "estimate"]

TB = 10**12


@dataclass
class Cost:
    volume_bytes: int
    growth_bytes_per_month: float
    growth_months: int
    projected_bytes: int
    copies: int
    retention_years: int
    price_per_tb_year: float | None
    currency: str
    total: float | None
    """None when no price was given."""
    zarr_projected_bytes: int
    zarr_total: float | None
    """The same sum if the proprietary files were converted to OME-Zarr (estimate)."""
    assumptions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate(facts: DmpFacts, answers: Answers) -> Cost:
    growth = float(facts.growth_bytes_per_month)
    projected = int(round(facts.bytes + growth * answers.growth_months))
    zarr_now = int(facts.zarr_estimate.get("after_conversion_total_bytes", facts.bytes))
    zarr_projected = int(round(zarr_now + growth * answers.growth_months))
    price = answers.price_per_tb_year
    units = answers.copies * answers.retention_years
    total = None if price is None else projected / TB * units * price
    zarr_total = None if price is None else zarr_projected / TB * units * price
    assumptions = [
        f"volume now: {facts.bytes:,} bytes ({size(facts.bytes)}), measured by the scan",
        (
            f"growth: {growth:,.0f} bytes per month (measured from {facts.growth_basis}) "
            f"for {answers.growth_months} more months"
            if facts.growth_basis != "none"
            else f"growth: none measured (no dates), so none added for the {answers.growth_months} months"
        ),
        f"copies: {answers.copies} (the working copy and {answers.backup_copies} backup{'s' if answers.backup_copies != 1 else ''})",
        f"retention: {answers.retention_years} years",
        (
            f"price: {price:,.2f} {answers.currency} per TB per year (1 TB = 10^12 bytes)"
            if price is not None
            else "price: not given (answer price_per_tb_year)"
        ),
    ]
    return Cost(
        facts.bytes,
        growth,
        answers.growth_months,
        projected,
        answers.copies,
        answers.retention_years,
        price,
        answers.currency,
        total,
        zarr_projected,
        zarr_total,
        assumptions,
    )

"""Repository advice: which public repositories fit the measured data, and why.

The rules are data (``repositories.json``: size limits, what each accepts, DOI, cost); this
module only compares them with the facts and the answers.  Each repository gets a status,
``suitable``, ``check`` (the facts cannot decide: say what to check) or ``unsuitable``, and
the reasons, each with the number it rests on.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from .aggregate import DmpFacts
from .answers import Answers

__all__ = ["Advice", "advise", "gb", "repositories"]

HERE = Path(__file__).resolve().parent
_RANK = {"suitable": 0, "check": 1, "unsuitable": 2}


@lru_cache(maxsize=1)
def repositories() -> list[dict[str, Any]]:
    """The repository table (``repositories.json``)."""
    return list(json.loads((HERE / "repositories.json").read_text(encoding="utf-8"))["repositories"])


def gb(n: float) -> str:
    """Decimal gigabytes, as repositories state their limits."""
    return f"{n / 1e9:,.1f} GB" if n >= 1e8 or n == 0 else f"{n / 1e9:,.3f} GB"


@dataclass
class Advice:
    name: str
    url: str
    type: str
    status: str
    reasons: list[str] = field(default_factory=list)
    doi: bool | None = None
    cost: str = ""
    planned: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _worse(current: str, new: str) -> str:
    return new if _RANK[new] > _RANK[current] else current


def _is_em(facts: DmpFacts, answers: Answers) -> bool | None:
    if answers.modality:
        return "electron" in answers.modality.lower()
    if facts.modalities.get("electron microscopy"):
        return True
    return None


def advise(facts: DmpFacts, answers: Answers) -> list[Advice]:
    """One :class:`Advice` per repository, suitable first, then by name."""
    volume = facts.bytes
    planned = (answers.repository or "").strip().lower()
    out: list[Advice] = []
    for rec in repositories():
        adv = Advice(rec["name"], rec["url"], rec["type"], "suitable", doi=rec.get("doi"), cost=rec.get("cost") or "")
        adv.planned = bool(planned) and planned == rec["name"].lower()
        if facts.empty:
            adv.status = "check"
            adv.reasons.append("nothing measured yet: the scanned locations hold no files")
        if rec.get("no_protected_health_data"):
            if answers.health_data == "yes":
                adv.status = _worse(adv.status, "unsuitable")
                adv.reasons.append("accepts no protected health information, and the answers say the data include some")
            elif answers.health_data == "unknown":
                adv.reasons.append("accepts no protected health information (not answered yet: health_data)")
        limit = rec.get("max_bytes")
        if limit is not None and not facts.empty:
            if volume > limit:
                adv.status = _worse(adv.status, "unsuitable")
                adv.reasons.append(f"{gb(volume)} measured is more than its {gb(limit)} limit per dataset")
            else:
                adv.reasons.append(f"{gb(volume)} measured is within its {gb(limit)} limit per dataset")
        free = rec.get("free_up_to_bytes")
        if free is not None and not facts.empty:
            if volume > free:
                adv.reasons.append(f"costs money: {gb(volume)} is above the {gb(free)} it takes free of charge ({rec.get('cost')})")
            else:
                adv.reasons.append(f"free of charge: {gb(volume)} is within the {gb(free)} it takes without a fee")
        if rec.get("modality") == "electron microscopy":
            em = _is_em(facts, answers)
            if em is True:
                adv.reasons.append("electron microscopy data only, and these are electron microscopy data")
            elif em is False:
                adv.status = _worse(adv.status, "unsuitable")
                adv.reasons.append(f"electron microscopy data only; the answers say {answers.modality}")
            else:
                adv.status = _worse(adv.status, "check")
                adv.reasons.append("electron microscopy data only; no instrument in the metadata says so (answer modality)")
        if rec.get("needs_time_series") and not facts.empty:
            if facts.time_series:
                adv.reasons.append(
                    f"takes {rec['accepts']}: {facts.time_series} of {facts.images} images are time series (T > 1)"
                )
            elif facts.images:
                adv.status = _worse(adv.status, "unsuitable")
                adv.reasons.append(f"takes {rec['accepts']}, and none of the {facts.images} images has more than one time point")
        if rec.get("review"):
            adv.status = _worse(adv.status, "check")
            adv.reasons.append(str(rec["review"]))
        adv.reasons.append("DOI for each entry" if rec.get("doi") else "no DOI stated")
        if rec.get("cost") == "free":
            adv.reasons.append("free of charge")
        out.append(adv)
    out.sort(key=lambda a: (_RANK[a.status], not a.planned, a.name.lower()))
    return out

"""The researcher's answers: what a scan cannot know (title, funder, contacts, licence, ...).

Answers come from keyword arguments, a YAML or JSON file, or the panel's form; all three go
through :func:`make_answers`, which refuses what is wrong with one line naming the field
(``licence: 'CC-BY-5.0' is not a known SPDX licence id ...``): an unknown licence, a negative
price, a malformed ORCID (its check digit is verified, ISO 7064 MOD 11-2), an unknown field.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import BioimnbError

__all__ = [
    "Answers",
    "Contact",
    "InvalidAnswer",
    "load_answers",
    "licences",
    "make_answers",
    "orcid_ok",
]

HERE = Path(__file__).resolve().parent
YES_NO = ("yes", "no", "unknown")


class InvalidAnswer(BioimnbError, ValueError):
    """An answer that cannot be used; the reason starts with the field's name."""


@lru_cache(maxsize=1)
def licences() -> dict[str, dict[str, str]]:
    """SPDX id -> {name, url}: the licences a plan may name (``licences.json``)."""
    data = json.loads((HERE / "licences.json").read_text(encoding="utf-8"))
    return dict(data["licences"])


def orcid_ok(orcid: str) -> bool:
    """Whether ``orcid`` is ``dddd-dddd-dddd-dddX`` with a valid ISO 7064 MOD 11-2 check
    character (the checksum ORCID documents; a few lines, so no library for it)."""
    if not re.fullmatch(r"\d{4}-\d{4}-\d{4}-\d{3}[\dX]", orcid):
        return False
    digits = orcid.replace("-", "")
    total = 0
    for ch in digits[:-1]:
        total = (total + int(ch)) * 2
    check = (12 - total % 11) % 11
    return digits[-1] == ("X" if check == 10 else str(check))


@dataclass
class Contact:
    name: str
    email: str | None = None
    orcid: str | None = None
    role: str | None = None
    """e.g. ``data manager``, ``principal investigator``."""

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Answers:
    """What the plan needs from a person.  Every field has a default, so a plan can be drafted
    from the data alone and completed later; the text says what is still missing."""

    title: str | None = None
    funder: str | None = None
    grant_id: str | None = None
    contacts: list[Contact] = field(default_factory=list)
    licence: str | None = None
    """SPDX id from :func:`licences`."""
    personal_data: str = "unknown"
    """``yes``, ``no`` or ``unknown`` (images of people, identifiable donors)."""
    health_data: str = "unknown"
    """Protected health information (``yes``, ``no``, ``unknown``)."""
    embargo_months: int = 0
    storage: str | None = None
    """Where the data live during the project (``institute file server``, ``S3 at ...``)."""
    backup_copies: int = 1
    """Copies kept besides the working copy."""
    retention_years: int = 10
    price_per_tb_year: float | None = None
    currency: str = "EUR"
    repository: str | None = None
    """Where the data will be deposited (a name from ``repositories.json``, or free text)."""
    modality: str | None = None
    """``light microscopy``, ``electron microscopy``, ... when the metadata does not say."""
    growth_months: int = 12
    """Months of further acquisition at the measured rate, for the cost estimate."""
    project_start: str | None = None
    project_end: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["contacts"] = [c.to_dict() for c in self.contacts]
        return out

    @property
    def copies(self) -> int:
        """Copies stored in all: the working copy and the backups."""
        return 1 + self.backup_copies


_FIELDS = {f.name for f in fields(Answers)}
_ALIASES = {"license": "licence", "contact": "contacts", "price_per_tb": "price_per_tb_year", "backups": "backup_copies"}


def _yes_no(value: Any, name: str, source: str) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value).strip().lower()
    if text in ("true", "y"):
        text = "yes"
    if text in ("false", "n"):
        text = "no"
    if text not in YES_NO:
        raise InvalidAnswer(source, f"{name}: {value!r} is not one of yes, no, unknown")
    return text


def _int(value: Any, name: str, source: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidAnswer(source, f"{name}: {value!r} is not a whole number")
    try:
        number = float(value)
    except ValueError:
        raise InvalidAnswer(source, f"{name}: {value!r} is not a whole number") from None
    if number != int(number):
        raise InvalidAnswer(source, f"{name}: {value!r} is not a whole number")
    if number < minimum:
        raise InvalidAnswer(source, f"{name}: {value!r} must be at least {minimum}")
    return int(number)


def _date(value: Any, name: str, source: str) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()[:10]
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise InvalidAnswer(source, f"{name}: {value!r} is not a date (YYYY-MM-DD)") from None


def _text(value: Any, name: str, source: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise InvalidAnswer(source, f"{name}: {value!r} is not text")
    text = " ".join(str(value).split())
    return text or None


def _contact(value: Any, index: int, source: str) -> Contact:
    where = f"contacts[{index}]"
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        raise InvalidAnswer(source, f"{where}: {value!r} is not a contact (name, email, orcid, role)")
    unknown = sorted(set(value) - {"name", "email", "orcid", "role"})
    if unknown:
        raise InvalidAnswer(source, f"{where}.{unknown[0]}: unknown field (a contact has name, email, orcid, role)")
    name = _text(value.get("name"), f"{where}.name", source)
    if not name:
        raise InvalidAnswer(source, f"{where}.name: a contact needs a name")
    email = _text(value.get("email"), f"{where}.email", source)
    if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        raise InvalidAnswer(source, f"{where}.email: {email!r} is not an e-mail address")
    orcid = _text(value.get("orcid"), f"{where}.orcid", source)
    if orcid is not None:
        orcid = re.sub(r"^https?://orcid\.org/", "", orcid).upper()
        if not orcid_ok(orcid):
            raise InvalidAnswer(
                source, f"{where}.orcid: {value.get('orcid')!r} is not a valid ORCID iD (0000-0000-0000-000X with a correct check digit)"
            )
    return Contact(name, email, orcid, _text(value.get("role"), f"{where}.role", source))


def make_answers(data: Any = None, *, source: str = "answers", **overrides: Any) -> Answers:
    """Validated :class:`Answers` from a mapping (a parsed YAML/JSON file, keyword arguments, the
    form) or an :class:`Answers`; ``overrides`` win.  Errors: :class:`InvalidAnswer` naming
    ``source`` and the field."""
    if isinstance(data, Answers):
        raw: dict[str, Any] = data.to_dict()
    elif data is None:
        raw = {}
    elif isinstance(data, dict):
        raw = dict(data)
    else:
        raise InvalidAnswer(source, f"answers must be a mapping of field: value, not {type(data).__name__}")
    raw.update(overrides)
    clean: dict[str, Any] = {}
    for key, value in raw.items():
        name = _ALIASES.get(str(key), str(key))
        if name not in _FIELDS:
            raise InvalidAnswer(source, f"{key}: unknown field (known: {', '.join(sorted(_FIELDS))})")
        if value is None or value == "":
            continue
        clean[name] = value
    out = Answers()
    for name in ("title", "funder", "grant_id", "storage", "repository", "modality"):
        if name in clean:
            setattr(out, name, _text(clean[name], name, source))
    if "contacts" in clean:
        items = clean["contacts"]
        if isinstance(items, (str, dict)):
            items = [items]
        if not isinstance(items, list):
            raise InvalidAnswer(source, "contacts: expected a list of contacts")
        out.contacts = [_contact(c.to_dict() if isinstance(c, Contact) else c, i, source) for i, c in enumerate(items)]
    if "licence" in clean:
        wanted = str(clean["licence"]).strip()
        known = licences()
        match = next((k for k in known if k.lower() == wanted.lower()), None)
        if match is None:
            raise InvalidAnswer(
                source, f"licence: {wanted!r} is not a known SPDX licence id (known: {', '.join(known)})"
            )
        out.licence = match
    for name in ("personal_data", "health_data"):
        if name in clean:
            setattr(out, name, _yes_no(clean[name], name, source))
    for name, minimum in (("embargo_months", 0), ("backup_copies", 0), ("retention_years", 1), ("growth_months", 0)):
        if name in clean:
            setattr(out, name, _int(clean[name], name, source, minimum))
    if "price_per_tb_year" in clean:
        value = clean["price_per_tb_year"]
        try:
            price = float(value)
        except (TypeError, ValueError):
            raise InvalidAnswer(source, f"price_per_tb_year: {value!r} is not a number") from None
        if isinstance(value, bool) or price != price or price in (float("inf"), float("-inf")):
            raise InvalidAnswer(source, f"price_per_tb_year: {value!r} is not a number")
        if price < 0:
            raise InvalidAnswer(source, f"price_per_tb_year: {value!r} is negative (a price per TB per year is 0 or more)")
        out.price_per_tb_year = price
    if "currency" in clean:
        cur = str(clean["currency"]).strip().upper()
        if not re.fullmatch(r"[A-Z]{3}", cur):
            raise InvalidAnswer(source, f"currency: {clean['currency']!r} is not an ISO 4217 code (EUR, USD, GBP, ...)")
        out.currency = cur
    for name in ("project_start", "project_end"):
        if name in clean:
            setattr(out, name, _date(clean[name], name, source))
    return out


def load_answers(path: str | os.PathLike[str]) -> Answers:
    """Answers from a YAML (``.yaml``/``.yml``) or JSON file; errors name the file."""
    import yaml

    shown = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidAnswer(shown, "answers file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidAnswer(shown, f"cannot read the answers file ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        data = json.loads(text) if shown.lower().endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        first = (str(exc).strip().splitlines() or ["malformed"])[0]
        raise InvalidAnswer(shown, f"not valid YAML or JSON ({first})") from None
    return make_answers(data, source=shown)

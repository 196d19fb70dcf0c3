"""Fixed first-shell radii per cation for campaigns (``shell_cutoffs.yaml``, with its rule)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

from solvflow.errors import SpecError

CUTOFFS_FILE = "shell_cutoffs.yaml"


@lru_cache(maxsize=1)
def _table() -> dict[str, Any]:
    import yaml

    text = resources.files("solvflow.analysis").joinpath(CUTOFFS_FILE).read_text(
        encoding="utf-8")
    doc = yaml.safe_load(text) or {}
    cations = doc.get("cations")
    if not isinstance(cations, dict) or not isinstance(doc.get("rule"), str):
        raise SpecError(f"{CUTOFFS_FILE}: needs 'rule' (text) and 'cations' (a mapping)")
    for name, entry in cations.items():
        value = entry.get("cutoff_nm") if isinstance(entry, dict) else None
        if not isinstance(value, (int, float)) or not 0.1 < value < 1.0:
            raise SpecError(f"{CUTOFFS_FILE}: {name}: cutoff_nm must be a number in "
                            f"(0.1, 1.0) nm, got {value!r}")
    return doc


def reference_cutoffs(cation: str, partners: list[str]) -> tuple[dict[str, float], str] | None:
    """(partner -> shell radius in nm, a one-line source) for ``cation``, or None if unlisted."""
    doc = _table()
    entry = doc["cations"].get(cation)
    if entry is None:
        return None
    cutoff = float(entry["cutoff_nm"])
    reference = float(entry["reference_nm"])
    contact = str(entry.get("contact", f"{cation}-O"))
    label = (f"reference: {contact} {reference:g} nm + {cutoff - reference:.2f} nm = "
             f"{cutoff:g} nm "
             f"({doc['rule']}; solvflow/analysis/{CUTOFFS_FILE})")
    return {p: cutoff for p in partners}, label


__all__ = ["CUTOFFS_FILE", "reference_cutoffs"]

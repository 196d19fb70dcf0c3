"""The claims file (claims.yaml): data classes and strict validation.

Format (docs/claims.md): ``claims`` (id, title, statement, source, system,
mode, notes, tests) and optional ``experiments`` (measured numbers shown
beside simulated ones). Each test: quantity (the closed list of
:mod:`solvflow.campaign.runs`), at (a composition or a list), compare
(``>=``, ``>``, ``<=``, ``<``) and exactly one of threshold or than_at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from solvflow.campaign.compare import concentration_label
from solvflow.campaign.runs import Quantity, parse_quantity
from solvflow.errors import SpecError

COMPARISONS = (">=", ">", "<=", "<")
VERDICTS = ("supported", "contradicted", "inconclusive")
_FILE_KEYS = {"version", "claims", "experiments"}
_CLAIM_KEYS = {"id", "title", "statement", "source", "system", "mode", "tests", "notes"}
_TEST_KEYS = {"quantity", "at", "compare", "threshold", "than_at", "system", "mode"}
_EXPERIMENT_KEYS = {"system", "mode", "at", "quantity", "value", "source", "note"}


class ClaimsFileError(SpecError):
    """A claims file is malformed (unknown key, quantity or comparison; missing field)."""


@dataclass(frozen=True)
class Test:
    """``quantity`` of ``system`` at composition ``at`` compared with a threshold or ``than_at``."""

    quantity: Quantity
    system: str
    mode: str
    at: float
    compare: str
    threshold: float | None = None
    than_at: float | None = None

    def describe(self) -> str:
        other = (f"{self.threshold:g}" if self.threshold is not None
                 else f"at {concentration_label(self.mode, float(self.than_at or 0))}")
        return (f"{self.quantity.name} of {self.system} at "
                f"{concentration_label(self.mode, self.at)} {self.compare} {other}")


@dataclass(frozen=True)
class Claim:
    id: str
    title: str
    statement: str
    source: str
    tests: tuple[Test, ...]
    notes: str = ""


@dataclass(frozen=True)
class Experiment:
    """A measured number to show beside the simulated one (not used in verdicts)."""

    system: str
    mode: str
    at: float
    quantity: Quantity
    value: float
    source: str
    note: str = ""


@dataclass(frozen=True)
class ClaimsFile:
    path: str
    claims: tuple[Claim, ...]
    experiments: tuple[Experiment, ...]


def default_claims_path() -> Path:
    """The shipped claims.yaml (the review's six claims)."""
    return Path(str(resources.files("solvflow.campaign") / "claims.yaml"))


def load_claims(path: str | Path | None = None) -> ClaimsFile:
    """Read and strictly validate a claims file (default: the shipped one)."""
    import yaml

    where = Path(path) if path is not None else default_claims_path()
    try:
        raw = yaml.safe_load(where.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ClaimsFileError(f"cannot read claims file {where}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ClaimsFileError(f"claims file {where} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ClaimsFileError(f"{where}: expected a mapping with 'claims'")
    _keys(raw, _FILE_KEYS, {"claims"}, str(where))
    if not isinstance(raw["claims"], list) or not raw["claims"]:
        raise ClaimsFileError(f"{where}: 'claims' must be a non-empty list")
    claims = tuple(_claim(c, f"{where}: claim {i + 1}") for i, c in enumerate(raw["claims"]))
    ids = [c.id for c in claims]
    if len(set(ids)) != len(ids):
        raise ClaimsFileError(f"{where}: claim ids must be unique, got {ids}")
    experiments = tuple(_experiment(e, f"{where}: experiment {i + 1}")
                        for i, e in enumerate(raw.get("experiments") or []))
    label = str(where) if path is not None else "claims.yaml shipped with solvflow"
    return ClaimsFile(label, claims, experiments)


def _keys(item: Any, allowed: set[str], required: set[str], where: str) -> None:
    if not isinstance(item, dict):
        raise ClaimsFileError(f"{where}: expected a mapping, got {item!r}")
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise ClaimsFileError(f"{where}: unknown key {unknown[0]!r}; allowed: "
                              f"{', '.join(sorted(allowed))}")
    absent = sorted(required - set(item))
    if absent:
        raise ClaimsFileError(f"{where}: missing {', '.join(absent)}")


def _number(value: Any, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ClaimsFileError(f"{where}: {what} must be a number, got {value!r}")
    return float(value)


def _quantity(name: Any, where: str) -> Quantity:
    try:
        return parse_quantity(name)
    except ValueError as exc:
        raise ClaimsFileError(f"{where}: {exc}") from None


def _claim(raw: Any, where: str) -> Claim:
    _keys(raw, _CLAIM_KEYS, {"id", "statement", "source", "tests"}, where)
    where = f"{where.rsplit(':', 1)[0]}: claim {raw['id']}"
    if not isinstance(raw["tests"], list) or not raw["tests"]:
        raise ClaimsFileError(f"{where}: 'tests' must be a non-empty list")
    tests: list[Test] = []
    for k, t in enumerate(raw["tests"]):
        tests += _tests(t, raw, f"{where}, test {k + 1}")
    return Claim(str(raw["id"]), str(raw.get("title") or raw["statement"]),
                 str(raw["statement"]).strip(), str(raw["source"]).strip(), tuple(tests),
                 str(raw.get("notes") or "").strip())


def _tests(raw: Any, claim: dict[str, Any], where: str) -> list[Test]:
    """One test per composition of ``at`` (a number or a list of numbers)."""
    _keys(raw, _TEST_KEYS, {"quantity", "at", "compare"}, where)
    quantity = _quantity(raw["quantity"], where)
    if raw["compare"] not in COMPARISONS:
        raise ClaimsFileError(f"{where}: unknown comparison {raw['compare']!r}; allowed: "
                              f"{', '.join(COMPARISONS)}")
    if ("threshold" in raw) == ("than_at" in raw):
        raise ClaimsFileError(f"{where}: give exactly one of 'threshold' (a number) or "
                              "'than_at' (another composition of the same system)")
    system = raw.get("system", claim.get("system"))
    if not isinstance(system, str) or not system:
        raise ClaimsFileError(f"{where}: no system (give 'system' in the claim or the test)")
    mode = str(raw.get("mode", claim.get("mode", "molarity")))
    ats = raw["at"] if isinstance(raw["at"], list) else [raw["at"]]
    threshold = _number(raw["threshold"], "threshold", where) if "threshold" in raw else None
    than = _number(raw["than_at"], "than_at", where) if "than_at" in raw else None
    return [Test(quantity, system, mode, _number(a, "at", where), raw["compare"], threshold,
                 than) for a in ats]


def _experiment(raw: Any, where: str) -> Experiment:
    _keys(raw, _EXPERIMENT_KEYS, {"system", "at", "quantity", "value", "source"}, where)
    return Experiment(str(raw["system"]), str(raw.get("mode", "molarity")),
                      _number(raw["at"], "at", where), _quantity(raw["quantity"], where),
                      _number(raw["value"], "value", where), str(raw["source"]),
                      str(raw.get("note") or ""))

"""Ionic conductivity: Nernst-Einstein and Einstein-Helfand, in S/m, with time-block errors.

* **Nernst-Einstein** (ideal, no ion-ion correlation):
  ``sigma_NE = e^2 / (V k_B T) * sum_s N_s z_s^2 D_s`` over every ion species,
  from the self-diffusion coefficients.
* **Einstein-Helfand** (collective, includes all cross-correlations):
  ``sigma_EH = e^2 / (6 V k_B T) * d/dtau <|M(t+tau) - M(t)|^2>`` with the
  translational dipole ``M(t) = sum_i z_i r_i(t)`` of the unwrapped ion
  centres of mass (nm), fitted over the same window as D.

Charges: ``z`` are the **formal** charges (+1, -1); the simulation used
``s * z`` (charge scale s, e.g. 0.8). Every value is reported twice and
labelled: ``scaled_charges_S_m`` uses the simulated charges (``s^2`` times
the formal one: the model's own conductivity), ``formal_charges_S_m`` the
same ion motion with formal charges (the rescaling some authors apply to
compare with experiment). V is the mean box volume of the analysed frames.
Errors: the same quantity from each contiguous time block,
``std(ddof=1)/sqrt(n_blocks)``. Neither value is finite-size corrected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from solvflow.analysis.residence import lag_grid
from solvflow.analysis.stats import block_of_frames, block_stderr
from solvflow.analysis.transport import FIT_END, FIT_START, fit_diffusion

ELEMENTARY_CHARGE_C = 1.602176634e-19
BOLTZMANN_J_K = 1.380649e-23
NM3_TO_M3 = 1e-27
NM2_PS_TO_M2_S = 1e-6


def conductivity_prefactor(volume_nm3: float, temperature_K: float) -> float:
    """``e^2 / (V k_B T)`` in S/m per (nm^2/ps) of ``sum z^2 D`` (SI: C^2 / (m^3 J))."""
    return ELEMENTARY_CHARGE_C**2 * NM2_PS_TO_M2_S / (volume_nm3 * NM3_TO_M3 * BOLTZMANN_J_K
                                                     * temperature_K)


def collective_msd(dipole: NDArray[np.float64], lags: NDArray[np.int64]) -> NDArray[np.float64]:
    """``<|M(t+lag) - M(t)|^2>`` over all origins, shape (n_lags,); NaN without origins.

    Parameters
    ----------
    dipole : ndarray, shape (n_frames, 3), e nm
    lags : ndarray of int64, shape (n_lags,), analysed frames
    """
    out = np.full(lags.size, np.nan)
    for k, lag in enumerate(lags.tolist()):
        if lag < dipole.shape[0]:
            d = dipole[lag:] - dipole[: dipole.shape[0] - lag]
            out[k] = float(np.mean(np.einsum("ij,ij->i", d, d)))
    return out


def einstein_helfand_slope(dipole: NDArray[np.float64], max_lag: int,
                           dt_ps: float) -> tuple[float | None, dict[str, Any]]:
    """Slope/6 (e^2 nm^2/ps) of the collective MSD over 20-100 % of ``max_lag``, and the curve."""
    lags = lag_grid(max(0, min(max_lag, dipole.shape[0] - 1)))
    lags_ps = lags.astype(np.float64) * dt_ps
    curve = collective_msd(dipole, lags)
    window = (FIT_START * float(lags_ps[-1]), FIT_END * float(lags_ps[-1]))
    slope = fit_diffusion(lags_ps, curve, window)  # slope / 6
    return slope, {"fit_window_ps": list(window), "lag_ps": lags_ps.tolist(),
                   "msd_e2_nm2": [None if not np.isfinite(v) else float(v) for v in curve]}


def nernst_einstein(diffusion: Mapping[str, float | None], counts: Mapping[str, int],
                    charges: Mapping[str, float], prefactor: float) -> float | None:
    """``prefactor * sum_s N_s z_s^2 D_s`` (S/m) over charged species; None if a D is missing."""
    total = 0.0
    for name, z in charges.items():
        if z == 0:
            continue
        d = diffusion.get(name)
        if d is None:
            return None
        total += counts[name] * z * z * d
    return prefactor * total


def conductivity(
    *, dipole: NDArray[np.float64], diffusion: Mapping[str, float | None],
    block_diffusion: Mapping[str, Sequence[float | None]], counts: Mapping[str, int],
    charges: Mapping[str, float], charge_scale: float, volume_nm3: float, temperature_K: float,
    dt_ps: float, max_lag: int, n_blocks: int, block_max_lag: int,
) -> dict[str, Any]:
    """Both estimates, raw (scaled charges) and rescaled to formal charges, with block errors.

    Parameters
    ----------
    dipole : ndarray, shape (n_frames, 3)
        ``M(t) = sum_i z_i r_i(t)`` with formal charges, e nm.
    diffusion : mapping species -> D (nm^2/ps)
    block_diffusion : mapping species -> D of each time block (nm^2/ps)
    counts, charges : mapping species -> number of molecules, formal charge (e)
    charge_scale : float
        Simulated charges are ``charge_scale * z``.
    volume_nm3, temperature_K, dt_ps : float
    max_lag, block_max_lag : int
        Longest lag (frames) of the whole-run and of the per-block fits.
    n_blocks : int
    """
    pre = conductivity_prefactor(volume_nm3, temperature_K)
    s2 = charge_scale**2
    ne = nernst_einstein(diffusion, counts, charges, pre)
    n_b = len(next(iter(block_diffusion.values()), []))
    ne_blocks = [nernst_einstein({k: v[b] for k, v in block_diffusion.items()}, counts, charges,
                                 pre) for b in range(n_b)]
    slope, curve = einstein_helfand_slope(dipole, max_lag, dt_ps)
    eh = None if slope is None else pre * slope
    blocks = block_of_frames(dipole.shape[0], n_blocks)
    eh_blocks = []
    for b in range(int(blocks.max()) + 1 if blocks.size else 0):
        part = dipole[blocks == b]
        sl, _ = einstein_helfand_slope(part, min(block_max_lag, part.shape[0] // 2), dt_ps)
        eh_blocks.append(None if sl is None else pre * sl)

    def both(value: float | None, per_block: list[float | None]) -> dict[str, Any]:
        err = block_stderr([np.nan if x is None else x for x in per_block])
        return {
            "scaled_charges_S_m": None if value is None else value * s2,
            "stderr_scaled_charges_S_m": None if err is None else err * s2,
            "formal_charges_S_m": value,
            "stderr_formal_charges_S_m": err,
            "block_formal_charges_S_m": per_block,
        }

    return {
        "nernst_einstein": both(ne, ne_blocks),
        "einstein_helfand": {**both(eh, eh_blocks), **curve},
        "haven_ratio": None if ne is None or eh is None or eh == 0 else ne / eh,
        "charge_scale": charge_scale,
        "formal_charges": dict(charges),
        "scaled_charges": {k: charge_scale * z for k, z in charges.items()},
        "volume_nm3": volume_nm3,
        "temperature_K": temperature_K,
        "stderr_method": f"{n_blocks} time blocks",
        "labels": {
            "scaled_charges_S_m": "with the simulated (scaled) ionic charges s*z: the model's "
                                  "own conductivity",
            "formal_charges_S_m": "the same ion motion with formal charges z (scaled value / "
                                  "s^2)",
        },
    }


@dataclass(frozen=True)
class IonCharges:
    """Charges for the conductivity, or why it cannot be computed.

    Attributes
    ----------
    formal : dict name -> formal charge (e) of every analysed species
    charge_scale : float
        Simulated charge = ``charge_scale * formal``.
    temperature_K : float or None
    per_molecule : ndarray, shape (n_tracked,)
        Formal charge of each tracked molecule (cation first, then partners in order).
    reason : str
        Non-empty when the conductivity cannot be computed (it is then omitted with it).
    """

    formal: dict[str, float]
    charge_scale: float
    temperature_K: float | None
    per_molecule: NDArray[np.float64]
    reason: str = ""


def ion_charges(groups: Sequence[tuple[str, int]], formal: Mapping[str, float] | None,
                charge_scale: float | None, temperature_K: float | None,
                other_charged: Sequence[str] = ()) -> IonCharges:
    """Check that every ion is tracked and a temperature is known.

    Parameters
    ----------
    groups : sequence of (name, n_molecules)
        Tracked species in tracker order (cation, then partners).
    formal : mapping name -> formal charge, optional
    charge_scale, temperature_K : float, optional
    other_charged : sequence of str
        Charged species of the system that are not analysed (makes the conductivity
        incomplete, so it is omitted).
    """
    scale = 1.0 if charge_scale is None else float(charge_scale)
    z = {name: float((formal or {}).get(name, 0.0)) for name, _ in groups}
    per_mol = np.concatenate([np.full(n, z[name]) for name, n in groups])
    reason = ""
    if formal is None:
        reason = "ion charges unknown: give charges={NAME: z} (--charge NAME=Z)"
    elif unknown := sorted(set(formal) - {name for name, _ in groups}):
        reason = f"charges given for species that are not analysed: {', '.join(unknown)}"
    elif other_charged:
        reason = (f"charged species {', '.join(other_charged)} are not analysed "
                  "(not partners): the conductivity would be incomplete")
    elif temperature_K is None or not temperature_K > 0:
        reason = "temperature unknown: give temperature_K (--temperature-k)"
    elif not scale > 0:
        reason = f"charge scale must be positive, got {charge_scale}"
    elif not any(z.values()):
        reason = "no charged species among the analysed ones"
    return IonCharges(z, scale, temperature_K, per_mol, reason)


def conductivity_of(acc: Any, data: Mapping[str, Any], ions: IonCharges | None, dt_ps: float,
                    n_blocks: int) -> dict[str, Any]:
    """The ``conductivity`` entry of analysis.json from a finished accumulator."""
    if ions is None or ions.reason or ions.temperature_K is None:
        return {"note": ions.reason if ions is not None else "not computed"}
    diffusion = data.get("diffusion") or {}
    if not diffusion or acc.block_msd is None:
        return {"note": "too few frames for a diffusion fit"}
    charged = {k: v for k, v in ions.formal.items() if v}
    return conductivity(
        dipole=acc.dipole(), diffusion={k: diffusion[k]["D_nm2_ps"] for k in charged},
        block_diffusion={k: diffusion[k]["block_D_nm2_ps"] for k in charged},
        counts=data["n_ions"], charges=charged, charge_scale=ions.charge_scale,
        volume_nm3=acc.mean_volume_nm3, temperature_K=ions.temperature_K, dt_ps=dt_ps,
        max_lag=int(acc.lags[-1]), n_blocks=n_blocks, block_max_lag=int(acc.block_msd.lags[-1]))

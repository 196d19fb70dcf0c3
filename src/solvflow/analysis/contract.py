"""The words and units written into analysis.json (``definitions``, ``units``).

Kept apart from :mod:`solvflow.analysis.api` so that the text of the
contract is in one place; docs/analysis.md says the same at length.
"""

from __future__ import annotations

DEFINITIONS = {
    "shell": "partner sites within the partner's cutoff of the cation centre (minimum image); "
             "a molecule (residue) counts once",
    "coordination_numbers": "distinct partner molecules per cation shell, mean over cations "
                            "and frames",
    "coordination_numbers_atoms": "partner coordinating sites per cation shell",
    "paired_fractions": "fraction of cations with at least one molecule of the partner in "
                        "the shell",
    "ion_pairing": "SSIP: no anion in the shell; CIP: exactly one anion and it touches no other "
                   "cation; AGG: otherwise",
    "anion_states": "free: anion in no cation shell; CIP: in exactly one; AGG: in two or more",
    "clusters": "connected components of the cation-anion contact graph (free ions are size 1); "
                "size = number of ions",
    "residence_times_ps": "lag where the normalised intermittent contact autocovariance first "
                          "falls below 1/e (None: longer than the longest lag)",
    "residence_times_continuous_ps": "lag where the continuous contact correlation (contacts "
                                     "unbroken since the origin) first falls below 1/e",
    "diffusion": "slope/6 of the MSD of unwrapped molecular centres of mass over fit_window_ps; "
                 "no finite-size correction; stderr from n_blocks contiguous time blocks",
    "conductivity": "Nernst-Einstein e^2/(V kB T) sum N z^2 D and Einstein-Helfand "
                    "e^2/(6 V kB T) d<|dM|^2>/dt, M = sum z r; scaled_charges_S_m with the "
                    "simulated charges s*z, formal_charges_S_m with z (= scaled / s^2); "
                    "stderr from n_blocks time blocks",
    "stderr": "sqrt(var * g / N), g = statistical inefficiency of the per-frame series "
              "(shells, cluster sizes: per time bin); see effective_samples = N/g",
    "few_samples": "keys with effective_samples < 10: the error bar is unreliable",
    "correlation_time_ps": "integrated autocorrelation time (g - 1)/2 * dt",
    "timestep_source": "dt_ps (given), dcd_header (NSAVC x DELTA, trusted unless NSAVC=1 "
                       "and DELTA>=1 AKMA), frame_times (XTC/TRR/NetCDF/H5), unknown",
    "cutoffs_nm": "first minimum of the Gaussian-smoothed (sigma 0.01 nm) cation-site RDF "
                  "after its first peak, unless given (campaigns: the cation's fixed reference "
                  "radius, analysis/shell_cutoffs.yaml; cutoff_source says which)",
}
UNITS = {"distance": "nm", "time": "ps", "D_nm2_ps": "nm^2/ps", "D_m2_s": "m^2/s",
         "conductivity": "S/m", "charge": "e", "volume": "nm^3", "temperature": "K"}
ERROR_KEYS = ("stderr", "effective_samples", "correlation_time_ps", "few_samples")

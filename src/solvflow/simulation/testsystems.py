"""A small built-in system (a periodic TIP3P water box) for the platform speed probe.

(The tests write run directories of it with ``tests/water.py``.)

Made with OpenMM alone (Amber14/TIP3P files shipped with OpenMM), so it works
before any solvflow force field exists and on a machine with no network.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

WATER_CUTOFF_NM = 0.9


@lru_cache(maxsize=4)
def water_box_texts(edge_nm: float) -> tuple[str, str]:
    """(PDB text, serialized System) of a cubic water box; cached per edge."""
    import io

    import openmm
    from openmm import app, unit

    forcefield = app.ForceField("amber14-all.xml", "amber14/tip3p.xml")
    modeller = app.Modeller(app.Topology(), [])
    modeller.addSolvent(forcefield, model="tip3p", boxSize=openmm.Vec3(edge_nm, edge_nm,
                                                                        edge_nm) * unit.nanometer)
    system = forcefield.createSystem(modeller.topology, nonbondedMethod=app.PME,
                                     nonbondedCutoff=WATER_CUTOFF_NM * unit.nanometer,
                                     constraints=app.HBonds, rigidWater=True)
    out = io.StringIO()
    app.PDBFile.writeFile(modeller.topology, modeller.positions, out)
    return out.getvalue(), openmm.XmlSerializer.serialize(system)


def water_box(edge_nm: float = 2.0) -> tuple[Any, Any, NDArray[np.float64]]:
    """A periodic TIP3P water box: PME (0.9 nm), rigid water, no barostat.

    Parameters
    ----------
    edge_nm : float
        Cubic box edge in nm (2.0 nm: about 260 waters, 780 atoms).

    Returns
    -------
    topology : openmm.app.Topology
    system : openmm.System
    positions_nm : ndarray, shape (n_atoms, 3), float64, nm
    """
    import io

    import openmm
    from openmm import app, unit

    pdb_text, system_xml = water_box_texts(float(edge_nm))
    pdb = app.PDBFile(io.StringIO(pdb_text))
    positions = np.array(pdb.getPositions(asNumpy=True).value_in_unit(unit.nanometer))
    return pdb.topology, openmm.XmlSerializer.deserialize(system_xml), positions

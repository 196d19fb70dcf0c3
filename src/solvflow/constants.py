"""Physical constants used by more than one module (CODATA 2018 exact values), one place.

Ground floor: no imports, so any module (and any command) may use it.
"""

AVOGADRO = 6.02214076e23  # 1/mol, exact since the 2019 SI

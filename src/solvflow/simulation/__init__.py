"""The simulation step: platforms, protocols, reporters, checkpoints and resume.

``solvflow.simulate.simulate`` (also ``solvflow.simulate``) is the entry point;
the modules here are its parts:

- :mod:`~solvflow.simulation.protocols`: protocol YAML -> :class:`Protocol`
- :mod:`~solvflow.simulation.stages`: global step ranges and temperature schedules
- :mod:`~solvflow.simulation.platforms`: what loads, why not, how fast
- :mod:`~solvflow.simulation.reporters`: log, trajectory, progress, checkpoints, blow-up watch
- :mod:`~solvflow.simulation.rundir`: files, status.json, truncation on resume
- :mod:`~solvflow.simulation.run` and :mod:`~solvflow.simulation.engine`: the run itself
"""

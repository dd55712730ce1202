"""The scaling tools behind `scripts/scaling.py` (docs/SCALING.md): the sweep over `vaeas-dist bench`, the
collectives benchmark, the reports and the α–β projection to cluster scale.

Modules, each importing only those above it in this list (no cycles):

    alphabeta    the α–β(–γ) collective-cost model (ring, recursive doubling, Rabenseifner) and the step model
    timeline     the Chrome-trace timelines vaeas-dist writes with --timeline: self times, breakdowns, the PNG
    harness      `run`, `collectives`, `report` and its figures
    projection   `project`: the fits, the check against the sweep, the projection (PROJECTION.md)
    projection_plots   the projection's figures
    cli          the command line of scripts/scaling.py
"""

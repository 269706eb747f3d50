"""The Dagster Definitions of Stat19 over the landing of `STAT19_LANDING`: what `make ui`
(workspace.yaml) and `[tool.dagster]` in pyproject.toml load.

A module of its own, because building the graph reads the landing (for the first partition) and
takes a second or two: importing `stat19.defs` or any other of its modules does neither.
`stat19 run` builds its own graph for the landing it is given (`stat19.defs.graph`).
"""

from pathlib import Path

from stat19.defs import Stat19, first_date, graph

FIRST_DATE = first_date(Path(Stat19().landing))
defs = graph(FIRST_DATE).defs

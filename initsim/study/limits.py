"""The size limits of a study (read by the command line while it builds its parser).

Nothing here imports anything: ``initsim --help`` stays instant.
"""

__all__ = ["MAX_CELLS", "WARN_CELLS"]

#: Cells a spec may expand into unless ``max_cells`` says otherwise: every cell is
#: validated (about a millisecond each) and listed in the results manifest.
MAX_CELLS = 100_000
#: Above this many cells, parsing a spec issues a :class:`initsim.study.spec.StudySizeWarning`.
WARN_CELLS = 10_000

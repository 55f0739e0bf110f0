"""Interactive widgets (ipywidgets) with a static fallback.

Every widget function also draws a static figure when no widget front end exists (an executed
notebook, a PDF, a web page), so the same call teaches in every medium.
"""
from __future__ import annotations

# --------------------------------------------------------------------------- latent explorer (notebook 02, reused by 04 and 05)

# --------------------------------------------------------------------------- style and prompt widgets (notebooks 08-09)

"""lecture_utils: the library behind the Generative Models for Vision course.

A notebook begins with::

    import lecture_utils as lu
    nb = lu.start("01_autoencoders")      # version check, budget, device, seed
"""

__version__ = "0.1.0"

from .results import Session, require, start  # noqa: E402

__all__ = ["__version__", "Session", "require", "start"]

"""Test set-up: the smoke budget, offline data, a non-interactive matplotlib."""
import os

os.environ["LECTURE_UTILS_BUDGET"] = "smoke"
os.environ.setdefault("LECTURE_UTILS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

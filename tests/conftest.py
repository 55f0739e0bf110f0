"""Test set-up: the smoke budget, offline data, a non-interactive matplotlib."""
import atexit
import os
import shutil
import tempfile

os.environ["LECTURE_UTILS_BUDGET"] = "smoke"
os.environ.setdefault("LECTURE_UTILS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# An empty data folder of the tests' own: what an earlier run downloaded into data/ (torchvision's MNIST)
# must not change which digits the tests see; LECTURE_UTILS_DATA set by the caller is kept.
if "LECTURE_UTILS_DATA" not in os.environ:
    _data = tempfile.mkdtemp(prefix="lecture-utils-test-data-")
    os.environ["LECTURE_UTILS_DATA"] = _data
    atexit.register(shutil.rmtree, _data, ignore_errors=True)

import matplotlib  # noqa: E402

matplotlib.use("Agg")

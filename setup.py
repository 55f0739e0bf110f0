"""Build hook: the wheel carries the shipped checkpoints.

Everything else about the package is in pyproject.toml.  The checkpoints live in data/checkpoints/ (with
their manifest); a wheel built from the repository (``pip install .``, ``pip install git+URL``, ``python -m
build``) gets the manifest and every file it lists as ``lecture_utils/shipped/checkpoints/``, where
``lecture_utils.checkpoints.checkpoints_dir()`` finds them when the package runs outside a clone (a hosted
notebook).  An editable install reads data/checkpoints/ directly and copies nothing.
"""
import json
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SOURCE = Path(__file__).resolve().parent / "data" / "checkpoints"


class BuildWithCheckpoints(build_py):
    def run(self):
        super().run()
        manifest = SOURCE / "manifest.json"
        if getattr(self, "editable_mode", False) or not manifest.is_file():
            return
        target = Path(self.build_lib) / "lecture_utils" / "shipped" / "checkpoints"
        target.mkdir(parents=True, exist_ok=True)
        names = [entry["file"] for entry in json.loads(manifest.read_text()).values()]
        for name in ["manifest.json", *names]:
            shutil.copyfile(SOURCE / name, target / name)


setup(cmdclass={"build_py": BuildWithCheckpoints})

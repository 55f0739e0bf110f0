"""No public function or class of the course library takes more than 12 parameters: a recipe's options are
grouped in a small dataclass instead (e.g. :class:`lecture_utils.gans.GANOptions`)."""
import dataclasses
import importlib
import inspect
import pkgutil

import lecture_utils

MAX_PARAMETERS = 12

def public_callables():
    """(qualified name, callable) for every public function and class defined in a lecture_utils module."""
    for info in pkgutil.walk_packages(lecture_utils.__path__, "lecture_utils."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj) or inspect.isclass(obj):
                yield f"{module.__name__}.{name}", obj


def parameter_count(obj) -> int:
    """The parameters a caller can pass; a dataclass of options (the remedy) and a class that inherits its
    constructor from a library (e.g. DistributedDataParallel) do not count."""
    if inspect.isclass(obj) and (dataclasses.is_dataclass(obj) or "__init__" not in vars(obj)):
        return 0
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return 0
    return sum(1 for name in parameters if name not in ("self", "cls"))


def test_no_public_function_takes_more_than_12_parameters():
    seen = dict(public_callables())
    assert "lecture_utils.gans.train_gan" in seen and "lecture_utils.autoencoders.train_vae" in seen
    too_many = {name: parameter_count(obj) for name, obj in seen.items()
                if parameter_count(obj) > MAX_PARAMETERS}
    assert not too_many, f"more than {MAX_PARAMETERS} parameters (group options in a dataclass): {too_many}"

import random

import numpy as np
import pytest
import torch

from lecture_utils import budget as B


def test_budget_from_environment(monkeypatch):
    monkeypatch.setenv("LECTURE_UTILS_BUDGET", "standard")
    assert B.get_budget().name == "standard"
    monkeypatch.setenv("LECTURE_UTILS_BUDGET", "SMOKE")
    b = B.get_budget()
    assert b.name == "smoke" and b.progress is False


def test_default_budget_follows_cuda(monkeypatch):
    monkeypatch.delenv("LECTURE_UTILS_BUDGET", raising=False)
    expected = "full" if torch.cuda.is_available() else "standard"
    assert B.get_budget().name == expected
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert B.get_budget().name == "full"


def test_unknown_budget_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("LECTURE_UTILS_BUDGET", "huge")
    with pytest.raises(ValueError, match="smoke, standard, full.*'huge'"):
        B.get_budget()


def test_sizes_grow_with_the_budget():
    smoke, standard, full = (B.get_budget(n).sizes("01_autoencoders") for n in B.BUDGET_NAMES)
    assert smoke.n_train < standard.n_train <= full.n_train
    assert smoke.epochs < standard.epochs <= full.epochs
    with pytest.raises(ValueError, match="unknown budget section"):
        B.get_budget("smoke").sizes("no_such_notebook")


def test_every_size_table_has_three_entries():
    for section, table in B.SIZES.items():
        for key, value in table.items():
            assert isinstance(value, tuple) and len(value) == 3, f"{section}.{key}"


def test_device_choice(monkeypatch):
    monkeypatch.delenv("LECTURE_UTILS_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else None
    device = B.get_device()
    if expected:
        assert device.type == expected
    else:
        assert device.type in ("mps", "cpu")
    assert B.get_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            B.get_device("cuda")


def test_seed_everything_repeats():
    B.seed_everything(123)
    a = (random.random(), np.random.rand(), torch.rand(3))
    B.seed_everything(123)
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])
    with pytest.raises(ValueError, match="seed"):
        B.seed_everything(-1)


def test_presenter_mode_switches(monkeypatch):
    monkeypatch.delenv("LECTURE_UTILS_BUDGET", raising=False)
    monkeypatch.delenv("LECTURE_UTILS_PRETRAINED", raising=False)
    monkeypatch.setenv("LECTURE_UTILS_PRESENT", "1")
    assert B.presenting() and B.use_pretrained()
    assert B.get_budget().name == "smoke"
    monkeypatch.setenv("LECTURE_UTILS_PRETRAINED", "0")
    assert not B.use_pretrained()
    monkeypatch.setenv("LECTURE_UTILS_PRESENT", "0")
    monkeypatch.setenv("LECTURE_UTILS_PRETRAINED", "1")
    assert not B.presenting() and B.use_pretrained()
    monkeypatch.setenv("LECTURE_UTILS_PRESENT", "maybe")
    with pytest.raises(ValueError, match="LECTURE_UTILS_PRESENT must be 1 or 0"):
        B.presenting()


def test_presenter_mode_trains_listed_side_experiments_at_standard_size(monkeypatch):
    monkeypatch.delenv("LECTURE_UTILS_BUDGET", raising=False)
    monkeypatch.setitem(B.PRESENTER_STANDARD, "01_autoencoders", ("epochs",))
    monkeypatch.setenv("LECTURE_UTILS_PRESENT", "1")
    presented = B.get_budget().sizes("01_autoencoders")
    smoke, standard = (B.get_budget(n).sizes("01_autoencoders") for n in ("smoke", "standard"))
    assert presented.epochs == standard.epochs != smoke.epochs
    assert presented.n_train == smoke.n_train != standard.n_train     # everything else keeps its smoke size
    monkeypatch.setenv("LECTURE_UTILS_BUDGET", "smoke")                # a budget asked for by name: no overrides
    assert B.get_budget().sizes("01_autoencoders").epochs == smoke.epochs


def test_presenter_overrides_name_existing_sizes():
    for section, keys in B.PRESENTER_STANDARD.items():
        assert section in B.SIZES, section
        missing = set(keys) - set(B.SIZES[section])
        assert not missing, f"{section}: {sorted(missing)} are not sizes of this notebook"

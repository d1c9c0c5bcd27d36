"""fer_core.quality: duplicates, low contrast, mean faces, histograms, imbalance."""

from __future__ import annotations

import numpy as np
import pytest

from fer_core import quality
from fer_core.data import FerDataset
from fer_core.data.demo import make_demo
from fer_core.labels import EMOTIONS, NUM_CLASSES


def _dataset(images: np.ndarray, labels, usage) -> FerDataset:
    return FerDataset(images=images, labels=np.asarray(labels, dtype=np.int64),
                      usage=np.asarray(usage, dtype="<U11"), source="test", synthetic=False)


def _faces(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 48), dtype=np.uint8)


def test_duplicates_within_and_across_splits() -> None:
    images = _faces(10)
    images[1] = images[0]  # within Training
    images[2] = images[0]  # a third copy, within Training
    images[7] = images[3]  # PublicTest face also in Training (a leak)
    images[9] = images[8]  # within PrivateTest, labels differ
    usage = ["Training"] * 6 + ["PublicTest"] * 2 + ["PrivateTest"] * 2
    labels = [0, 0, 0, 1, 2, 3, 1, 1, 4, 5]
    report = quality.find_duplicates(_dataset(images, labels, usage))
    assert report.within == {"Training": 2, "PublicTest": 0, "PrivateTest": 1}
    assert report.across == {("Training", "PublicTest"): 1, ("Training", "PrivateTest"): 0,
                             ("PublicTest", "PrivateTest"): 0}
    assert report.conflicting == 1
    assert report.total == 4
    groups = [sorted(g.tolist()) for g in report.groups]
    assert groups[0] == [3, 7]  # cross-split groups come first
    assert sorted(groups[1:]) == [[0, 1, 2], [8, 9]]


def test_no_duplicates_in_random_faces() -> None:
    report = quality.find_duplicates(_dataset(_faces(50), np.arange(50) % 7, ["Training"] * 50))
    assert report.total == 0 and report.groups == [] and report.conflicting == 0


def test_low_contrast_finds_blank_and_washed_out_faces() -> None:
    images = _faces(6)
    images[2] = 0  # blank
    images[4] = 120 + (images[4] // 64)  # 4 grey levels only
    assert quality.low_contrast(images).tolist() == [2, 4]  # the flattest first
    std = quality.image_std(images)
    assert std.dtype == np.float32 and std[2] == 0
    np.testing.assert_allclose(std, images.reshape(6, -1).std(axis=1), rtol=1e-5)


def test_mean_faces_and_histograms_match_a_direct_computation() -> None:
    rng = np.random.default_rng(1)
    images = _faces(9000)  # more than one chunk
    labels = rng.integers(0, NUM_CLASSES - 1, 9000)  # the last class stays empty
    means = quality.mean_faces(images, labels)
    hists = quality.class_histograms(images, labels)
    assert means.shape == (NUM_CLASSES, 48, 48) and means.dtype == np.float32
    for c in range(NUM_CLASSES - 1):
        np.testing.assert_allclose(means[c], images[labels == c].mean(axis=0), atol=1e-3)
        np.testing.assert_array_equal(hists[c], np.bincount(images[labels == c].ravel(),
                                                            minlength=256))
    assert not means[-1].any() and not hists[-1].any()
    assert hists.sum() == images.size


def test_imbalance() -> None:
    assert quality.imbalance({"a": 10, "b": 2, "c": 5}) == ("a", "b", 5.0)
    assert quality.imbalance({"a": 3, "b": 0})[2] == float("inf")


def test_demo_problems_are_found() -> None:
    """The demo set plants cross-split copies and washed-out faces on purpose."""
    found = quality.quality_problems(make_demo(700, seed=0))
    assert any("also appear in Training" in f for f in found)
    assert any("low-contrast" in f for f in found)


def test_empty_class_is_reported() -> None:
    labels = np.arange(12) % 6  # no neutral
    found = quality.quality_problems(_dataset(_faces(12), labels, ["Training"] * 12))
    assert f"Training has no images of {EMOTIONS[6]}" in found


@pytest.mark.parametrize("n", [0, 1])
def test_tiny_inputs(n: int) -> None:
    images = _faces(n)
    assert quality.image_std(images).shape == (n,)
    assert quality.low_contrast(images).shape == (0,) or n == 1

"""spheres3d: generated volumes, the per-voxel loss, and Dice/IoU checked against scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, jaccard_score

from archsmith.errors import ArchsmithError
from archsmith.tasks import get_task
from archsmith.tasks.losses import segmentation_loss
from archsmith.tasks.metrics import dice_iou
from archsmith.tasks.volumes import make_spheres


@pytest.mark.parametrize(("size", "classes"), [(16, 3), (8, 2), (12, 5)])
def test_spheres3d_shapes_kinds_and_sizes(size: int, classes: int) -> None:
    task = get_task("spheres3d", size=size, num_classes=classes, num_examples=20)
    assert task.kind == "segmentation" and task.num_outputs == classes
    assert task.input.kind == "image" and task.input.shape == (1, size, size, size)
    assert (len(task.train), len(task.val), len(task.test)) == (20, 64, 64)
    for name in ("train", "val", "test"):
        s = task.split(name)
        assert s.x.dtype == torch.float32 and s.y.dtype == torch.int64
        assert s.x.shape == (len(s), 1, size, size, size) and s.y.shape == (
            len(s),
            size,
            size,
            size,
        )
        assert int(s.y.min()) >= 0 and int(s.y.max()) < classes
    # every foreground class occurs, and the background dominates but does not fill the volume
    counts = torch.bincount(task.train.y.reshape(-1), minlength=classes)
    assert (counts > 0).all() and 0.5 < counts[0] / counts.sum() < 0.97


def test_spheres3d_is_seeded_and_splits_are_independent_streams() -> None:
    a = get_task("spheres3d", size=8, num_examples=10, seed=3)
    b = get_task("spheres3d", size=8, num_examples=30, seed=3)
    c = get_task("spheres3d", size=8, num_examples=10, seed=4)
    assert torch.equal(a.val.x, b.val.x) and torch.equal(a.test.y, b.test.y)
    assert torch.equal(a.train.x, b.train.x[:10])  # same stream, more examples drawn
    assert not torch.equal(a.train.y, c.train.y)
    assert not torch.equal(a.train.y[:5], a.val.y[:5])


def test_clean_volumes_are_the_label_intensities_and_noise_has_its_scale() -> None:
    rng = np.random.default_rng(0)
    x, y = make_spheres(6, rng, size=10, num_classes=4, max_spheres=3, noise=0.0)
    np.testing.assert_array_equal(x[:, 0], (y / 3.0).astype(np.float32))
    x, y = make_spheres(
        6, np.random.default_rng(0), size=10, num_classes=4, max_spheres=3, noise=0.5
    )
    resid = x[:, 0].astype(np.float64) - y / 3.0
    assert abs(resid.std() - 0.5) < 0.02 and abs(resid.mean()) < 0.02


def test_segmentation_loss_is_the_mean_voxel_cross_entropy() -> None:
    logits = torch.randn(2, 3, 4, 5, 3, dtype=torch.float64)
    target = torch.randint(0, 3, (2, 4, 5, 3))
    logp = logits.log_softmax(1)
    naive = -np.mean(
        [
            float(logp[n, target[n, i, j, k], i, j, k])
            for n in range(2)
            for i in range(4)
            for j in range(5)
            for k in range(3)
        ]
    )
    assert abs(float(segmentation_loss(logits, target)) - naive) < 1e-12
    with pytest.raises(ArchsmithError, match="segmentation output"):
        segmentation_loss(logits[:, :, :3], target)


@pytest.mark.parametrize("classes", [2, 3, 5])
def test_dice_and_iou_match_scikit_learn(classes: int) -> None:
    g = torch.randint(0, classes, (3, 6, 5, 4))
    p = torch.where(torch.rand(g.shape) < 0.6, g, torch.randint(0, classes, g.shape))
    dice, iou = dice_iou(p, g, classes)
    labels = list(range(classes))
    ref_dice = f1_score(g.reshape(-1), p.reshape(-1), labels=labels, average=None)
    ref_iou = jaccard_score(g.reshape(-1), p.reshape(-1), labels=labels, average=None)
    np.testing.assert_allclose(dice, ref_dice, rtol=1e-12)
    np.testing.assert_allclose(iou, ref_iou, rtol=1e-12)


def test_task_metrics_perfect_partial_and_absent_classes() -> None:
    task = get_task("spheres3d", size=8, num_examples=4)
    y = task.train.y
    perfect = torch.nn.functional.one_hot(y, 3).movedim(-1, 1).float()
    assert task.metrics(perfect, y) == {"dice": 1.0, "iou": 1.0, "voxel_accuracy": 1.0}
    # all background predicted: foreground Dice 0, accuracy = background share
    background = torch.zeros_like(perfect)
    background[:, 0] = 1
    m = task.metrics(background, y)
    assert m["dice"] == 0.0 and m["iou"] == 0.0
    assert abs(m["voxel_accuracy"] - float((y == 0).double().mean())) < 1e-12
    # a class absent from prediction and truth is left out of the mean, not counted as 0
    only_bg = torch.zeros_like(y)
    m = task.metrics(torch.nn.functional.one_hot(only_bg, 3).movedim(-1, 1).float(), only_bg)
    assert math.isnan(m["dice"]) and m["voxel_accuracy"] == 1.0
    assert task.primary_metric == "dice" and task.greater_is_better
    assert float(task.loss(perfect * 50, y)) < 1e-9  # confident and right: no loss


def test_bad_options_raise_one_line_errors() -> None:
    with pytest.raises(ArchsmithError, match=r"spheres3d\.size"):
        get_task("spheres3d", size=2)
    with pytest.raises(ArchsmithError, match=r"spheres3d\.num_classes"):
        get_task("spheres3d", num_classes=1)
    with pytest.raises(ArchsmithError, match=r"spheres3d\.colour"):
        get_task("spheres3d", colour=1)

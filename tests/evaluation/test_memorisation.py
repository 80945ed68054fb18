"""nearest_distances and copy_share against direct computations (numpy loops, exact copies, a
hand-built threshold), every float dtype and device, and refusals of bad input."""
import math

import numpy as np
import pytest
import torch

from ddim_edu.evaluation.memorisation import copy_share, nearest_distances


def images(n, seed, size=6):
    g = torch.Generator().manual_seed(seed)
    return torch.rand((n, 1, size, size), generator=g, dtype=torch.float64) * 2 - 1


def test_nearest_distances_match_a_numpy_loop():
    x, ref = images(7, 0), images(11, 1)
    d, idx = nearest_distances(x, ref, k=3, batch_size=2)        # batches of 2: the seams must not show
    a, b = x.flatten(1).numpy(), ref.flatten(1).numpy()
    for i in range(len(a)):
        rms = np.array([math.sqrt(((a[i] - b[j]) ** 2).mean()) for j in range(len(b))])
        order = np.argsort(rms)[:3]
        assert idx[i].tolist() == order.tolist()
        np.testing.assert_allclose(d[i].numpy(), rms[order], rtol=1e-12)
    assert d.dtype == torch.float64 and idx.dtype == torch.long and d.shape == idx.shape == (7, 3)


def test_an_exact_copy_is_at_distance_zero_and_the_scale_is_rms():
    ref = images(5, 2)
    d, idx = nearest_distances(ref[[3, 0]], ref)
    assert d[:, 0].tolist() == [0.0, 0.0] and idx[:, 0].tolist() == [3, 0]
    black, white = -torch.ones(1, 1, 4, 4), torch.ones(1, 1, 4, 4)
    assert nearest_distances(black, white)[0].item() == pytest.approx(2.0)   # every pixel 2 apart


def test_copy_share_counts_below_the_held_out_quantile():
    train, held, samples = images(40, 3), images(30, 4), images(25, 5)
    samples[:6] = train[10:16] + 0.001                           # six near-copies
    res = copy_share(samples, train, held, q=0.2)
    dist = lambda s: np.array([min(math.sqrt(((u - v) ** 2).mean()) for v in train.flatten(1).numpy())
                               for u in s.flatten(1).numpy()])
    threshold = np.quantile(dist(held), 0.2)                      # numpy's default: linear interpolation
    k = int((dist(samples) < threshold).sum())
    assert res.threshold == pytest.approx(threshold, rel=1e-12)
    assert res.value == k / 25 and res.n == 25 and k >= 6
    assert res.stderr == pytest.approx(math.sqrt(k / 25 * (1 - k / 25) / 25))
    assert res.indices[:6].tolist() == list(range(10, 16))
    assert res.held_out_distances.shape == (30,) and res.distances.shape == (25,)


def test_training_images_are_all_copies_and_held_out_images_are_q():
    train, held = images(50, 6), images(40, 7)
    assert copy_share(train[:20], train, held).value == 1.0
    assert copy_share(held, train, held, q=0.25).value == pytest.approx(0.25, abs=1 / 40)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_every_float_dtype_and_device(dtype, device):
    grid = torch.arange(-4, 5, dtype=torch.float64) / 4                 # exact in every float dtype
    ref = grid[torch.randint(0, 9, (9, 1, 4, 4), generator=torch.Generator().manual_seed(8))]
    x = ref[[2, 5]].clone()
    x[0, 0, 0, 0] = -x[0, 0, 0, 0] if x[0, 0, 0, 0] != 0 else 0.5
    d64, i64 = nearest_distances(x, ref, k=2)
    d, i = nearest_distances(x.to(device, dtype), ref.to(device, dtype), k=2)
    assert torch.equal(i, i64) and torch.allclose(d, d64) and d.device.type == "cpu"


def test_bad_input_is_refused_by_name():
    ref = images(4, 9)
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        nearest_distances(torch.zeros(2, 1, 6, 6, dtype=torch.long), ref)
    with pytest.raises(TypeError, match="reference must be a torch.Tensor"):
        nearest_distances(ref, ref.numpy())
    with pytest.raises(ValueError, match="one shape"):
        nearest_distances(images(2, 0, size=5), ref)
    with pytest.raises(ValueError, match="k must be in"):
        nearest_distances(ref, ref, k=5)
    with pytest.raises(ValueError, match="k must be in"):
        nearest_distances(ref, ref, k=0)
    with pytest.raises(ValueError, match="at least one image"):
        nearest_distances(ref[:0], ref)
    with pytest.raises(ValueError, match=r"x must hold at least one image of at least one pixel.*\(2, 1, 0, 0\)"):
        nearest_distances(torch.zeros(2, 1, 0, 0), torch.zeros(4, 1, 0, 0))   # was nan, not an error
    with pytest.raises(TypeError, match="x must be a dense tensor.*meta"):
        nearest_distances(torch.zeros(2, 1, 9, 9, device="meta"), ref)
    with pytest.raises(TypeError, match="reference must be a dense tensor.*sparse_coo"):
        nearest_distances(ref, ref.to_sparse())
    bad = ref.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="x must be finite"):
        nearest_distances(bad, ref)
    with pytest.raises(ValueError, match=r"x must be images in \[-1, 1\].*2 \* x - 1"):
        nearest_distances(torch.rand(100, 1, 6, 6) * 0.9 + 0.05, torch.rand(100, 1, 6, 6))   # [0, 1] images
    for q in (0, 1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="q must be"):
            copy_share(ref, ref, images(3, 1), q=q)
    with pytest.raises(TypeError, match="q must be a number"):
        copy_share(ref, ref, ref, q="0.05")
    with pytest.raises(ValueError, match="held_out must be images not in train"):
        copy_share(ref, ref, ref)                                 # held-out digits that are training digits
    with pytest.raises(ValueError, match="held_out and train must hold images of one shape"):
        copy_share(ref, ref, images(3, 0, size=5))
    with pytest.raises(TypeError, match="samples must be a floating-point tensor"):
        copy_share(ref.long(), ref, images(3, 1))

"""benchmarks/screen_targets.py: the two screened training pairs against independent references (the exact ε* of
a mixture of point masses; every assignment of five draws), and end to end through speedrun.py on a tiny budget."""
import itertools
import sys
from pathlib import Path

import pytest
import torch

import ddim_edu as de
from ddim_edu.diffusion.analytic import GaussianMixture

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
screen = pytest.importorskip("screen_targets")


@pytest.mark.parametrize("t", [0, 50, 300, 700, 999])
def test_stable_target_with_the_whole_set_is_the_exact_optimum(t):
    """Reference = every point of the data set: ε̄ is E[ε | x_t] of that set, the ε* of a mixture of (near) point
    masses at its points (Tweedie's formula in ddim_edu.diffusion.analytic, written independently)."""
    sched = de.NoiseSchedule.linear(1000)
    g = torch.Generator().manual_seed(0)
    points = torch.randn(6, 5, generator=g, dtype=torch.float64) * 0.3      # a data set of six 5-d points
    x_t = torch.randn(4, 5, generator=g, dtype=torch.float64)
    ts = torch.full((4,), t)
    exact = GaussianMixture(points, 1e-7).eps(x_t, sched.alpha_bar.to(torch.float64)[ts])
    got = screen.stable_target(x_t, ts, sched, points)
    assert got.dtype == torch.float64 and got.shape == x_t.shape
    torch.testing.assert_close(got, exact, rtol=1e-6, atol=1e-8)


def test_stable_target_of_a_lone_image_is_the_noise_that_made_it():
    sched = de.NoiseSchedule.linear(1000)
    g = torch.Generator().manual_seed(1)
    x0, noise, t = torch.rand(3, 1, 4, 4, generator=g) * 2 - 1, torch.randn(3, 1, 4, 4, generator=g), torch.tensor([0, 500, 999])
    x_t = sched.q_sample(x0, t, noise)
    for i in range(3):
        torch.testing.assert_close(screen.stable_target(x_t[i:i + 1], t[i:i + 1], sched, x0[i:i + 1]), noise[i:i + 1],
                                   rtol=1e-4, atol=1e-4)


def test_assign_noise_finds_the_cheapest_of_all_pairings():
    g = torch.Generator().manual_seed(2)
    x0, noise = torch.randn(5, 1, 3, 3, generator=g), torch.randn(5, 1, 3, 3, generator=g)
    got = screen.assign_noise(x0, noise)

    def cost(n):
        return float((x0 - n).pow(2).sum())
    best = min(cost(noise[list(p)]) for p in itertools.permutations(range(5)))
    assert cost(got) == pytest.approx(best) and cost(got) <= cost(noise)
    assert sorted(got.flatten().tolist()) == sorted(noise.flatten().tolist())        # the same draws, reordered


@pytest.mark.skipif("mnist" not in de.available_pretrained(), reason="shipped MNIST weights missing")
@pytest.mark.parametrize("variant", ["immiscible", "stf"])
def test_screen_targets_trains_the_preset_with_its_pairs_and_restores_speedrun(tmp_path, variant):
    import speedrun
    import ddim_edu.train.trainer as trainer
    loss_before = trainer.diffusion_loss
    rows = screen.main([variant, "--stf-reference", "8", "--steps", "2", "--batch", "4", "--n", "4",
                        "--sample-steps", "2", "--threads", "1", "--out-dir", str(tmp_path / "res"),
                        "--runs", str(tmp_path / "runs")])
    assert [r["recipe"] for r in rows] == [screen.NAMES[variant]] and rows[0]["steps"] == 2
    assert rows[0]["config"] == {**rows[0]["config"], **speedrun.RECIPES[speedrun.SHIPPED_RECIPE][0], "batch_size": 4}
    assert trainer.diffusion_loss is loss_before and screen.NAMES[variant] not in speedrun.RECIPES
    with pytest.raises(SystemExit, match="usage"):
        screen.main(["nope"])

"""BetaDistribution: support, finite log-probabilities at the bounds, entropy, mean as mode, saturation."""

from __future__ import annotations

import math

import pytest
import torch as th
from torch.distributions import Beta

from agents.proteus.distributions import BetaDistribution

SATURATED = [(1e4, 1e4), (1e4, -1e4), (-1e4, 1e4), (-1e4, -1e4)]


def _dist(raw: list[list[float]], epsilon: float = 1e-6) -> BetaDistribution:
    params = th.tensor(raw, dtype=th.float32)
    return BetaDistribution(params.shape[1] // 2, epsilon=epsilon).proba_distribution(params)


def test_net_outputs_two_parameters_per_action_and_concentrations_are_at_least_one() -> None:
    dist = BetaDistribution(3)
    net = dist.proba_distribution_net(latent_dim=8)
    raw = net(th.randn(5, 8))
    assert raw.shape == (5, 6)
    dist.proba_distribution(raw * 100)
    assert dist.alpha.shape == dist.beta.shape == (5, 3)
    assert (dist.alpha >= 1).all() and (dist.beta >= 1).all()
    # raw α first, raw β second, each 1 + softplus
    dist.proba_distribution(th.tensor([[0.0, 2.0, -3.0, 1.0, 5.0, 0.5]]))
    softplus = th.nn.functional.softplus
    assert th.allclose(dist.alpha, 1 + softplus(th.tensor([[0.0, 2.0, -3.0]])))
    assert th.allclose(dist.beta, 1 + softplus(th.tensor([[1.0, 5.0, 0.5]])))


@pytest.mark.parametrize("raw", [[0.0, 0.0], [3.0, -2.0], [-5.0, 6.0], *[list(p) for p in SATURATED]])
def test_samples_lie_in_the_unit_interval(raw: list[float]) -> None:
    th.manual_seed(0)
    dist = _dist([raw] * 2000)
    samples = dist.sample()
    assert samples.shape == (2000, 1)
    assert th.isfinite(samples).all()
    assert (samples >= 0).all() and (samples <= 1).all()


@pytest.mark.parametrize("raw", [[0.0, 0.0], [4.0, 4.0], [8.0, -8.0], *[list(p) for p in SATURATED]])
def test_log_prob_is_finite_at_the_bounds(raw: list[float]) -> None:
    dist = _dist([raw] * 4)
    actions = th.tensor([[0.0], [1.0], [1.0 - 1e-8], [1e-12]])
    log_prob = dist.log_prob(actions)
    assert log_prob.shape == (4,)
    assert th.isfinite(log_prob).all()


def test_log_prob_clamps_the_same_way_for_every_action_beyond_epsilon() -> None:
    eps = 1e-4
    dist = _dist([[2.0, 3.0]] * 3, epsilon=eps)
    low = dist.log_prob(th.tensor([[0.0], [eps / 2], [eps]]))
    high = dist.log_prob(th.tensor([[1.0], [1 - eps / 2], [1 - eps]]))
    assert th.allclose(low, low[2].expand(3))
    assert th.allclose(high, high[2].expand(3))


def test_log_prob_and_entropy_match_torch_beta_summed_over_dimensions() -> None:
    th.manual_seed(1)
    raw = th.randn(256, 6) * 3
    dist = BetaDistribution(3).proba_distribution(raw)
    reference = Beta(dist.alpha, dist.beta)
    actions = th.rand(256, 3) * 0.98 + 0.01
    assert th.allclose(dist.log_prob(actions), reference.log_prob(actions).sum(dim=1), atol=1e-4)
    assert th.allclose(dist.entropy(), reference.entropy().sum(dim=1), atol=1e-4)


@pytest.mark.parametrize("raw", [[0.0, 0.0], [2.0, -1.0], [-3.0, 4.0]])
def test_entropy_matches_a_monte_carlo_estimate(raw: list[float]) -> None:
    th.manual_seed(2)
    n = 200_000
    dist = _dist([raw])
    samples = th.distributions.Beta(dist.alpha.expand(n, 1), dist.beta.expand(n, 1)).sample()
    many = _dist([raw] * n)
    neg_log_prob = -many.log_prob(samples)
    estimate = neg_log_prob.mean().item()
    stderr = neg_log_prob.std().item() / math.sqrt(n)
    assert dist.entropy().item() == pytest.approx(estimate, abs=5 * stderr + 1e-3)


def test_deterministic_action_is_the_mean() -> None:
    dist = _dist([[0.0, 0.0], [3.0, -1.0], [-2.0, 5.0], [-1e4, -1e4]])
    alpha, beta = dist.alpha, dist.beta
    mean = alpha / (alpha + beta)
    assert th.allclose(dist.mode(), mean)
    assert th.allclose(dist.get_actions(deterministic=True), mean)
    # α = β = 1 (uniform): the true mode is undefined, the deterministic action is 0.5
    assert dist.mode()[3].item() == pytest.approx(0.5)
    assert th.allclose(dist.actions_from_params(th.tensor([[3.0, -1.0]]), deterministic=True), mean[1:2])


def test_saturated_heads_give_no_nan_in_log_prob_entropy_mode_or_gradients() -> None:
    raw = th.tensor([list(p) for p in SATURATED], requires_grad=True)
    dist = BetaDistribution(1).proba_distribution(raw)
    samples = dist.sample().detach()
    for actions in (samples, th.zeros(4, 1), th.ones(4, 1), th.full((4, 1), 0.5)):
        assert th.isfinite(dist.log_prob(actions)).all()
    entropy, mode = dist.entropy(), dist.mode()
    assert th.isfinite(entropy).all()
    assert th.isfinite(mode).all() and (mode >= 0).all() and (mode <= 1).all()
    (dist.log_prob(samples).sum() + entropy.sum() + mode.sum()).backward()
    assert raw.grad is not None and th.isfinite(raw.grad).all()


def test_log_prob_from_params_returns_samples_and_their_log_prob() -> None:
    th.manual_seed(3)
    dist = BetaDistribution(2)
    raw = th.randn(7, 4)
    actions, log_prob = dist.log_prob_from_params(raw)
    assert actions.shape == (7, 2) and log_prob.shape == (7,)
    assert th.allclose(log_prob, BetaDistribution(2).proba_distribution(raw).log_prob(actions))


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="epsilon"):
        BetaDistribution(1, epsilon=0.0)
    with pytest.raises(ValueError, match="action_dim"):
        BetaDistribution(0)
    with pytest.raises(ValueError, match="raw parameters"):
        BetaDistribution(2).proba_distribution(th.zeros(3, 2))
    with pytest.raises(ValueError, match="NaN"):
        BetaDistribution(1).proba_distribution(th.tensor([[float("nan"), 0.0]]))

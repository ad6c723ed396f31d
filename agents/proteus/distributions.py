"""A Beta action distribution for Stable-Baselines3 policies on ``Box(0, 1)`` action spaces.

A Gaussian policy on a bounded action space puts probability mass outside the bounds, and the
clipping that follows biases the policy gradient at the edges (Chou, Maturana and Scherer, 2017).
A Beta distribution lives on [0, 1] exactly, so μ = 0 (the cheap end) and μ = 1 (the accurate end)
are reachable without clipping.
"""

from __future__ import annotations

from typing import TypeVar

import torch as th
from stable_baselines3.common.distributions import Distribution
from torch import nn
from torch.distributions import Beta
from torch.nn import functional as F

SelfBetaDistribution = TypeVar("SelfBetaDistribution", bound="BetaDistribution")


class BetaDistribution(Distribution):
    """Independent Beta distributions over ``action_dim`` actions in [0, 1].

    The network outputs ``2 * action_dim`` raw values: the first half parameterizes α, the second
    half β, each as ``1 + softplus(raw)``. With α, β ≥ 1 the density is unimodal (or flat) and
    never infinite at the bounds.

    At exactly 0 or 1 the Beta log-density is -inf (α or β > 1), and with saturated heads a float32
    sample sits within rounding of a bound (actions can also arrive there from clipping or replayed
    data). :meth:`log_prob` therefore clamps actions to ``[epsilon, 1 - epsilon]``; it does so both
    when the rollout records the log-probability and when the update re-evaluates the stored
    action, so the importance ratio of PPO compares like with like.

    The deterministic action (:meth:`mode`) is the *mean* α / (α + β), not the mode
    (α − 1) / (α + β − 2): the latter is 0/0 when α = β = 1 and jumps between the bounds when
    both heads saturate, while the mean is always defined and smooth in the parameters.

    Args:
        action_dim: Number of independent action dimensions.
        epsilon: Margin of the clamp applied to actions inside :meth:`log_prob`; in (0, 0.5).

    Raises:
        ValueError: If ``action_dim`` < 1 or ``epsilon`` is outside (0, 0.5).
    """

    distribution: Beta
    alpha: th.Tensor
    beta: th.Tensor

    def __init__(self, action_dim: int, epsilon: float = 1e-6) -> None:
        super().__init__()
        if int(action_dim) != action_dim or action_dim < 1:
            raise ValueError(f"`action_dim` must be a positive integer, got {action_dim!r}.")
        if not 0.0 < float(epsilon) < 0.5:
            raise ValueError(f"`epsilon` must lie in (0, 0.5), got {epsilon!r}.")
        self.action_dim = int(action_dim)
        self.epsilon = float(epsilon)

    def proba_distribution_net(self, latent_dim: int) -> nn.Module:
        """Create the layer that maps the actor's latent code to the raw (α, β) parameters.

        Args:
            latent_dim: Dimension of the last layer of the policy network.

        Returns:
            A linear layer with ``2 * action_dim`` outputs (raw α first, raw β second).
        """
        return nn.Linear(latent_dim, 2 * self.action_dim)

    @staticmethod
    def concentrations(action_params: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """Split raw network outputs into the concentrations ``α = 1 + softplus(·)``, ``β = 1 + softplus(·)``.

        Args:
            action_params: ``(..., 2 * action_dim)`` raw outputs.

        Returns:
            ``(α, β)``, each ``(..., action_dim)`` and ≥ 1.
        """
        concentration = 1.0 + F.softplus(action_params)
        half = concentration.shape[-1] // 2
        return concentration[..., :half], concentration[..., half:]

    @classmethod
    def mean_from_params(cls, action_params: th.Tensor) -> th.Tensor:
        """The Beta mean ``α / (α + β)`` straight from raw outputs (the deterministic action).

        Equal to ``proba_distribution(action_params).mode()`` without building the distribution:
        the inference fast path of :meth:`BetaActorCriticPolicy.mean_action`.
        """
        alpha, beta = cls.concentrations(action_params)
        return alpha / (alpha + beta)

    def proba_distribution(self: SelfBetaDistribution, action_params: th.Tensor) -> SelfBetaDistribution:
        """Set the distribution's parameters from the raw network outputs.

        Args:
            action_params: ``(batch, 2 * action_dim)`` raw outputs of :meth:`proba_distribution_net`.

        Returns:
            ``self``.

        Raises:
            ValueError: If the last dimension is not ``2 * action_dim`` or a parameter is NaN.
        """
        if action_params.shape[-1] != 2 * self.action_dim:
            raise ValueError(f"Expected {2 * self.action_dim} raw parameters per sample, got shape {tuple(action_params.shape)}.")
        if th.isnan(action_params).any():
            raise ValueError("The Beta distribution's raw parameters contain NaN (the policy network has diverged).")
        # [α − 1 | β − 1] and [α | β], side by side: log_prob and entropy work on both halves at
        # once (half the autograd nodes of the PPO update's α-then-β route).
        self._excess = F.softplus(action_params)
        self._concentration = 1.0 + self._excess
        self._total = self._concentration.unflatten(-1, (2, self.action_dim)).sum(-2)  # α + β
        self.alpha = self._concentration[..., : self.action_dim]
        self.beta = self._concentration[..., self.action_dim :]
        # The torch object serves sampling and the mean. Its argument validation would cost about
        # a third of a rollout step; α, β >= 1 by construction and NaN is checked above.
        self.distribution = Beta(self.alpha, self.beta, validate_args=False)
        self._log_beta_fn: th.Tensor | None = None
        return self

    def _log_beta_function(self) -> th.Tensor:
        """``Σ ln B(α, β) = Σ [ln Γ(α) + ln Γ(β) − ln Γ(α + β)]`` over action dims, once per parameter setting."""
        if self._log_beta_fn is None:
            self._log_beta_fn = th.lgamma(self._concentration).sum(-1) - th.lgamma(self._total).sum(-1)
        return self._log_beta_fn

    def log_prob(self, actions: th.Tensor) -> th.Tensor:
        """Log-likelihood of ``actions``, summed over action dimensions.

        ``Σ [(α − 1)·ln x + (β − 1)·ln(1 − x) − ln B(α, β)]``, with ``x`` clamped to
        ``[epsilon, 1 − epsilon]`` first.

        Args:
            actions: ``(batch, action_dim)`` actions in [0, 1].

        Returns:
            ``(batch,)`` log-probabilities (finite for every action in [0, 1]).
        """
        x = actions.clamp(self.epsilon, 1.0 - self.epsilon)
        log_x = th.log(th.cat([x, 1.0 - x], dim=-1))  # [ln x | ln(1 − x)]
        return (self._excess * log_x).sum(-1) - self._log_beta_function()

    def entropy(self) -> th.Tensor:
        """Differential entropy, summed over action dimensions.

        ``Σ [ln B(α, β) − (α − 1)·ψ(α) − (β − 1)·ψ(β) + (α + β − 2)·ψ(α + β)]``. A density on [0, 1]
        has differential entropy ≤ 0, the maximum 0 at the uniform α = β = 1, so SB3's
        ``train/entropy_loss`` (−entropy) is positive with this distribution.
        """
        return (
            self._log_beta_function()
            - (self._excess * th.digamma(self._concentration)).sum(-1)
            + ((self._total - 2.0) * th.digamma(self._total)).sum(-1)
        )

    def sample(self) -> th.Tensor:
        """Draw a reparameterized sample in [0, 1] (Beta has an implicit reparameterization gradient)."""
        return self.distribution.rsample()

    def mode(self) -> th.Tensor:
        """Return the deterministic action: the mean α / (α + β) (see the class docstring)."""
        return self.distribution.mean

    def actions_from_params(self, action_params: th.Tensor, deterministic: bool = False) -> th.Tensor:
        """Set the parameters, then return a sample (or the mean if ``deterministic``).

        Args:
            action_params: ``(batch, 2 * action_dim)`` raw network outputs.
            deterministic: Return the mean instead of a sample.

        Returns:
            ``(batch, action_dim)`` actions in [0, 1].
        """
        self.proba_distribution(action_params)
        return self.get_actions(deterministic=deterministic)

    def log_prob_from_params(self, action_params: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """Sample actions from the raw parameters and return them with their log-probabilities.

        Args:
            action_params: ``(batch, 2 * action_dim)`` raw network outputs.

        Returns:
            ``(actions, log_prob)`` of shapes ``(batch, action_dim)`` and ``(batch,)``.
        """
        actions = self.actions_from_params(action_params)
        return actions, self.log_prob(actions)

"""The PROTEUS actor-critic policy for Stable-Baselines3: a λ-gated features network and a Beta head.

Use it like any SB3 policy class::

    import gymnasium as gym
    import proteus_env  # registers the ids
    from stable_baselines3 import PPO
    from agents.proteus.policies import BetaActorCriticPolicy

    model = PPO(BetaActorCriticPolicy, gym.make("Proteus-Synthetic-v0"))
    model.learn(10_000)
    model.save("proteus_ppo")
    model = PPO.load("proteus_ppo")
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.preprocessing import get_action_dim, get_flattened_obs_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from agents.proteus.distributions import BetaDistribution

#: Observation keys that describe the query (embedded by the MLP), in the order they are concatenated.
QUERY_KEYS = ("p_hat", "cost_hat", "query")
#: Observation keys every PROTEUS observation must carry.
REQUIRED_KEYS = ("p_hat", "cost_hat", "tau", "lambda")


class ProteusFeaturesExtractor(BaseFeaturesExtractor):
    """Embed the query part of a PROTEUS observation and gate it by the Lagrange multiplier(s).

    The network is built from the observation space, whatever keys it holds besides the required
    ``p_hat``, ``cost_hat``, ``tau`` and ``lambda``:

    * **query keys** (:data:`QUERY_KEYS` present: ``p_hat``, ``cost_hat`` and ``query``) are
      concatenated, ``x``, and embedded by an MLP into ``h`` (``hidden_dim`` units);
    * **multiplier keys** (``lambda`` and every other key starting with ``lambda``, e.g. the
      budget's ``lambda_budget``) gate it, ``g = h ⊙ σ(W·λ̃ + b)``, so the same query can be read
      differently as the constraints tighten (the PROTEUS paper's gate), with ``λ̃ = λ / λ_max``
      per key (``λ_max`` the key's upper bound; λ as is when that bound is infinite);
    * **context keys**, every other ``Box`` (``tau`` and the session state of issue 12:
      ``progress``, ``running_accuracy``, ``accuracy_slack``, ``revealed``, ``spend``, or any other),
      are appended as they are:

        features = concat(g, τ, λ̃, other λ̃ (sorted), other context keys (sorted))

    so the default observation gives ``concat(g, τ, λ̃)``, ``features_dim = hidden_dim + 2``, as
    before. Keys are looked up by name, so the order of the Dict space does not matter.

    Args:
        observation_space: The env's ``Dict`` observation space with ``p_hat``, ``cost_hat``,
            ``tau``, ``lambda`` and any other ``Box`` entries.
        hidden_dim: Width of the query embedding ``h`` (and of every hidden layer of its MLP).
        n_layers: Number of ``Linear + activation`` layers of the query MLP (≥ 1).
        activation_fn: Activation of the query MLP.

    Raises:
        ValueError: If the space is not a ``Dict`` with the required keys, an entry is not a
            ``Box``, ``tau`` or a multiplier is not a single number, or ``hidden_dim``/``n_layers`` < 1.
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        hidden_dim: int = 64,
        n_layers: int = 1,
        activation_fn: type[nn.Module] = nn.Tanh,
    ) -> None:
        if not isinstance(observation_space, spaces.Dict):
            raise ValueError(f"ProteusFeaturesExtractor needs a Dict observation space, got {type(observation_space).__name__}.")
        missing = [key for key in REQUIRED_KEYS if key not in observation_space.spaces]
        if missing:
            raise ValueError(
                f"ProteusFeaturesExtractor needs the observation keys {list(REQUIRED_KEYS)}; missing {missing} "
                f"(got {list(observation_space.spaces)}). Pass another `features_extractor_class` for other Dict spaces."
            )
        not_box = [key for key in observation_space.spaces if not isinstance(observation_space[key], spaces.Box)]
        if not_box:
            raise ValueError(f"ProteusFeaturesExtractor needs Box entries; {not_box} are not.")
        self.query_keys = tuple(key for key in QUERY_KEYS if key in observation_space.spaces)
        self.lambda_keys = ("lambda", *sorted(key for key in observation_space.spaces if key.startswith("lambda") and key != "lambda"))
        others = sorted(key for key in observation_space.spaces if key not in (*self.query_keys, *self.lambda_keys, "tau"))
        self.context_keys = ("tau", *others)
        for key in ("tau", *self.lambda_keys):
            if get_flattened_obs_dim(observation_space[key]) != 1:
                raise ValueError(f"Observation key {key!r} must hold one number, got space {observation_space[key]}.")
        if int(hidden_dim) != hidden_dim or hidden_dim < 1:
            raise ValueError(f"`hidden_dim` must be a positive integer, got {hidden_dim!r}.")
        if int(n_layers) != n_layers or n_layers < 1:
            raise ValueError(f"`n_layers` must be a positive integer, got {n_layers!r}.")
        context_dim = sum(get_flattened_obs_dim(observation_space[key]) for key in others)
        super().__init__(observation_space, features_dim=int(hidden_dim) + 1 + len(self.lambda_keys) + context_dim)

        query_dim = sum(get_flattened_obs_dim(observation_space[key]) for key in self.query_keys)
        layers: list[nn.Module] = []
        in_dim = query_dim
        for _ in range(int(n_layers)):
            layers += [nn.Linear(in_dim, int(hidden_dim)), activation_fn()]
            in_dim = int(hidden_dim)
        self.query_net = nn.Sequential(*layers)
        self.gate = nn.Linear(len(self.lambda_keys), int(hidden_dim))
        scales = []
        for key in self.lambda_keys:
            high = float(np.asarray(observation_space[key].high).reshape(-1)[0])
            scales.append(1.0 / high if math.isfinite(high) and high > 0 else 1.0)
        self.lambda_scale = scales[0]
        self.register_buffer("_lambda_scales", th.tensor(scales, dtype=th.float32), persistent=False)
        # SB3 hands Box observations over as (batch, *shape); only non-vector shapes need flattening.
        self._flatten = any(len(observation_space[key].shape) != 1
                            for key in (*self.query_keys, *self.lambda_keys, *self.context_keys))

    def forward(self, observations: dict[str, th.Tensor]) -> th.Tensor:  # type: ignore[override]
        """Map a batch of Dict observations to ``(batch, features_dim)`` features."""
        parts = [observations[key] for key in self.query_keys]
        context = [observations[key] for key in self.context_keys]
        if len(self.lambda_keys) == 1:
            lams = [observations["lambda"]]
        else:
            lams = [observations[key] for key in self.lambda_keys]
        if self._flatten:
            parts = [part.flatten(1) for part in parts]
            context = [part.flatten(1) for part in context]
            lams = [part.flatten(1) for part in lams]
        query = th.cat(parts, dim=1)
        if len(lams) == 1:
            lam = lams[0] * self.lambda_scale
            # = self.gate(lam) for a one-input Linear (b + λ·wᵀ), at a third of the cost in the rollout hot path.
            gate = th.sigmoid(th.addcmul(self.gate.bias, lam, self.gate.weight.T))
        else:
            lam = th.cat(lams, dim=1) * self._lambda_scales
            gate = th.sigmoid(self.gate(lam))
        h = query
        for layer in self.query_net:  # the layers one by one: skips a Sequential call per step
            h = layer(h)
        return th.cat([h * gate, context[0], lam, *context[1:]], dim=1)


def default_features_extractor(observation_space: spaces.Space) -> type[BaseFeaturesExtractor]:
    """Pick the features extractor :class:`BetaActorCriticPolicy` uses when none is given.

    Args:
        observation_space: The policy's observation space.

    Returns:
        :class:`ProteusFeaturesExtractor` for a PROTEUS ``Dict`` space, SB3's ``FlattenExtractor``
        for a ``Box`` (any generic Box-observation env).

    Raises:
        ValueError: For other spaces (pass ``features_extractor_class`` explicitly, e.g. SB3's
            ``CombinedExtractor`` for another Dict space).
    """
    if isinstance(observation_space, spaces.Dict):
        if all(key in observation_space.spaces for key in REQUIRED_KEYS):
            return ProteusFeaturesExtractor
        raise ValueError(
            f"The Dict observation space lacks the PROTEUS keys {list(REQUIRED_KEYS)} (got {list(observation_space.spaces)}); "
            "pass `features_extractor_class` explicitly (e.g. stable_baselines3.common.torch_layers.CombinedExtractor)."
        )
    if isinstance(observation_space, spaces.Box):
        return FlattenExtractor
    raise ValueError(
        f"No default features extractor for a {type(observation_space).__name__} observation space; "
        "pass `features_extractor_class` explicitly."
    )


def check_unit_box(action_space: spaces.Space) -> None:
    """Raise unless ``action_space`` is a float ``Box`` with every low = 0 and every high = 1.

    Raises:
        ValueError: Otherwise, naming what is wrong.
    """
    if not isinstance(action_space, spaces.Box):
        raise ValueError(f"BetaActorCriticPolicy needs a Box(0, 1) action space, got {action_space}.")
    if not np.issubdtype(action_space.dtype, np.floating):
        raise ValueError(f"BetaActorCriticPolicy needs a floating-point Box action space, got dtype {action_space.dtype}.")
    if not (np.all(action_space.low == 0.0) and np.all(action_space.high == 1.0)):
        raise ValueError(
            f"BetaActorCriticPolicy needs every action bound to be low=0, high=1 (a Beta lives on [0, 1]), got {action_space}; "
            "rescale the action space with a wrapper (e.g. gymnasium.wrappers.RescaleAction)."
        )


class BetaActorCriticPolicy(ActorCriticPolicy):
    """Actor-critic policy with a Beta action distribution, for PPO and A2C on ``Box(0, 1, (n,))`` actions.

    Same constructor as SB3's :class:`~stable_baselines3.common.policies.ActorCriticPolicy`, plus
    ``beta_epsilon``. The actor head outputs ``(α, β) = 1 + softplus(·)`` per action dimension
    (:class:`~agents.distributions.BetaDistribution`); the critic head is SB3's linear value
    layer. The deterministic action is the Beta mean.

    By default the features extractor is :class:`ProteusFeaturesExtractor` for the PROTEUS Dict
    observation (configure it with ``features_extractor_kwargs=dict(hidden_dim=..., n_layers=...)``)
    and SB3's ``FlattenExtractor`` for a flat ``Box`` observation.

    Args:
        observation_space: Observation space.
        action_space: ``Box`` with every low 0 and every high 1.
        lr_schedule: Learning-rate schedule.
        net_arch: Actor/critic MLPs after the features extractor (SB3 format; default
            ``dict(pi=[64, 64], vf=[64, 64])``).
        activation_fn: Activation of those MLPs.
        ortho_init: Orthogonal initialization as in SB3 (gain 0.01 on the Beta head, so both
            concentrations start at 1 + softplus(0) ≈ 1.69: mean 0.5, broad).
        use_sde: Must be False (gSDE is Gaussian-only).
        log_std_init: Unused (no Gaussian); kept for SB3 signature compatibility.
        full_std: Unused; kept for SB3 signature compatibility.
        use_expln: Unused; kept for SB3 signature compatibility.
        squash_output: Must be False (the Beta is already bounded).
        features_extractor_class: Features extractor; ``None`` picks the default above.
        features_extractor_kwargs: Its keyword arguments.
        share_features_extractor: Share the features extractor between actor and critic.
        normalize_images: Divide image observations by 255.
        optimizer_class: Optimizer.
        optimizer_kwargs: Optimizer keyword arguments (SB3's default for Adam: ``eps=1e-5``).
        beta_epsilon: Clamp margin of the Beta log-probability (actions are evaluated in
            ``[ε, 1 − ε]``).

    Raises:
        ValueError: On ``use_sde=True``, an action space other than ``Box(0, 1)``, or an
            observation space without a default features extractor.
    """

    action_dist: BetaDistribution  # type: ignore[assignment]

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.Tanh,
        ortho_init: bool = True,
        use_sde: bool = False,
        log_std_init: float = 0.0,
        full_std: bool = True,
        use_expln: bool = False,
        squash_output: bool = False,
        features_extractor_class: type[BaseFeaturesExtractor] | None = None,
        features_extractor_kwargs: dict[str, Any] | None = None,
        share_features_extractor: bool = True,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        beta_epsilon: float = 1e-6,
    ) -> None:
        if use_sde:
            raise ValueError(
                "BetaActorCriticPolicy does not support gSDE (`use_sde=True`): state-dependent exploration is defined "
                "for Gaussian policies only. Use `use_sde=False`."
            )
        if squash_output:
            raise ValueError("BetaActorCriticPolicy does not squash outputs: the Beta distribution is already bounded to [0, 1].")
        check_unit_box(action_space)
        if not 0.0 < float(beta_epsilon) < 0.5:
            raise ValueError(f"`beta_epsilon` must lie in (0, 0.5), got {beta_epsilon!r}.")
        if features_extractor_class is None:
            features_extractor_class = default_features_extractor(observation_space)
        # Set before super().__init__(), which calls self._build() (the sb3-contrib pattern).
        self.beta_epsilon = float(beta_epsilon)
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=net_arch,
            activation_fn=activation_fn,
            ortho_init=ortho_init,
            use_sde=False,
            log_std_init=log_std_init,
            full_std=full_std,
            use_expln=use_expln,
            squash_output=False,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=features_extractor_kwargs,
            share_features_extractor=share_features_extractor,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(beta_epsilon=self.beta_epsilon)
        return data

    def _build(self, lr_schedule: Schedule) -> None:
        """Create the networks (Beta head, no Gaussian ``log_std``) and, last, the optimizer.

        ``ActorCriticPolicy.__init__`` has already set ``self.action_dist`` to a Gaussian; it is
        replaced here, before any head is built from it.

        Args:
            lr_schedule: Learning-rate schedule; ``lr_schedule(1)`` is the initial rate.
        """
        self.action_dist = BetaDistribution(get_action_dim(self.action_space), epsilon=self.beta_epsilon)
        self._build_mlp_extractor()
        self.action_net = self.action_dist.proba_distribution_net(latent_dim=self.mlp_extractor.latent_dim_pi)
        self.value_net = nn.Linear(self.mlp_extractor.latent_dim_vf, 1)
        if self.ortho_init:
            # The gains of SB3's ActorCriticPolicy._build (from openai/baselines).
            # Same order as there, so a seed gives the same initial weights.
            extractors = (
                [self.features_extractor]
                if self.share_features_extractor
                else [self.pi_features_extractor, self.vf_features_extractor]
            )
            module_gains: dict[nn.Module, float] = {extractor: np.sqrt(2) for extractor in extractors}
            module_gains.update({self.mlp_extractor: np.sqrt(2), self.action_net: 0.01, self.value_net: 1.0})
            for module, gain in module_gains.items():
                module.apply(partial(self.init_weights, gain=gain))
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)  # type: ignore[call-arg]

    def _get_action_dist_from_latent(self, latent_pi: th.Tensor) -> BetaDistribution:
        """Return the Beta distribution for the actor's latent code."""
        return self.action_dist.proba_distribution(self.action_net(latent_pi))

    def mean_action(self, observation: PyTorchObs) -> th.Tensor:
        """The deterministic action (the Beta mean) for a batch of observation tensors.

        Same value as ``get_distribution(observation).mode()``, without building the distribution
        object: the inference fast path of :class:`agents.router.ProteusRouter`.
        """
        features = self.extract_features(observation, self.pi_features_extractor)
        latent_pi = self.mlp_extractor.forward_actor(features)
        return BetaDistribution.mean_from_params(self.action_net(latent_pi))

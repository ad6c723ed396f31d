"""The PROTEUS agent: Beta distribution, Beta actor-critic policy, training, τ calibration, router, artifact.

Laid out like sb3-contrib's ``common/maskable`` + ``ppo_mask``: the policy pieces
(:mod:`~agents.proteus.distributions`, :mod:`~agents.proteus.policies`) are plain SB3 components;
:mod:`~agents.proteus.train` runs PPO with the dual callback; :mod:`~agents.proteus.calibration`
maps a requested τ onto the policy's τ input; :mod:`~agents.proteus.router` serves a trained policy;
:mod:`~agents.proteus.artifact` is the one definition of a trained router's files.
"""

"""What acts in the PROTEUS routing gym: the Beta PPO policy, baselines, the trained router, the CLI.

Submodules are imported on use (``from agents.policies import BetaActorCriticPolicy``), so that
``proteus demo`` and the data commands do not pay for importing torch.
"""

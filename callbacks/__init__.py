"""Stable-Baselines3 callbacks of the PROTEUS routing gym: Lagrangian dual ascent and SLA metrics."""

from callbacks.lagrangian import MODEL_STATE_ATTRIBUTE, LagrangianDualCallback

__all__ = ["MODEL_STATE_ATTRIBUTE", "LagrangianDualCallback"]

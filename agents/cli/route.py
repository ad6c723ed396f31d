"""``proteus route``: route queries given on the command line with a trained router."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

from agents.cli.data import add_model_arguments, model_subset
from agents.proteus.artifact import check_model_subset
from agents.proteus.router import ProteusRouter, UnreachableTargetWarning
from proteus_env._validation import parse_confidence


def add_subparser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``proteus route``."""
    parser = subparsers.add_parser("route", help="route queries with a trained router")
    parser.add_argument("--router", required=True, help="artifact directory of `proteus train`")
    parser.add_argument("--tau", type=float, required=True, help="accuracy target τ in [0, 1]")
    parser.add_argument("--confidence", "--margin", dest="confidence", default=None,
                        help="one-sided confidence level at which τ should hold, e.g. 0.95 (--margin is an alias)")
    parser.add_argument("--embeddings", default=None, help=".npy file of (n, d) embeddings (with --tokens)")
    parser.add_argument("--tokens", default=None, help=".npy file of (n,) prompt lengths")
    add_model_arguments(parser)  # may only restate the router's own models (a router routes between those)
    parser.add_argument("prompts", nargs="*", help="prompts (routers trained on a benchmark with a text encoder)")
    parser.set_defaults(handler=_run)


def load_array(path: str, flag: str) -> np.ndarray:
    """A numeric array from a ``.npy`` file (never unpickled).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it is not a numeric ``.npy`` array, naming the flag and the file.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"{flag} {path}: no such file.")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{flag} {path}: not a readable .npy array ({exc}).") from None
    if not isinstance(array, np.ndarray) or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"{flag} {path}: expected a numeric array, got {getattr(array, 'dtype', type(array).__name__)}.")
    return array


def _run(args: argparse.Namespace) -> int:
    confidence = parse_confidence(args.confidence)
    router = ProteusRouter.load(args.router)
    subset = model_subset(args)
    check_model_subset(list(router.head.models), subset.get("models"), subset.get("exclude_models"), router=args.router)
    if args.embeddings:
        if not args.tokens:
            raise ValueError("--embeddings needs --tokens (a .npy file of prompt lengths).")
        if args.prompts:
            raise ValueError(f"give prompts or --embeddings with --tokens, not both (prompts: {args.prompts[:3]!r}).")
        queries, tokens = load_array(args.embeddings, "--embeddings"), load_array(args.tokens, "--tokens")
    elif args.tokens:
        raise ValueError("--tokens needs --embeddings (a .npy file of (n, d) embeddings); prompts get their lengths estimated.")
    elif not args.prompts:
        raise ValueError("nothing to route: give prompts, or --embeddings with --tokens.")
    else:
        queries, tokens = args.prompts, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnreachableTargetWarning)  # reported in the output instead
        result = router.route(queries, args.tau, prompt_tokens=tokens, confidence=confidence)
    reach = "" if result.reachable else f"  UNREACHABLE: {router.unreachable_reason(result.tau, confidence)}"
    level = "" if confidence is None else f" at {confidence:.0%} confidence"
    print(f"tau={result.tau:.3f}{level} (policy input {result.tau_input:.3f}){reach}")
    print(f"{'#':>4} {'model':36s} {'mu':>6} {'p_hat':>6} {'USD':>10}")
    for i, (name, mu, acc, usd) in enumerate(zip(result.models, result.mu, result.expected_accuracy, result.expected_cost, strict=True)):
        print(f"{i:>4} {name:36s} {mu:>6.3f} {acc:>6.3f} {usd:>10.6f}")
    return 0

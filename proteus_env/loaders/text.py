"""Prompt text helpers: flatten RouterBench's list-literal prompts and estimate token counts."""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Separator placed between the turns of a multi-turn prompt.
TURN_SEPARATOR = "\n\n"

# A word (letters, digits, underscore) or a single punctuation mark.
_TOKEN_PATTERN = re.compile(r"\w+|[^\w\s]")


class PromptFormatError(ValueError):
    """A prompt cell that is neither text nor a list literal of texts."""


def prompt_turns(value: Any) -> list[str]:
    """Split one prompt cell into its turns.

    RouterBench stores a prompt as the string form of a Python list (``"['turn 1', 'turn 2']"``);
    published pickles may hold the list itself. The literal is parsed with
    :func:`ast.literal_eval`, never ``eval``. A plain string that is not a list literal is one turn.

    Raises:
        PromptFormatError: For a missing value, a malformed list literal, or non-text turns.
    """
    if isinstance(value, (list, tuple, np.ndarray)):
        turns = list(value)
    elif isinstance(value, str):
        text = value.strip()
        if not (text.startswith("[") and text.endswith("]")):
            if text.startswith("["):
                raise PromptFormatError("starts like a list literal but does not end with ']' (truncated?)")
            return [value]
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
            raise PromptFormatError(f"is not a valid Python list literal ({type(exc).__name__})") from None
        if not isinstance(parsed, (list, tuple)):
            raise PromptFormatError(f"parses to {type(parsed).__name__}, expected a list of strings")
        turns = list(parsed)
    else:
        raise PromptFormatError(f"holds {type(value).__name__} {value!r:.60}, expected text or a list of texts")
    if not turns:
        raise PromptFormatError("is an empty list")
    bad = [t for t in turns if not isinstance(t, str)]
    if bad:
        raise PromptFormatError(f"has a turn of type {type(bad[0]).__name__} ({bad[0]!r:.60}); turns must be strings")
    return turns


def flatten_prompt(value: Any) -> str:
    """One prompt cell as a single text: its turns joined by a blank line."""
    return TURN_SEPARATOR.join(prompt_turns(value))


def estimate_tokens(text: str) -> int:
    """Estimated token count of ``text``: its words plus its punctuation marks.

    A deterministic stand-in for a model tokenizer (none is shipped): on English text BPE
    tokenizers produce about 1.1–1.4 times this count, and the routing head only uses
    ``log1p(prompt_tokens)`` as a feature, so the constant factor does not matter.
    """
    return len(_TOKEN_PATTERN.findall(text))


def estimate_tokens_many(texts: Sequence[str]) -> np.ndarray:
    """:func:`estimate_tokens` of every text, as an int64 array."""
    return np.fromiter((estimate_tokens(t) for t in texts), dtype=np.int64, count=len(texts))

"""Facts about model families that change how they are called or billed.

Reasoning models (the o-series and the gpt-5 family) refuse `max_tokens` on chat completions: the
limit is `max_completion_tokens`, which also bounds the hidden reasoning tokens. Their reasoning
tokens are reported in usage (`completion_tokens_details.reasoning_tokens`; `reasoningTokens` in the
usage log) and billed as output.
"""

from __future__ import annotations

import re

_REASONING = re.compile(r"^(o\d+(-mini|-pro|-preview)?|o\d+-.*|gpt-5.*)$", re.IGNORECASE)


def is_reasoning_model(model: str) -> bool:
    """o1, o3, o3-mini, o4-mini, gpt-5, gpt-5-mini, ...: True; gpt-4o, gpt-4.1, embeddings: False."""
    return bool(_REASONING.match(model.strip()))


def token_limit_parameter(model: str) -> str:
    """The chat-completions parameter that limits a call's output tokens for this model."""
    return "max_completion_tokens" if is_reasoning_model(model) else "max_tokens"

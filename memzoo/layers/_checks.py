"""The checks every layer makes of its integer options, in one place.

Each raises a ``ConfigError`` whose message starts with the layer's name (when given) and
names the option, the allowed values and what was given; bools are never integers here.
"""

from __future__ import annotations

from memzoo.errors import ConfigError


def _prefix(layer: str | None) -> str:
    return f"{layer}: " if layer else ""


def check_int(layer: str | None, name: str, value, minimum: int = 1) -> int:
    """``value`` must be an integer ``>= minimum``; returns it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{_prefix(layer)}{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_heads(layer: str | None, d_model: int, num_heads) -> int:
    """``num_heads`` must be a positive integer dividing ``d_model``; returns the head width."""
    divisors = [h for h in range(1, d_model + 1) if d_model % h == 0]
    if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads < 1:
        raise ConfigError(
            f"{_prefix(layer)}num_heads must be a positive integer dividing d_model={d_model}; "
            f"allowed num_heads: {divisors}, got {num_heads!r}"
        )
    if d_model % num_heads:
        raise ConfigError(
            f"{_prefix(layer)}num_heads={num_heads} does not divide d_model={d_model}; "
            f"allowed num_heads: {divisors}"
        )
    return d_model // num_heads

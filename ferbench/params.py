"""Typed parameters given as strings (``-o key=value``, ``--param k=v``): coercion and defaults."""

from __future__ import annotations

from typing import Any

from .errors import FerbenchError


def coerce(value: Any, typ: type) -> Any:
    """``value`` (often a CLI string) as ``typ``; booleans accept 1/0, true/false, yes/no, on/off."""
    if typ is bool and isinstance(value, str):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise FerbenchError(f"not a boolean: {value!r} (use true or false)")
    try:
        return typ(value)
    except (TypeError, ValueError):
        raise FerbenchError(f"not a valid {typ.__name__}: {value!r}") from None


def component(spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A component section (``{name: ..., **params}``) split into its registry name and its parameters."""
    return spec["name"], {k: v for k, v in spec.items() if k != "name"}


def resolve_params(owner: str, defaults: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """``defaults`` overridden by ``given`` (strings from the CLI are coerced to the default's type)."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise FerbenchError(f"{owner}: unknown parameter(s) {unknown}; known: {sorted(defaults)}")
    out = dict(defaults)
    for key, value in given.items():
        default = defaults[key]
        out[key] = value if default is None or isinstance(value, type(default)) else coerce(value, type(default))
    return out

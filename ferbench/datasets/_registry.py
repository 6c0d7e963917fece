"""Dataset registry: ``@register_dataset`` on a loader class, ``get_loader(name)`` to find it."""

from __future__ import annotations

from difflib import get_close_matches

from ..errors import FerbenchError
from .base import DatasetLoader

_REGISTRY: dict[str, type[DatasetLoader]] = {}


def register_dataset(cls: type[DatasetLoader]) -> type[DatasetLoader]:
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise FerbenchError(f"dataset {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def list_datasets() -> list[str]:
    return sorted(_REGISTRY)


def get_loader(name: str) -> type[DatasetLoader]:
    try:
        return _REGISTRY[name]
    except KeyError:
        hint = get_close_matches(name, _REGISTRY, n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise FerbenchError(f"unknown dataset {name!r}{extra}; known: {', '.join(list_datasets())}") from None

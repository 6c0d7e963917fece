"""One registry type for every kind of thing ferbench looks up by name.

Datasets, models, protocols, merges, synthetic layouts, benchmarks, samplers, augmentations,
losses, optimisers and schedulers are each a ``Registry``. A package registers its members by
importing them in its ``__init__`` (as timm's ``models/__init__.py`` does); nothing else lists
them. Registering a second, different member under a taken name is an error naming both
modules; an unknown name is an error with the closest known name as a hint; ``names(glob)``
lists what matches a shell-style pattern.
"""

from __future__ import annotations

import importlib
import sys
from difflib import get_close_matches
from fnmatch import fnmatchcase
from typing import Callable, Generic, Iterator, TypeVar

from .errors import FerbenchError

T = TypeVar("T")


class UnknownNameError(FerbenchError):
    """A name that no registered member has (the message lists the closest names)."""


class Registry(Generic[T]):
    """Named members of one kind: ``register``, ``get``, ``names``, ``items``, ``in``."""

    def __init__(self, kind: str, populate: tuple[str, ...] = ()):
        """``populate``: packages whose import registers the members; imported on first lookup,
        so a low-level module can own a registry without importing what fills it."""
        self.kind = kind
        self._populate = populate
        self._members: dict[str, T] = {}
        self._origin: dict[str, str] = {}

    def _filled(self) -> dict[str, T]:
        while self._populate:
            module, self._populate = self._populate[0], self._populate[1:]
            importlib.import_module(module)
        return self._members

    def register(self, name: str, member: T, origin: str | None = None) -> T:
        """Add ``member`` under ``name``; the same member twice is a no-op (module reloads)."""
        origin = origin or _origin(member)
        if name in self._members and self._members[name] is not member:
            raise FerbenchError(
                f"{self.kind} {name!r} registered twice: in {self._origin[name]} and in {origin}"
            )
        self._members[name] = member
        self._origin[name] = origin
        return member

    def decorator(self, name_of: Callable[[T], str]) -> Callable[[T], T]:
        """A decorator that registers a class or function under ``name_of(member)``."""

        def wrap(member: T) -> T:
            return self.register(name_of(member), member)

        return wrap

    def get(self, name: str) -> T:
        try:
            return self._filled()[name]
        except KeyError:
            raise UnknownNameError(self.unknown(name)) from None

    def unknown(self, name: str) -> str:
        """The one-line message for a name that is not registered."""
        hint = get_close_matches(name, list(self._filled()), n=1, cutoff=0.5)
        did = f" (did you mean {hint[0]!r}?)" if hint else ""
        return f"unknown {self.kind} {name!r}{did}; known: {', '.join(self.names()) or 'none'}"

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a glob (``*``, ``?``, ``[...]``), sorted."""
        return sorted(n for n in self._filled() if fnmatchcase(n, pattern))

    def items(self) -> list[tuple[str, T]]:
        return [(n, self._members[n]) for n in self.names()]

    def origin(self, name: str) -> str:
        """The module that registered ``name``."""
        self.get(name)
        return self._origin[name]

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._filled()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._filled())


def _origin(member: object) -> str:
    """The module whose code registers ``member``: the first caller outside this module and
    outside the registering helpers (functions named ``register*`` or ``wrap``)."""
    frame = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "?")
        if module != __name__ and not frame.f_code.co_name.startswith(("register", "wrap")):
            return str(module)
        frame = frame.f_back
    return str(getattr(member, "__module__", "?"))

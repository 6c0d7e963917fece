"""Recipe files as YAML: strict reading with positions, ``base:`` inheritance, merging and overrides.

Reading is stricter than ``yaml.safe_load``: a syntax error names ``file:line:column`` and shows the
offending line with a caret; a duplicate key is an error (YAML would silently keep the last); any tag
beyond plain data (``!!python/object/apply:...``, ``!custom``) is refused with one line. Every key
read keeps the position it was written at, so an error found later, after the recipe is merged and
validated (``ferbench.train.recipe``), can name the file and line that set the key.

Keys are addressed as dotted paths with list indices: ``train.epochs``, ``augment[0].name``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import FerbenchError

COMPONENT_SECTIONS = ("sampler", "loss", "optimizer", "scheduler")


class RecipeError(FerbenchError):
    """A recipe does not read or validate; ``key`` is the dotted key at fault, when there is one."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


@dataclass
class Source:
    """A recipe mapping read from YAML, and where each key was written (``file:line:column``)."""

    data: dict[str, Any]
    where: dict[str, str] = field(default_factory=dict)

    def locate(self, key: str | None) -> str | None:
        """Where ``key`` (or the nearest enclosing key that was written) comes from."""
        while key:
            if key in self.where:
                return self.where[key]
            key = parent_key(key)
        return None


def parent_key(key: str) -> str:
    if key.endswith("]"):
        return key[: key.rindex("[")]
    return key.rpartition(".")[0]


# -- strict YAML ----------------------------------------------------------------------------------
class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and every tag it has no plain-data constructor for."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise _Refused(f"duplicate key {key!r} (first at line {seen[key].line + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)

    def construct_undefined(self, node):
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        raise _Refused(f"YAML tag {tag} is refused: a recipe holds plain data only (mappings, lists, "
                       "strings, numbers, booleans, null)", node.start_mark)


_StrictLoader.add_constructor(None, _StrictLoader.construct_undefined)


class _Refused(Exception):
    def __init__(self, message: str, mark):
        super().__init__(message)
        self.message, self.mark = message, mark


def _excerpt(text: str, mark) -> str:
    """The offending line with a caret under the column."""
    lines = text.splitlines()
    if mark is None or not 0 <= mark.line < len(lines):
        return ""
    number = str(mark.line + 1)
    return f"\n    {number} | {lines[mark.line]}\n    {' ' * len(number)} | {' ' * mark.column}^"


def parse_yaml(text: str, name: str) -> Source:
    """Parse recipe text strictly; ``name`` (the file) prefixes every position and error."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except _Refused as exc:
        m = exc.mark
        raise RecipeError(f"{name}:{m.line + 1}:{m.column + 1}: {exc.message}") from None
    except yaml.MarkedYAMLError as exc:
        m = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        context = f" ({exc.context})" if exc.context and exc.problem else ""
        where = f"{name}:{m.line + 1}:{m.column + 1}" if m else name
        raise RecipeError(f"{where}: YAML syntax error: {problem}{context}{_excerpt(text, m)}") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"{name}: YAML error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError(f"{name}: a recipe is a mapping of keys (train:, model:, ...), got a {type(data).__name__}")
    where: dict[str, str] = {}
    _positions(node, "", name, where)
    return Source(data, where)


def _positions(node, prefix: str, name: str, out: dict[str, str]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
            m = key_node.start_mark
            out[key] = f"{name}:{m.line + 1}:{m.column + 1}"
            _positions(value_node, key, name, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            key = f"{prefix}[{i}]"
            m = item.start_mark
            out[key] = f"{name}:{m.line + 1}:{m.column + 1}"
            _positions(item, key, name, out)


# -- files, bases, merging ------------------------------------------------------------------------
def read_with_bases(path: Path, seen: tuple[Path, ...] = ()) -> Source:
    """A recipe file merged over the chain of its ``base:`` files (relative to each file's folder)."""
    path = Path(path).resolve()
    if path in seen:
        raise RecipeError(f"recipe base cycle: {' -> '.join(map(str, (*seen, path)))}")
    if not path.is_file():
        what = f"base {path.name!r} of {seen[-1]}" if seen else f"recipe {path}"
        raise RecipeError(f"{what} does not exist" + (f" (looked in {path.parent})" if seen else ""))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{path}: cannot read the recipe ({exc})") from None
    source = parse_yaml(text, _shown(path))
    base = source.data.pop("base", None)
    source.where.pop("base", None)
    if base is None:
        return source
    if not isinstance(base, str):
        raise RecipeError(f"{source.where.get('base', path)}: base must be a file name, got {base!r}")
    parent = read_with_bases(path.parent / base, (*seen, path))
    return Source(merge(parent.data, source.data), {**parent.where, **source.where})


def _shown(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings key by key, everything else replaced; a component whose name changes is replaced."""
    out = copy.deepcopy(base)
    for key, value in child.items():
        old = out.get(key)
        renamed = key in COMPONENT_SECTIONS and isinstance(value, dict) and "name" in value and isinstance(old, dict) and old.get("name") != value["name"]
        if isinstance(old, dict) and isinstance(value, dict) and not renamed:
            out[key] = merge(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_override(raw: dict[str, Any], item: str) -> str:
    """Apply one ``dotted.key=value`` override (value parsed as YAML) to a raw recipe mapping;
    returns the dotted key it set."""
    if "=" not in item:
        raise RecipeError(f"override {item!r} is not key=value (e.g. train.epochs=3)")
    key, text = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise RecipeError(f"override {item!r}: {key!r} is not a dotted key (e.g. train.epochs=3)")
    value = _override_value(text, item) if text.strip() else None
    *parents, last = key.split(".")
    node = raw
    for i, p in enumerate(parents):
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise RecipeError(f"override {item!r}: {'.'.join(parents[: i + 1])} is not a mapping", key)
    if last == "name" and parents and parents[-1] in COMPONENT_SECTIONS and node.get("name") != value:
        node.clear()
    node[last] = value
    return key


def _override_value(text: str, item: str) -> Any:
    loader = _StrictLoader(text)
    try:
        return loader.get_single_data()
    except _Refused as exc:
        raise RecipeError(f"override {item!r}: {exc.message}") from None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecipeError(f"override {item!r}: the value is not valid YAML ({problem}); quote a value holding YAML characters like [ ] {{ }} : #") from None
    finally:
        loader.dispose()

"""The JSON Schema of a recipe file, generated from the recipe dataclasses and the component registries.

Editors use it to complete and check recipes as they are typed (VS Code's YAML extension: a first line
``# yaml-language-server: $schema=recipe.schema.json``, or a ``yaml.schemas`` setting). It describes
a recipe *file*: every key optional (``base:`` files and defaults fill the rest), unknown keys refused,
the component sections (``loss``, ``optimizer``, ...) with their registered names and each name's own
parameters. The shipped copy, ``ferbench/recipes/recipe.schema.json``, is this function's output
(``ferbench recipe-schema --out``); the test suite checks it is current and that every shipped recipe
validates against it. Loading (``ferbench.train.recipe``) stays the authority: it also checks what a
schema cannot (one of protocol.name/manifest, channels that fit the modality, ...).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import types
import typing
from typing import Any, Literal

from ..devices import PATTERN as DEVICE_PATTERN
from .recipe import COMPONENT_SECTIONS, Recipe, recipe_params, registry

SCHEMA_ID = "https://ferbench.invalid/recipe.schema.json"
#: strings YAML 1.1 loaders read for numbers such as 1e-3 (ferbench converts them)
_NUMERIC = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"


def recipe_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a recipe file."""
    schema = _object(Recipe, top=True)
    schema["properties"] = {"base": {"type": "string", "description": "recipe file to inherit from, relative to this one"},
                            **schema["properties"]}
    for section in COMPONENT_SECTIONS:
        schema["properties"][section] = _component(section)
    augment = {"type": "array", "items": _component("augment"), "description": "batch augmentations, in order"}
    schema["properties"]["augment"] = augment
    schema["$defs"]["HardSamplesCfg"]["properties"]["augment"] = augment
    schema["properties"]["runtime"] = {"$ref": "#/$defs/RuntimeCfg"}
    schema["$defs"]["RuntimeCfg"]["properties"]["device"] = {
        "type": "string", "pattern": DEVICE_PATTERN, "default": "auto", "description": "auto, cpu, cuda, cuda:N or mps"}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, "title": "ferbench recipe", **schema}


def schema_json() -> str:
    """The schema as the shipped file holds it (sorted keys, two-space indent, newline at the end)."""
    return json.dumps(recipe_schema(), indent=2, sort_keys=True) + "\n"


def _object(cls: type, top: bool = False, defs: dict | None = None) -> dict[str, Any]:
    defs = {} if defs is None else defs
    hints = typing.get_type_hints(cls)
    props = {}
    for f in dataclasses.fields(cls):
        prop = _type(hints[f.name], defs)
        if f.default is not dataclasses.MISSING and not dataclasses.is_dataclass(f.default):
            prop = {**prop, "default": f.default}
        props[f.name] = prop
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if cls.__doc__ and not cls.__doc__.startswith(cls.__name__ + "("):
        out["description"] = " ".join(cls.__doc__.split())
    if top:
        out["$defs"] = defs
    return out


def _type(typ: Any, defs: dict) -> dict[str, Any]:
    origin, args = typing.get_origin(typ), typing.get_args(typ)
    if dataclasses.is_dataclass(typ):
        if typ.__name__ not in defs:
            defs[typ.__name__] = {}
            defs[typ.__name__] = _object(typ, defs=defs)
        return {"$ref": f"#/$defs/{typ.__name__}"}
    if origin in (typing.Union, types.UnionType):
        inner = [_type(a, defs) for a in args if a is not type(None)]
        return {"anyOf": [*inner, {"type": "null"}]} if type(None) in args else inner[0]
    if origin is Literal:
        return {"enum": list(args)}
    if origin is list:
        return {"type": "array", "items": _type(args[0], defs)} if args else {"type": "array"}
    if typ is dict or origin is dict:
        return {"type": "object"}
    if typ is bool:
        return {"type": "boolean"}
    if typ is int:
        return {"type": "integer"}
    if typ is float:
        return {"anyOf": [{"type": "number"}, {"type": "string", "pattern": _NUMERIC}]}
    if typ is str:
        return {"type": "string"}
    return {}


def _component(section: str) -> dict[str, Any]:
    """``{name: ..., <that factory's keyword parameters>}``: one branch per registered name."""
    reg = registry(section)
    branches = []
    for name in sorted(reg):
        params = {k: _param(v) for k, v in recipe_params(reg[name]).items()}
        branches.append({
            "if": {"properties": {"name": {"const": name}}, "required": ["name"]},
            "then": {"properties": {"name": {"const": name}, **params}, "additionalProperties": False},
        })
    return {"type": "object", "required": ["name"], "properties": {"name": {"enum": sorted(reg)}}, "allOf": branches}


def _param(default: Any) -> dict[str, Any]:
    """A component parameter, typed by its default (any value when it has none or it is None)."""
    if default is inspect.Parameter.empty or default is None:
        return {}
    if isinstance(default, bool):
        return {"type": "boolean", "default": default}
    if isinstance(default, int):
        return {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": _NUMERIC}], "default": default}
    if isinstance(default, float):
        return {"anyOf": [{"type": "number"}, {"type": "string", "pattern": _NUMERIC}], "default": default}
    if isinstance(default, str):
        return {"type": "string", "default": default}
    if isinstance(default, (list, tuple)):
        return {"type": "array", "default": list(default)}
    return {}

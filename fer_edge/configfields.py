"""Typed, validated loading of nested dataclasses from YAML-like dicts.

Why not a library: pydantic would be a heavy dependency of the lean runtime, and what we need is
small — dataclasses whose fields are ``int/float/bool/str``, ``Optional``, ``Literal``, ``List``,
``Tuple[..., ...]``, ``Dict[str, X]`` or another dataclass — with errors that name the key path,
the value and what is allowed, and a closest-match suggestion for a typo.
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Any, Dict, Literal, Mapping, Tuple, Union

from fer_edge.runtime.errors import ConfigError

_NONE = type(None)


def _typename(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin is Union:
        return " or ".join(_typename(a) for a in typing.get_args(tp))
    if tp is _NONE:
        return "null"
    if origin in (list, tuple, dict):
        return f"{origin.__name__} of " + ", ".join(_typename(a) for a in typing.get_args(tp) if a is not Ellipsis)
    return getattr(tp, "__name__", str(tp))


def suggest(key: str, allowed: typing.Iterable[str]) -> str:
    """`` — did you mean 'train'?`` or an empty string."""
    close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.5)
    return f" — did you mean {close[0]!r}?" if close else ""


def convert(value: Any, tp: Any, path: str) -> Any:
    """Convert/validate ``value`` against type ``tp``; raise ConfigError naming ``path``."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is Union:
        args = typing.get_args(tp)
        if value is None and _NONE in args:
            return None
        errors = []
        for arg in args:
            if arg is _NONE:
                continue
            try:
                return convert(value, arg, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{path}: {value!r} is not {_typename(tp)}")
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            hint = suggest(str(value), [str(a) for a in allowed])
            raise ConfigError(f"{path}: {value!r} is not allowed; allowed values: "
                              f"{', '.join(repr(a) for a in allowed)}{hint}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return from_dict(tp, value, path)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list ({_typename(tp)}), got {value!r} "
                              f"({type(value).__name__})")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{path}: expected {len(args)} items, got {len(value)}")
            return tuple(convert(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        items = [convert(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {value!r} ({type(value).__name__})")
        kt, vt = typing.get_args(tp) or (str, Any)
        return {convert(k, kt, f"{path}") : convert(v, vt, f"{path}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected bool (true/false), got {value!r} ({type(value).__name__})")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected int, got {value!r} ({type(value).__name__})")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{path}: expected float, got {value!r} ({type(value).__name__})")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{path}: expected str, got {value!r} ({type(value).__name__})")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"{path}: cannot read {value!r} as {_typename(tp)}")


def from_dict(cls: Any, data: Any, path: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``; unknown keys and bad values are ConfigErrors."""
    where = path or "<root>"
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of keys, got {data!r} ({type(data).__name__})")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: Dict[str, Any] = {}
    for key, value in data.items():
        sub = f"{path}.{key}" if path else str(key)
        if key not in fields:
            raise ConfigError(f"{sub}: unknown key{suggest(str(key), fields)} "
                              f"(allowed keys under {where}: {', '.join(sorted(fields))})")
        kwargs[key] = convert(value, hints[key], sub)
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if (not path or msg.startswith(path)) else f"{path}.{msg}") from None


def to_dict(obj: Any) -> Any:
    """Dataclass → plain dict/list tree (tuples become lists), for YAML/JSON."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def set_path(tree: Dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested dict, creating mappings on the way (validation happens later)."""
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            node[part] = nxt
        node = nxt
    node[parts[-1]] = value


def split_override(text: str) -> Tuple[str, str]:
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not KEY=VALUE (for example train.epochs=3)")
    key, value = text.split("=", 1)
    key = key.strip()
    if not key or any(not p for p in key.split(".")):
        raise ConfigError(f"override {text!r} has an empty key")
    return key, value

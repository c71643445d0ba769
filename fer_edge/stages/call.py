"""``StageCall``: a stage function and the settings it is called with -- what a verb and the pipeline both run.

Each stage module in this package has one ``from_config(cfg, **flags) -> StageCall``: it reads the stage's
config section, lets the verb's command-line flags override single keys, validates them, and returns the
function to call with its keyword settings. ``fer-edge <verb>`` and ``fer-edge pipeline`` both build their
call with it, so neither maps config keys by hand, and the pipeline's stage fingerprint is the call itself:
a key the stage does not pass to its function cannot re-run it (Polygraphy's argument groups are the model).
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Mapping, Optional

from fer_edge.runtime.errors import ConfigError


def pick(flag: Any, configured: Any) -> Any:
    """A verb's flag when given (not ``None``), else the config's value."""
    return configured if flag is None else flag


def jsonable(value: Any) -> Any:
    """Settings as plain JSON (dataclasses → dicts, paths → strings, tuples → lists), for fingerprints."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


@dataclass(frozen=True)
class StageCall:
    """``target`` (``"package.module:function"``, imported only when called) with ``settings`` as keywords.

    The inputs that differ between a verb and the pipeline (which checkpoint, which folder) are the
    positional/keyword arguments of :meth:`__call__`; everything a config key decides is in ``settings``.
    """

    stage: str
    target: str
    settings: Mapping[str, Any] = field(default_factory=dict)

    def function(self) -> Callable[..., Any]:
        module, _, name = self.target.partition(":")
        obj: Any = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
        return obj

    def __call__(self, *inputs: Any, **more: Any) -> Any:
        clash = sorted(set(more) & set(self.settings))
        if clash:  # a bug: an input must never silently replace a configured setting
            raise TypeError(f"{self.stage}: {clash} are settings of this call, not inputs")
        return self.function()(*inputs, **more, **self.settings)

    def replace(self, **settings: Any) -> StageCall:
        """The same call with some settings changed (an input-dependent choice, e.g. no INT8 path to bench)."""
        unknown = sorted(set(settings) - set(self.settings))
        if unknown:
            raise TypeError(f"{self.stage}: {unknown} are not settings of this call")
        return dataclasses.replace(self, settings={**self.settings, **settings})

    def fingerprint(self) -> Dict[str, Any]:
        """What the pipeline hashes for this stage: the function and every setting it is called with."""
        return {"target": self.target, "settings": jsonable(self.settings)}


def refuse_in_pipeline(section: Any, name: str, keys: Iterable[str], why: str,
                       default: Optional[Any] = None) -> None:
    """A ``ConfigError`` when the config sets one of ``keys`` that the pipeline decides itself.

    ``keys`` are fields of the ``section`` dataclass; a value other than the field's default is refused, with
    ``why`` (what the pipeline uses instead), so a setting is never silently ignored.
    """
    base = default if default is not None else type(section)()
    for key in keys:
        if getattr(section, key) != getattr(base, key):
            raise ConfigError(f"{name}.{key}: not applicable to `fer-edge pipeline` ({why}); remove it from the "
                              f"config, or run `fer-edge {name}` for that")

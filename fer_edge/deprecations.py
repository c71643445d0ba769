"""Config keys that no longer exist, and what to do about them (as Ultralytics' ``_handle_deprecation``).

A key that was renamed is moved to its new name with a warning; a key that was removed is dropped with a
warning that says why. Either way an old config still loads and says what changed, instead of failing
with "unknown key". Add a line here whenever a key is renamed or removed.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Tuple

log = logging.getLogger("fer_edge.config")

RENAMED = "renamed"
REMOVED = "removed"

#: old dotted key → (RENAMED, new dotted key) or (REMOVED, why it went).
DEPRECATED: Dict[str, Tuple[str, str]] = {
    "train.workers": (REMOVED, "nothing read it: the trainer holds the faces in memory and has no loader workers "
                               "(data.synth.workers sets the synthetic world's generator processes)"),
    "train.cal.lambda_max": (REMOVED, "CAL weighs its discriminator by train.cal.cal_weight; "
                                      "lambda_max was never read"),
    "train.pixel_da.hidden": (REMOVED, "pixel_da's patch discriminator is sized by train.pixel_da.d_width and "
                                       "d_layers; hidden was never read"),
    "train.pixel_da.dropout": (REMOVED, "pixel_da's patch discriminator has no dropout; the key was never read"),
}


def _pop(tree: Dict[str, Any], dotted: str) -> Tuple[bool, Any]:
    *parents, leaf = dotted.split(".")
    node: Any = tree
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            return False, None
    if leaf not in node:
        return False, None
    return True, node.pop(leaf)


def _put(tree: Dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
    node.setdefault(leaf, value)  # the new key, when also given, wins


def handle_deprecated(tree: Dict[str, Any], where: str = "config") -> List[str]:
    """Rewrite ``tree`` in place: renamed keys moved, removed keys dropped; returns (and logs) one line each."""
    said: List[str] = []
    for old, (kind, what) in DEPRECATED.items():
        found, value = _pop(tree, old)
        if not found:
            continue
        if kind == RENAMED:
            _put(tree, what, value)
            line = f"{where}: {old} was renamed to {what}; read as {what}={value!r} (rename it in the config)"
        else:
            line = f"{where}: {old} was removed because {what}; ignoring {old}={value!r} (delete it from the config)"
        log.warning("%s", line)
        said.append(line)
    return said

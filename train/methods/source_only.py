"""``source_only``: cross-entropy on labelled source faces and nothing else.

The floor every adaptation method must beat on the target; a method that does not is reported as
such. The target batch is not forwarded at all, so it cannot touch BatchNorm statistics either.
"""
from __future__ import annotations

from .base import Method


class SourceOnly(Method):
    name = "source_only"

"""Construct pydantic models from values already known to be valid, without validation.

The hot path builds ~15 models per decision from values the guardrails produced themselves (every
channel, template and discount has been checked against the bank by then). `pydantic.BaseModel.
model_construct` is slower than validating for small models; this does what it does for the case
where every field is supplied. Tests assert that these objects re-validate and that every field is set.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)
_new = object.__new__
_set = object.__setattr__


def build(cls: type[M], values: dict[str, Any]) -> M:
    """An instance of `cls` whose fields are exactly `values` (which must name every field)."""
    obj = _new(cls)
    _set(obj, "__dict__", values)
    _set(obj, "__pydantic_fields_set__", set(values))
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj

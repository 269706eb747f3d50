"""What every spec file shares: the base model, the name rule, and the one YAML loader.

Source specs (`stat19.specs`), product specs (`stat19.products.spec`) and DQ suites (`stat19.dq`)
are YAML files validated by pydantic models built on `SpecModel`. `load_spec` reads one and raises
`SpecError` naming the file (pydantic's message names the field), which the command line prints
in one line instead of a traceback.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, field_validator

from stat19.paths import SpecError

__all__ = ["NAME", "NamedSpec", "SpecError", "SpecModel", "load_spec"]

NAME = re.compile(r"^[a-z][a-z0-9_]*$")  # names become SQL identifiers and file names

M = TypeVar("M", bound=BaseModel)


class SpecModel(BaseModel):
    """A part of a spec: unknown keys are refused (a typo must not be silently ignored), and a
    loaded spec cannot change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NamedSpec(SpecModel):
    """A part with a lower_snake_case name."""

    name: str

    @field_validator("name")
    @classmethod
    def _lower_snake(cls, v: str) -> str:
        if not NAME.match(v):
            raise ValueError(f"name {v!r} must be lower_snake_case")
        return v


def load_spec(path: Path, model: type[M], kind: str, defaults: dict[str, Any] | None = None) -> M:
    """The spec in the YAML file `path`, validated by `model`; `defaults` fill keys the file omits.
    `kind` names the spec in the error ("source spec", "product spec", "DQ suite")."""
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        if doc is None:
            doc = {}
        if not isinstance(doc, dict):
            raise ValueError(f"the file must hold a mapping of fields, not {type(doc).__name__}")
        return model.model_validate({**(defaults or {}), **doc})
    except Exception as exc:  # pydantic's message names the field; add the file
        raise SpecError(f"invalid {kind} {path}: {exc}") from exc

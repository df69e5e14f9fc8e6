"""Turning a result row into the dataclass that names the same columns."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


def from_row(cls: type[T], row: Mapping[Any, Any], **converted: Any) -> T:
    """`cls` with each field read from the row's column of the same name.

    `converted` gives the fields that need more than the raw value (an enum, a copied dict).
    """
    raw = {field.name: row[field.name] for field in dataclasses.fields(cls) if field.name not in converted}
    return cls(**raw, **converted)

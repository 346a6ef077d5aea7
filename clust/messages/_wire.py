"""Base classes shared by every wire model of ``clust.messages``.

``WireModel.to_wire()`` dumps like the official SDK builds bodies: a field the
caller never set is left out, an explicit ``None`` goes out as ``null``, and a
model parsed from JSON dumps back exactly the keys it came with (unknown keys
included, since every model but the request body keeps extras).
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, get_args

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from clust.messages.errors import InvalidParameter
from clust.messages.invalid_fields import invalid_fields

__all__ = ["OpenUnionFallback", "WireEnum", "WireModel", "literal_tags"]


class WireEnum(str, Enum):
    """A ``str`` enum whose members are their wire strings (``str()`` gives the value)."""

    def __str__(self) -> str:
        return str(self.value)


def invalid_parameter_in(error: ValidationError) -> InvalidParameter | None:
    """The first ``InvalidParameter`` raised by a validator inside ``error``, if any."""
    for detail in error.errors(include_url=False):
        ctx = detail.get("ctx")
        if ctx:
            cause = ctx.get("error")
            if isinstance(cause, InvalidParameter):
                return cause
    return None


class WireModel(BaseModel):
    """Base of every request, response and event model.

    Construction by keyword (``TextContentBlock(text="hi")``) marks the ``type``
    tag as set so it is always sent, although it has a default, and raises the
    ``InvalidParameter`` of a failed value check as itself, any other validation
    failure (an unknown field, a wrong type) as ``InvalidFields`` naming the field
    (the pydantic ``ValidationError`` is the ``__cause__``). Parsing (``model_validate`` /
    ``model_validate_json``) never runs ``__init__``: it stays in pydantic's Rust
    core, keeps exactly the fields present in the input and raises
    ``ValidationError`` (a ``ValueError``).
    """

    model_config = ConfigDict(
        extra="allow",
        protected_namespaces=(),
        validate_by_name=True,
        validate_by_alias=True,
    )

    # Fields whose default is sent even when the caller relied on it ("type" is added
    # automatically when it has a default).
    _wire_send_defaults: ClassVar[frozenset[str]] = frozenset()
    # Computed per class: the fields __init__ marks as set.
    _wire_always_set: ClassVar[frozenset[str]] = frozenset()
    # Fields dropped from the set fields by __init__ when they are None (never sent as null).
    _wire_omit_none: ClassVar[frozenset[str]] = frozenset()
    # Fields that may also be given positionally, in this order (the class then declares
    # its __init__ signature for type checkers under TYPE_CHECKING).
    _wire_positional: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        always = set(cls._wire_send_defaults)
        tag = cls.__pydantic_fields__.get("type")
        if tag is not None and not tag.is_required() and tag.default is not None:
            always.add("type")
        cls._wire_always_set = frozenset(always)

    if not TYPE_CHECKING:
        # Hidden from type checkers so the pydantic plugin's precise, field-aware
        # signature stays in force. Only keyword construction pays for this.
        def __init__(self, /, *args: Any, **data: Any) -> None:
            __tracebackhide__ = True
            if args:
                self._take_positional(args, data)
            try:
                super().__init__(**data)
            except ValidationError as error:
                cause = invalid_parameter_in(error)
                if cause is None:
                    cause = invalid_fields(type(self), error)
                raise cause from error
            fields_set = self.__pydantic_fields_set__
            if self._wire_always_set:
                fields_set.update(self._wire_always_set)
            for name in self._wire_omit_none:
                if getattr(self, name) is None:
                    fields_set.discard(name)

        # Tell pydantic this __init__ adds nothing to validation, so parsing
        # (model_validate / model_validate_json / nested models) never calls it.
        __init__.__pydantic_base_init__ = True

    @classmethod
    def _take_positional(cls, args: tuple[Any, ...], data: dict[str, Any]) -> None:
        names = cls._wire_positional
        if len(args) > len(names):
            raise TypeError(
                f"{cls.__name__}() takes {len(names)} positional arguments, {len(args)} given"
            )
        for name, value in zip(names, args, strict=False):
            if name in data:
                raise TypeError(f"{cls.__name__}() got multiple values for {name!r}")
            data[name] = value

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict sent on (or received from) the wire."""
        return self.model_dump(mode="json", exclude_unset=True, by_alias=True)


class OpenUnionFallback(WireModel):
    """Base of the ``Unknown*`` models that catch types a newer API introduced.

    They keep every field and dump back unchanged. A *known* ``type`` is refused,
    so a malformed known object fails validation instead of silently becoming
    unknown.
    """

    type: str

    _known_types: ClassVar[frozenset[str]] = frozenset()

    @field_validator("type")
    @classmethod
    def _reject_known_type(cls, value: str) -> str:
        if value in cls._known_types:
            raise ValueError(f"type {value!r} is known but its fields did not validate")
        return value


def literal_tags(*models: type[BaseModel]) -> frozenset[str]:
    """Every value of the ``Literal`` annotation of the ``type`` field of ``models``."""
    tags: set[str] = set()
    for model in models:
        tags.update(str(value) for value in get_args(model.__pydantic_fields__["type"].annotation))
    return frozenset(tags)

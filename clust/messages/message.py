"""Conversation turns (``Message``, ``Role``) and the system prompt (``SystemPrompt``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, overload

from pydantic import BaseModel, Field, RootModel

from clust.messages._wire import WireEnum, WireModel
from clust.messages.blocks import ContentBlock, TextContentBlock
from clust.messages.cache import CacheControl

__all__ = ["Message", "MessageContent", "Role", "SystemPrompt"]


class Role(WireEnum):
    """Who speaks a turn. ``SYSTEM`` turns inside ``messages`` need a model that accepts them."""

    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"


MessageContent = str | ContentBlock | Sequence[ContentBlock]
"""What ``Message.user`` / ``Message.assistant`` take: a string, a block or blocks."""


def _content(content: MessageContent) -> str | list[ContentBlock]:
    if isinstance(content, str):
        return content
    if isinstance(content, BaseModel):
        return [content]
    return list(content)


def _join_text(content: str | Sequence[object]) -> str:
    if isinstance(content, str):
        return content
    return "".join(block.text for block in content if isinstance(block, TextContentBlock))


class Message(WireModel):
    """One turn: ``{"role": ..., "content": str | [blocks]}``.

    ``Message(Role.USER, "Hi")``, ``Message(role="user", content=[...])`` or
    ``Message.user("Hi")``. ``role`` also accepts the strings ``"user"``,
    ``"assistant"`` and ``"system"``. A string ``content`` is shorthand for one text
    block.
    """

    role: Role
    content: Annotated[str | list[ContentBlock], Field(union_mode="left_to_right")]

    _wire_positional: ClassVar[tuple[str, ...]] = ("role", "content")

    if TYPE_CHECKING:

        @overload
        def __init__(
            self, role: Role | str, content: str | Sequence[ContentBlock], /, **extra: Any
        ) -> None: ...

        @overload
        def __init__(
            self, /, *, role: Role | str, content: str | Sequence[ContentBlock], **extra: Any
        ) -> None: ...

        def __init__(self, /, *args: Any, **kwargs: Any) -> None: ...

    @classmethod
    def user(cls, content: MessageContent) -> Message:
        """A user turn from a string, a block or a list of blocks."""
        return cls(role=Role.USER, content=_content(content))

    @classmethod
    def assistant(cls, content: MessageContent) -> Message:
        """An assistant turn (a final one is a prefill) from a string, a block or blocks."""
        return cls(role=Role.ASSISTANT, content=_content(content))

    @classmethod
    def system(cls, content: str | Sequence[TextContentBlock]) -> Message:
        """A system turn inside ``messages`` (only on models that accept them)."""
        return cls(role=Role.SYSTEM, content=_content(content))

    def text(self) -> str:
        """The text of the turn: the string content, or all text blocks joined."""
        return _join_text(self.content)


class SystemPrompt(RootModel[str | list[TextContentBlock]]):
    """The ``system`` field: a string, or text blocks (the form that carries cache markers).

    ``SystemPrompt("You are terse.")`` dumps to the string; the block forms dump to a
    list of text blocks.
    """

    root: Annotated[str | list[TextContentBlock], Field(union_mode="left_to_right")]

    @classmethod
    def from_text_blocks_with_cache_control(
        cls, blocks: Iterable[tuple[str, CacheControl | None]]
    ) -> SystemPrompt:
        """Text blocks from ``(text, cache_control or None)`` pairs."""
        return cls(
            [
                TextContentBlock(text=text)
                if cache_control is None
                else TextContentBlock(text=text, cache_control=cache_control)
                for text, cache_control in blocks
            ]
        )

    @classmethod
    def from_content_blocks(cls, blocks: Iterable[TextContentBlock]) -> SystemPrompt:
        """A system prompt made of the given text blocks."""
        return cls(list(blocks))

    def text(self) -> str:
        """The prompt text (blocks joined with no separator)."""
        return _join_text(self.root)

    def to_wire(self) -> str | list[dict[str, Any]]:
        """The JSON-ready value of the ``system`` field."""
        if isinstance(self.root, str):
            return self.root
        return [block.to_wire() for block in self.root]

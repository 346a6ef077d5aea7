"""Content blocks, request and response side, and their sources.

``ContentBlock`` is the open union used everywhere blocks appear (message
content, response content, ``content_block_start``, ``tool_result`` content):
known ``type`` tags dispatch in pydantic's Rust core; any other tag parses into
``UnknownContentBlock``, which keeps every field and dumps back unchanged.

Blocks built by keyword always send their ``type`` tag; blocks parsed from JSON
dump back exactly the keys they came with.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StrictBool

from clust.messages._wire import OpenUnionFallback, WireEnum, WireModel, literal_tags
from clust.messages.cache import CacheControl
from clust.messages.citations import Citation, CitationsConfig

__all__ = [
    "Base64Source",
    "ContainerUploadContentBlock",
    "ContentBlock",
    "ContentBlockSource",
    "DocumentContentBlock",
    "DocumentSource",
    "FileSource",
    "ImageContentBlock",
    "ImageMediaType",
    "ImageSource",
    "PlainTextSource",
    "RedactedThinkingContentBlock",
    "SearchResultContentBlock",
    "ServerToolResultContentBlock",
    "ServerToolResultType",
    "ServerToolUseContentBlock",
    "TextContentBlock",
    "ThinkingContentBlock",
    "ToolCaller",
    "ToolReferenceContentBlock",
    "ToolResultContentBlock",
    "ToolUseContentBlock",
    "UnknownContentBlock",
    "UnknownSource",
    "UrlSource",
]


def _options(**fields: Any) -> dict[str, Any]:
    """Keyword arguments without the ones left at None (so they are not sent as null)."""
    return {name: value for name, value in fields.items() if value is not None}


def _citations(value: bool | CitationsConfig | None) -> CitationsConfig | None:
    if value is None or isinstance(value, CitationsConfig):
        return value
    return CitationsConfig(enabled=value)


# --- sources ---------------------------------------------------------------------------------


class ImageMediaType(WireEnum):
    """Media types accepted for base64 images."""

    JPEG = "image/jpeg"
    PNG = "image/png"
    GIF = "image/gif"
    WEBP = "image/webp"


class Base64Source(WireModel):
    """Inline data: an image (``image/*``) or a PDF (``application/pdf``)."""

    type: Literal["base64"] = "base64"
    media_type: str
    data: str


class UrlSource(WireModel):
    """An image or PDF fetched by the API from ``url``."""

    type: Literal["url"] = "url"
    url: str


class FileSource(WireModel):
    """A file uploaded with the Files API."""

    type: Literal["file"] = "file"
    file_id: str


class PlainTextSource(WireModel):
    """A plain-text document."""

    type: Literal["text"] = "text"
    media_type: str = "text/plain"
    data: str

    _wire_send_defaults: ClassVar[frozenset[str]] = frozenset({"media_type"})


class ContentBlockSource(WireModel):
    """A document made of content blocks (text or image), cited by block ranges."""

    type: Literal["content"] = "content"
    content: Annotated[
        str | list[TextContentBlock | ImageContentBlock],
        Field(union_mode="left_to_right"),
    ]


class UnknownSource(OpenUnionFallback):
    """A source type this release does not know; every field is kept."""

    _known_types: ClassVar[frozenset[str]] = literal_tags(
        Base64Source, UrlSource, FileSource, PlainTextSource, ContentBlockSource
    )


ImageSource = Annotated[
    Annotated[Base64Source | UrlSource | FileSource, Field(discriminator="type")] | UnknownSource,
    Field(union_mode="left_to_right"),
]
"""Source of an image block: base64, url or file."""

DocumentSource = Annotated[
    Annotated[
        Base64Source | UrlSource | FileSource | PlainTextSource | ContentBlockSource,
        Field(discriminator="type"),
    ]
    | UnknownSource,
    Field(union_mode="left_to_right"),
]
"""Source of a document block: base64 PDF, url PDF, plain text, content blocks or file."""


# --- blocks ----------------------------------------------------------------------------------


class ToolCaller(WireModel):
    """Who called a tool: ``{"type": "direct"}`` or a code-execution tool with ``tool_id``."""

    type: str
    tool_id: str | None = None


class TextContentBlock(WireModel):
    """``{"type": "text", "text": ...}`` with optional citations and cache marker."""

    type: Literal["text"] = "text"
    text: str
    citations: list[Citation] | None = None
    cache_control: CacheControl | None = None

    @classmethod
    def new(cls, text: str) -> TextContentBlock:
        """A text block."""
        return cls(text=text)

    @classmethod
    def new_with_cache_control(cls, text: str, cache_control: CacheControl) -> TextContentBlock:
        """A text block carrying a cache breakpoint."""
        return cls(text=text, cache_control=cache_control)


class ImageContentBlock(WireModel):
    """An image given as base64 data, a URL or an uploaded file."""

    type: Literal["image"] = "image"
    source: ImageSource
    cache_control: CacheControl | None = None

    @classmethod
    def from_base64(
        cls,
        media_type: ImageMediaType | str,
        data: str,
        *,
        cache_control: CacheControl | None = None,
    ) -> ImageContentBlock:
        """An inline image; ``data`` is the base64 text."""
        source = Base64Source(media_type=str(media_type), data=data)
        return cls(source=source, **_options(cache_control=cache_control))

    @classmethod
    def from_url(cls, url: str, *, cache_control: CacheControl | None = None) -> ImageContentBlock:
        """An image the API downloads."""
        return cls(source=UrlSource(url=url), **_options(cache_control=cache_control))

    @classmethod
    def from_file(
        cls, file_id: str, *, cache_control: CacheControl | None = None
    ) -> ImageContentBlock:
        """An image uploaded with the Files API."""
        return cls(source=FileSource(file_id=file_id), **_options(cache_control=cache_control))


class DocumentContentBlock(WireModel):
    """A document: PDF (base64 or URL), plain text, content blocks or an uploaded file."""

    type: Literal["document"] = "document"
    source: DocumentSource
    title: str | None = None
    context: str | None = None
    citations: CitationsConfig | None = None
    cache_control: CacheControl | None = None

    @classmethod
    def _build(
        cls,
        source: WireModel,
        title: str | None,
        context: str | None,
        citations: bool | CitationsConfig | None,
        cache_control: CacheControl | None,
    ) -> DocumentContentBlock:
        return cls(
            source=source,
            **_options(
                title=title,
                context=context,
                citations=_citations(citations),
                cache_control=cache_control,
            ),
        )

    @classmethod
    def from_pdf_base64(
        cls,
        data: str,
        *,
        title: str | None = None,
        context: str | None = None,
        citations: bool | CitationsConfig | None = None,
        cache_control: CacheControl | None = None,
    ) -> DocumentContentBlock:
        """A PDF given inline as base64 text."""
        source = Base64Source(media_type="application/pdf", data=data)
        return cls._build(source, title, context, citations, cache_control)

    @classmethod
    def from_pdf_url(
        cls,
        url: str,
        *,
        title: str | None = None,
        context: str | None = None,
        citations: bool | CitationsConfig | None = None,
        cache_control: CacheControl | None = None,
    ) -> DocumentContentBlock:
        """A PDF the API downloads."""
        return cls._build(UrlSource(url=url), title, context, citations, cache_control)

    @classmethod
    def from_text(
        cls,
        text: str,
        *,
        title: str | None = None,
        context: str | None = None,
        citations: bool | CitationsConfig | None = None,
        cache_control: CacheControl | None = None,
    ) -> DocumentContentBlock:
        """A plain-text document."""
        return cls._build(PlainTextSource(data=text), title, context, citations, cache_control)

    @classmethod
    def from_content(
        cls,
        content: str | Sequence[TextContentBlock | ImageContentBlock],
        *,
        title: str | None = None,
        context: str | None = None,
        citations: bool | CitationsConfig | None = None,
        cache_control: CacheControl | None = None,
    ) -> DocumentContentBlock:
        """A document made of content blocks (cited by block index)."""
        blocks = content if isinstance(content, str) else list(content)
        source = ContentBlockSource(content=blocks)
        return cls._build(source, title, context, citations, cache_control)

    @classmethod
    def from_file(
        cls,
        file_id: str,
        *,
        title: str | None = None,
        context: str | None = None,
        citations: bool | CitationsConfig | None = None,
        cache_control: CacheControl | None = None,
    ) -> DocumentContentBlock:
        """A document uploaded with the Files API."""
        return cls._build(FileSource(file_id=file_id), title, context, citations, cache_control)


class SearchResultContentBlock(WireModel):
    """A search result supplied by the caller, citable by block range."""

    type: Literal["search_result"] = "search_result"
    source: str
    title: str
    content: list[TextContentBlock]
    citations: CitationsConfig | None = None
    cache_control: CacheControl | None = None


class ToolUseContentBlock(WireModel):
    """The model asks to call a client tool; ``input`` is the JSON arguments object."""

    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any]
    caller: ToolCaller | None = None
    toolset_name: str | None = None
    cache_control: CacheControl | None = None

    @classmethod
    def new(cls, id: str, name: str, input: dict[str, Any]) -> ToolUseContentBlock:
        """A tool call (mostly for replaying or testing conversations)."""
        return cls(id=id, name=name, input=input)


class ToolResultContentBlock(WireModel):
    """The result of a client tool call, sent in the next user turn."""

    type: Literal["tool_result"] = "tool_result"
    tool_use_id: str
    content: Annotated[str | list[ContentBlock] | None, Field(union_mode="left_to_right")] = None
    is_error: StrictBool | None = None
    toolset_name: str | None = None
    cache_control: CacheControl | None = None

    @classmethod
    def new(
        cls,
        tool_use_id: str,
        content: str | Sequence[ContentBlock] | None = None,
        *,
        is_error: bool | None = None,
        cache_control: CacheControl | None = None,
    ) -> ToolResultContentBlock:
        """A tool result; ``content`` is a string or blocks, ``is_error=True`` on failure."""
        body = content if content is None or isinstance(content, str) else list(content)
        return cls(
            tool_use_id=tool_use_id,
            **_options(content=body, is_error=is_error, cache_control=cache_control),
        )


class ThinkingContentBlock(WireModel):
    """The model's thinking; send it back byte-for-byte with its ``signature``."""

    type: Literal["thinking"] = "thinking"
    thinking: str
    signature: str


class RedactedThinkingContentBlock(WireModel):
    """Encrypted thinking; send ``data`` back unchanged."""

    type: Literal["redacted_thinking"] = "redacted_thinking"
    data: str


class ServerToolUseContentBlock(WireModel):
    """A call of a server tool (web search, web fetch, code execution, tool search ...)."""

    type: Literal["server_tool_use"] = "server_tool_use"
    id: str
    name: str
    input: dict[str, Any]
    caller: ToolCaller | None = None
    cache_control: CacheControl | None = None


ServerToolResultType = Literal[
    "web_search_tool_result",
    "web_fetch_tool_result",
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
    "tool_search_tool_result",
]
"""The ``type`` strings of the server-tool result family."""


class ServerToolResultContentBlock(WireModel):
    """The result of a server tool, one class for the whole ``*_tool_result`` family.

    ``type`` names the tool (e.g. ``"web_search_tool_result"``); ``content`` is the
    raw JSON, either a success object / list or an error object
    (``{"type": "<x>_tool_result_error", "error_code": ...}``).
    """

    type: ServerToolResultType
    tool_use_id: str
    content: Annotated[dict[str, Any] | list[Any], Field(union_mode="left_to_right")]
    caller: ToolCaller | None = None
    cache_control: CacheControl | None = None


class ContainerUploadContentBlock(WireModel):
    """A file uploaded into the code-execution container."""

    type: Literal["container_upload"] = "container_upload"
    file_id: str
    cache_control: CacheControl | None = None


class ToolReferenceContentBlock(WireModel):
    """A reference to a deferred tool (inside ``tool_result`` content)."""

    type: Literal["tool_reference"] = "tool_reference"
    tool_name: str
    cache_control: CacheControl | None = None


class UnknownContentBlock(OpenUnionFallback):
    """A block type this release does not know; every field is kept and sent back unchanged."""

    _known_types: ClassVar[frozenset[str]] = literal_tags(
        TextContentBlock,
        ImageContentBlock,
        DocumentContentBlock,
        SearchResultContentBlock,
        ToolUseContentBlock,
        ToolResultContentBlock,
        ThinkingContentBlock,
        RedactedThinkingContentBlock,
        ServerToolUseContentBlock,
        ServerToolResultContentBlock,
        ContainerUploadContentBlock,
        ToolReferenceContentBlock,
    )


ContentBlock = Annotated[
    Annotated[
        TextContentBlock
        | ImageContentBlock
        | DocumentContentBlock
        | SearchResultContentBlock
        | ToolUseContentBlock
        | ToolResultContentBlock
        | ThinkingContentBlock
        | RedactedThinkingContentBlock
        | ServerToolUseContentBlock
        | ServerToolResultContentBlock
        | ContainerUploadContentBlock
        | ToolReferenceContentBlock,
        Field(discriminator="type"),
    ]
    | UnknownContentBlock,
    Field(union_mode="left_to_right"),
]
"""Any content block; unknown types become ``UnknownContentBlock``."""

ContentBlockSource.model_rebuild()
ToolResultContentBlock.model_rebuild()


def text_blocks(blocks: Iterable[ContentBlock]) -> list[TextContentBlock]:
    """The text blocks among ``blocks``."""
    return [block for block in blocks if isinstance(block, TextContentBlock)]

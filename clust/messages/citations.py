"""Citations (``text.citations``, ``citations_delta.citation``) and the ``citations`` switch.

PDF sources cite pages, plain text cites characters, ``content`` documents cite
block ranges; web search and search results have locations of their own. An
unknown citation type parses into ``UnknownCitation`` and dumps back unchanged.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, StrictBool

from clust.messages._wire import OpenUnionFallback, WireModel, literal_tags

__all__ = [
    "CharLocationCitation",
    "Citation",
    "CitationsConfig",
    "ContentBlockLocationCitation",
    "PageLocationCitation",
    "SearchResultLocationCitation",
    "UnknownCitation",
    "WebSearchResultLocationCitation",
]


class CitationsConfig(WireModel):
    """``{"enabled": bool}`` on documents and search results."""

    enabled: StrictBool | None = None


class CharLocationCitation(WireModel):
    """A character range of a plain-text document (end index exclusive)."""

    type: Literal["char_location"] = "char_location"
    cited_text: str
    document_index: int
    document_title: str | None = None
    start_char_index: int
    end_char_index: int
    file_id: str | None = None


class PageLocationCitation(WireModel):
    """A page range of a PDF document."""

    type: Literal["page_location"] = "page_location"
    cited_text: str
    document_index: int
    document_title: str | None = None
    start_page_number: int
    end_page_number: int
    file_id: str | None = None


class ContentBlockLocationCitation(WireModel):
    """A block range of a ``content`` document (end index exclusive)."""

    type: Literal["content_block_location"] = "content_block_location"
    cited_text: str
    document_index: int
    document_title: str | None = None
    start_block_index: int
    end_block_index: int
    file_id: str | None = None


class WebSearchResultLocationCitation(WireModel):
    """A passage of a web search result."""

    type: Literal["web_search_result_location"] = "web_search_result_location"
    cited_text: str
    url: str
    title: str | None = None
    encrypted_index: str


class SearchResultLocationCitation(WireModel):
    """A block range of a ``search_result`` block."""

    type: Literal["search_result_location"] = "search_result_location"
    cited_text: str
    search_result_index: int
    source: str
    title: str | None = None
    start_block_index: int
    end_block_index: int


class UnknownCitation(OpenUnionFallback):
    """A citation type this release does not know; every field is kept."""

    _known_types: ClassVar[frozenset[str]] = literal_tags(
        CharLocationCitation,
        PageLocationCitation,
        ContentBlockLocationCitation,
        WebSearchResultLocationCitation,
        SearchResultLocationCitation,
    )


Citation = Annotated[
    Annotated[
        CharLocationCitation
        | PageLocationCitation
        | ContentBlockLocationCitation
        | WebSearchResultLocationCitation
        | SearchResultLocationCitation,
        Field(discriminator="type"),
    ]
    | UnknownCitation,
    Field(union_mode="left_to_right"),
]
"""Any citation object; unknown types become ``UnknownCitation``."""

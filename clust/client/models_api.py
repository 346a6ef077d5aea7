"""The Models API methods of ``Client`` and ``AsyncClient``: list, get, refresh the table.

Written once (see :mod:`clust.client._twins`): on ``AsyncClient`` ``get_model`` and
``refresh_models`` are awaited and ``list_models`` is an async iterator.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from clust.client._base import ClientCore
from clust.client._pages import Listing, paged
from clust.client._settings import TimeoutTypes
from clust.client._twins import operation
from clust.protocol.models_api import get_model_request, list_models_walk
from clust.protocol.plans import Plan

if TYPE_CHECKING:
    from clust.messages.claude_models import ModelLimits
    from clust.messages.models_api import ModelInfo

__all__ = ["ModelsApi"]


class ModelsApi(ClientCore):
    """``list_models``, ``get_model`` and ``refresh_models`` of both clients."""

    @paged
    def list_models(
        self,
        *,
        limit: int | None = None,
        after_id: str | None = None,
        before_id: str | None = None,
        lifecycle: Iterable[str] | str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> Listing[ModelInfo]:
        """Every model (GET /v1/models), newest first, fetching pages as iteration needs
        them (``async for model in client.list_models()`` on the async client).

        Args:
            limit: models per page, 1..1000 (default: the API's, 20). Iteration goes on
                over every page; stop iterating to stop fetching.
            after_id: start after this model id.
            before_id: start before this model id, and page backwards.
            lifecycle: only ``"active"``, ``"deprecated"`` and/or ``"retired"`` models
                (the API's default: active and deprecated).

        Raises:
            InvalidParameter: a bad ``limit``, or both cursors (at once, before any request).
            ApiError: when a page is fetched.
        """
        from clust.messages.models_api import ModelInfo
        from clust.messages.pages import Page

        walk = list_models_walk(
            limit=limit,
            after_id=after_id,
            before_id=before_id,
            lifecycle=lifecycle,
            extra_headers=extra_headers,
        )
        return self._listing(walk, Page[ModelInfo], timeout, max_retries)

    @operation
    def get_model(
        self,
        model_id: str,
        *,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> Plan[ModelInfo]:
        """One model (GET /v1/models/{model_id}); an alias resolves to its model.

        Raises:
            NotFoundError: no such model.
        """
        from clust.messages.models_api import ModelInfo
        from clust.protocol.response import parse_json_model

        spec = get_model_request(model_id, extra_headers=extra_headers)
        response = yield from self._call(spec, timeout, max_retries)
        return parse_json_model(ModelInfo, response.headers, response.content)

    @operation
    def refresh_models(
        self,
        *,
        lifecycle: Iterable[str] | str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> Plan[dict[str, ModelLimits]]:
        """List every model and record its limits in the table ``MaxTokens`` checks
        (see :func:`~clust.messages.models_api.refresh_models_table`); returns them by id.
        Nothing is recorded unless every page was read."""
        from clust.messages.models_api import ModelInfo, refresh_models_table
        from clust.messages.pages import Page

        walk = list_models_walk(limit=1000, lifecycle=lifecycle, extra_headers=extra_headers)
        listing = self._listing(walk, Page[ModelInfo], timeout, max_retries)
        return refresh_models_table((yield from listing.everything()))

"""The Models API methods of ``Client`` and ``AsyncClient``: list, get, refresh the table."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

import httpx

from clust.client._pages import AsyncPageIterator, PageIterator
from clust.client._settings import TimeoutTypes
from clust.protocol.models_api import get_model_request, list_models_walk
from clust.protocol.request import RequestSpec

if TYPE_CHECKING:
    from clust.messages.claude_models import ModelLimits
    from clust.messages.models_api import ModelInfo

__all__ = ["AsyncModelsMixin", "ModelsMixin"]


class ModelsMixin:
    """``list_models``, ``get_model`` and ``refresh_models`` of :class:`~clust.Client`."""

    if TYPE_CHECKING:

        def _call(
            self, spec: RequestSpec, timeout: TimeoutTypes | None, max_retries: int | None
        ) -> httpx.Response:
            raise NotImplementedError

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
    ) -> Iterator[ModelInfo]:
        """Every model (GET /v1/models), newest first, fetching pages as iteration needs them.

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
        return PageIterator(
            lambda spec: self._call(spec, timeout, max_retries), walk, Page[ModelInfo]
        )

    def get_model(
        self,
        model_id: str,
        *,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> ModelInfo:
        """One model (GET /v1/models/{model_id}); an alias resolves to its model.

        Raises:
            NotFoundError: no such model.
        """
        from clust.messages.models_api import ModelInfo
        from clust.protocol.response import parse_json_model

        spec = get_model_request(model_id, extra_headers=extra_headers)
        response = self._call(spec, timeout, max_retries)
        return parse_json_model(ModelInfo, response.headers, response.content)

    def refresh_models(
        self,
        *,
        lifecycle: Iterable[str] | str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> dict[str, ModelLimits]:
        """List every model and record its limits in the table ``MaxTokens`` checks
        (see :func:`~clust.messages.models_api.refresh_models_table`); returns them by id."""
        from clust.messages.models_api import refresh_models_table

        return refresh_models_table(
            self.list_models(
                limit=1000,
                lifecycle=lifecycle,
                extra_headers=extra_headers,
                timeout=timeout,
                max_retries=max_retries,
            )
        )


class AsyncModelsMixin:
    """``list_models``, ``get_model`` and ``refresh_models`` of :class:`~clust.AsyncClient`."""

    if TYPE_CHECKING:

        async def _call(
            self, spec: RequestSpec, timeout: TimeoutTypes | None, max_retries: int | None
        ) -> httpx.Response:
            raise NotImplementedError

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
    ) -> AsyncIterator[ModelInfo]:
        """Every model, newest first: ``async for model in client.list_models(): ...``.

        Arguments as for :meth:`clust.Client.list_models`; pages are fetched as
        iteration needs them. Bad arguments raise at once, before any request.
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
        return AsyncPageIterator(
            lambda spec: self._call(spec, timeout, max_retries), walk, Page[ModelInfo]
        )

    async def get_model(
        self,
        model_id: str,
        *,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> ModelInfo:
        """One model (GET /v1/models/{model_id}); an alias resolves to its model."""
        from clust.messages.models_api import ModelInfo
        from clust.protocol.response import parse_json_model

        spec = get_model_request(model_id, extra_headers=extra_headers)
        response = await self._call(spec, timeout, max_retries)
        return parse_json_model(ModelInfo, response.headers, response.content)

    async def refresh_models(
        self,
        *,
        lifecycle: Iterable[str] | str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> dict[str, ModelLimits]:
        """List every model and record its limits in the table ``MaxTokens`` checks."""
        from clust.messages.models_api import refresh_models_table

        models = [
            model
            async for model in self.list_models(
                limit=1000,
                lifecycle=lifecycle,
                extra_headers=extra_headers,
                timeout=timeout,
                max_retries=max_retries,
            )
        ]
        return refresh_models_table(models)

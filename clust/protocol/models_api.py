"""Requests of the Models API: GET /v1/models (paginated) and GET /v1/models/{id}."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import quote

from clust.messages.errors import InvalidParameter
from clust.protocol.pagination import PageWalk, QueryValue
from clust.protocol.request import RequestSpec, call_headers

__all__ = ["get_model_request", "list_models_walk"]


def _lifecycle_query(lifecycle: Iterable[str] | str | None) -> dict[str, QueryValue]:
    if lifecycle is None:
        return {}
    values = [lifecycle] if isinstance(lifecycle, str) else [str(v) for v in lifecycle]
    for value in values:
        if not value:
            raise InvalidParameter("lifecycle", value, "'active', 'deprecated' or 'retired'")
    return {"lifecycle[]": values} if values else {}


def list_models_walk(
    *,
    limit: int | None = None,
    after_id: str | None = None,
    before_id: str | None = None,
    lifecycle: Iterable[str] | str | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> PageWalk:
    """The pages of GET /v1/models, newest model first.

    ``lifecycle`` filters by ``"active"``, ``"deprecated"``, ``"retired"`` (sent as
    ``lifecycle[]``; the API's default is active and deprecated models).
    """
    return PageWalk(
        "/v1/models",
        limit=limit,
        after_id=after_id,
        before_id=before_id,
        query=_lifecycle_query(lifecycle),
        extra_headers=extra_headers,
    )


def get_model_request(
    model_id: str, *, extra_headers: Mapping[str, str] | None = None
) -> RequestSpec:
    """GET /v1/models/{model_id} (an id or an alias; the id is URL-escaped)."""
    model_id = str(getattr(model_id, "value", model_id))  # a ClaudeModel member too
    if not model_id:
        raise InvalidParameter("model_id", model_id, "a non-empty model id")
    path = f"/v1/models/{quote(model_id, safe='')}"
    return RequestSpec("GET", path, call_headers(False, None, extra_headers))

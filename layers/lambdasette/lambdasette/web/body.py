"""Request bodies: JSON, whatever the Content-Type says, capped at `max_post_body_bytes`."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from lambdasette.errors import ApiError


async def read_bytes(request: Request, limit: int) -> bytes:
    """The body, or 413 as soon as it passes `limit` bytes (0: no limit) - without reading
    the rest of an oversized upload into memory."""
    declared = request.headers.get("content-length", "")
    if limit and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"Request body exceeded maximum size of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if limit and size > limit:
            raise ApiError(413, f"Request body exceeded maximum size of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_object(raw: bytes, *, empty: Any = ...,
                 message: str = "JSON must be a dictionary") -> dict[str, Any]:
    """A JSON object from a body; `empty` stands for a bodiless request when given."""
    if not raw.strip() and empty is not ...:
        return empty
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"Invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, message)
    return data


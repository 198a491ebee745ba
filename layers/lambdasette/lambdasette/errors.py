"""The one error type the API raises, rendered as the contract's JSON error body."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A client-visible error: `status` plus one or more messages."""

    def __init__(
        self,
        status: int,
        *messages: str,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__("; ".join(messages))
        self.status = status
        self.messages = list(messages) or ["Error"]
        self.title = title
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error": "; ".join(self.messages),
            "errors": self.messages,
            "status": self.status,
            "title": self.title,
        }
        body.update(self.extra)
        return body

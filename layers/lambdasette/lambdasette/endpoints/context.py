"""What every endpoint receives: the app state, the request, its arguments and actor."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from ..args import Args
from ..core import Lambdasette
from ..responses import url_with_args
from ..routing import Target


@dataclass
class Context:
    ds: Lambdasette
    request: Request
    target: Target
    args: Args
    actor: dict[str, Any] | None = None
    facets_timed_out: list[str] = field(default_factory=list)

    def url(self, args: Args) -> str:
        return url_with_args(self.request, args, force_https=self.ds.settings.force_https_urls)

"""Real AWS APIs for tests: moto in server mode (real HTTP), resources built from template.yaml."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import localcloud

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"


def template_resource(name: str) -> dict[str, Any]:
    return localcloud.load_template()["Resources"][name]


def create_tokens_table(client: Any, name: str | None = None) -> str:
    """The TokensTable exactly as template.yaml deploys it (the same code local-cloud uses)."""
    return localcloud.create_tokens_table(client, name or f"tokens-{uuid.uuid4().hex[:8]}")

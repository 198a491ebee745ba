"""Real AWS APIs for tests: moto in server mode (real HTTP), resources built from template.yaml."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !Sub, ...) as plain values."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


_CfnLoader.add_multi_constructor("!", _tag)


def template_resource(name: str) -> dict[str, Any]:
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=_CfnLoader)
    return template["Resources"][name]


def create_tokens_table(client: Any, name: str | None = None) -> str:
    """The TokensTable exactly as template.yaml deploys it (keys, index, TTL)."""
    props = template_resource("TokensTable")["Properties"]
    name = name or f"tokens-{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=name,
        BillingMode=props["BillingMode"],
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"],
    )
    ttl = props["TimeToLiveSpecification"]
    client.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    return name

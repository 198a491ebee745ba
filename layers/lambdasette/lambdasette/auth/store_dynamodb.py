"""API tokens in DynamoDB: the token store the AWS deployment uses.

The table is `TokensTable` in template.yaml: hash key `id`, a `by_actor` index
(actor, created) for listing, and TTL on `expires_at`, which DynamoDB honours up to
days late - so `tokens.verify` checks `expires` itself on every request.

What a request costs here: one strongly consistent GetItem of the token (1 read request unit);
a token minted from another adds one strongly consistent BatchGetItem of its chain (one read
unit per ancestor, at most `MAX_CHAIN - 1`; one round trip whatever the depth). A write adds
one more BatchGetItem (the token and its chain) right before its commit. `last_used` costs an
UpdateItem at most once a minute per token.
"""

from __future__ import annotations

import json
import time
from typing import Any

from lambdasette.auth.tokens import TokenRecord

# Expired tokens stay listable (as "expired") this long before TTL may delete them.
KEEP_EXPIRED_SECONDS = 30 * 24 * 3600


class DynamoDBTokenStore:
    def __init__(self, table_name: str, client: Any = None) -> None:
        if client is None:
            import boto3  # only here: boto3 costs ~0.4 s to import, and local serving never needs it

            client = boto3.client("dynamodb")
        self.client = client
        self.table = table_name

    @staticmethod
    def _item(record: TokenRecord) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": {"S": record.id},
            "actor": {"S": record.actor},
            "secret_hash": {"S": record.secret_hash},
            "restrictions": {"S": json.dumps(record.restrictions)},
            "created": {"N": str(record.created)},
            "revoked": {"BOOL": record.revoked},
        }
        if record.expires is not None:
            item["expires"] = {"N": str(record.expires)}
            item["expires_at"] = {"N": str(record.expires + KEEP_EXPIRED_SECONDS)}
        if record.last_used is not None:
            item["last_used"] = {"N": str(record.last_used)}
        if record.ancestors:
            item["ancestors"] = {"L": [{"S": a} for a in record.ancestors]}
        return item

    @staticmethod
    def _record(item: dict[str, Any]) -> TokenRecord:
        def number(key: str) -> int | None:
            return int(item[key]["N"]) if key in item else None

        return TokenRecord(
            id=item["id"]["S"],
            actor=item["actor"]["S"],
            secret_hash=item["secret_hash"]["S"],
            restrictions=json.loads(item["restrictions"]["S"]),
            created=int(item["created"]["N"]),
            expires=number("expires"),
            last_used=number("last_used"),
            revoked=item.get("revoked", {}).get("BOOL", False),
            # Items stored before token chains have no `ancestors`: they are roots.
            ancestors=[a["S"] for a in item.get("ancestors", {}).get("L", [])],
        )

    def put(self, record: TokenRecord) -> None:
        # Ids are random; the condition makes a collision an error instead of an overwrite.
        self.client.put_item(TableName=self.table, Item=self._item(record),
                             ConditionExpression="attribute_not_exists(id)")

    def get(self, token_id: str) -> TokenRecord | None:
        # Strongly consistent, so a revocation holds from the very next request.
        response = self.client.get_item(TableName=self.table, Key={"id": {"S": token_id}},
                                        ConsistentRead=True)
        item = response.get("Item")
        return self._record(item) if item else None

    def get_many(self, token_ids: list[str]) -> dict[str, TokenRecord]:
        # One BatchGetItem (up to 100 keys; a chain is at most MAX_CHAIN), strongly consistent
        # like `get`. Keys DynamoDB leaves unprocessed (throttling) are asked for again.
        keys = [{"id": {"S": token_id}} for token_id in dict.fromkeys(token_ids)]
        found: dict[str, TokenRecord] = {}
        delay = 0.02
        while keys:
            response = self.client.batch_get_item(
                RequestItems={self.table: {"Keys": keys[:100], "ConsistentRead": True}})
            for item in response.get("Responses", {}).get(self.table, []):
                record = self._record(item)
                found[record.id] = record
            unprocessed = response.get("UnprocessedKeys", {}).get(self.table, {}).get("Keys", [])
            keys = unprocessed + keys[100:]
            if unprocessed:
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        return found

    def list(self, actor: str | None = None) -> list[TokenRecord]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.table}
        if actor is not None:
            kwargs.update(IndexName="by_actor", KeyConditionExpression="actor = :a",
                          ExpressionAttributeValues={":a": {"S": actor}})
        method = self.client.query if actor is not None else self.client.scan
        while True:
            page = method(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        records = [self._record(item) for item in items]
        return sorted(records, key=lambda r: (r.created, r.id))

    def revoke(self, token_id: str) -> bool:
        error = self.client.exceptions.ConditionalCheckFailedException
        try:
            self.client.update_item(
                TableName=self.table, Key={"id": {"S": token_id}},
                UpdateExpression="SET revoked = :t", ConditionExpression="attribute_exists(id)",
                ExpressionAttributeValues={":t": {"BOOL": True}},
            )
        except error:
            return False
        return True

    def touch(self, token_id: str, when: int) -> None:
        error = self.client.exceptions.ConditionalCheckFailedException
        try:
            self.client.update_item(
                TableName=self.table, Key={"id": {"S": token_id}},
                UpdateExpression="SET last_used = :w", ConditionExpression="attribute_exists(id)",
                ExpressionAttributeValues={":w": {"N": str(when)}},
            )
        except error:
            pass

    def close(self) -> None:
        pass  # boto3 clients hold no connection worth closing

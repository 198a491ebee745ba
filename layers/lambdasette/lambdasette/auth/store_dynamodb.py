"""API tokens in DynamoDB: the token store the AWS deployment uses.

The table is `TokensTable` in template.yaml: hash key `id`, a `by_actor` index
(actor, created) for listing, and TTL on `expires_at`, which DynamoDB honours up to
days late - so `tokens.verify` checks `expires` itself on every request.

Signed-in sessions (`auth.sessions`) share the table, in items that cannot be taken for
tokens: their key is `session#<SHA-256 of the session id>` (a token id is hex, never holds
`#`, and token lookups refuse ids that do), they carry `kind = "session"`, no `actor` (so the
`by_actor` index never holds them) and no `secret_hash`; every token method skips such items,
and `expires_at` (TTL) is the session's own end. A signed-in request costs one consistent
GetItem of its session and one consistent BatchGetItem of its token and chain.

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

from lambdasette.auth.tokens import SessionRecord, TokenRecord

# Expired tokens stay listable (as "expired") this long before TTL may delete them.
KEEP_EXPIRED_SECONDS = 30 * 24 * 3600
SESSION_PREFIX = "session#"
SESSION_KIND = "session"


def is_token_id(token_id: str) -> bool:
    """Could `token_id` name a token item? Session keys (and anything with `#`) cannot."""
    return bool(token_id) and "#" not in token_id


def is_token_item(item: dict[str, Any]) -> bool:
    return "kind" not in item and "secret_hash" in item


class DynamoDBTokenStore:
    def __init__(self, table_name: str, client: Any = None) -> None:
        self._client = client
        self.table = table_name

    @property
    def client(self) -> Any:
        """The DynamoDB client, made on first use: boto3 costs ~0.4 s to import, local serving
        never needs it, and a Lambda container's cold start should not pay it for a request
        that asks no token (an anonymous GET of a public instance)."""
        if self._client is None:
            import boto3

            self._client = boto3.client("dynamodb")
        return self._client

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
        if record.description is not None:
            item["description"] = {"S": record.description}
        if record.revoked_at is not None:
            item["revoked_at"] = {"N": str(record.revoked_at)}
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
            description=item["description"]["S"] if "description" in item else None,
            revoked_at=number("revoked_at"),
        )

    def put(self, record: TokenRecord) -> None:
        # Ids are random; the condition makes a collision an error instead of an overwrite.
        self.client.put_item(TableName=self.table, Item=self._item(record),
                             ConditionExpression="attribute_not_exists(id)")

    def get(self, token_id: str) -> TokenRecord | None:
        if not is_token_id(token_id):
            return None
        # Strongly consistent, so a revocation holds from the very next request.
        response = self.client.get_item(TableName=self.table, Key={"id": {"S": token_id}},
                                        ConsistentRead=True)
        item = response.get("Item")
        return self._record(item) if item and is_token_item(item) else None

    def get_many(self, token_ids: list[str]) -> dict[str, TokenRecord]:
        # One BatchGetItem (up to 100 keys; a chain is at most MAX_CHAIN), strongly consistent
        # like `get`. Keys DynamoDB leaves unprocessed (throttling) are asked for again.
        keys = [{"id": {"S": token_id}} for token_id in dict.fromkeys(token_ids) if is_token_id(token_id)]
        found: dict[str, TokenRecord] = {}
        delay = 0.02
        while keys:
            response = self.client.batch_get_item(
                RequestItems={self.table: {"Keys": keys[:100], "ConsistentRead": True}})
            for item in response.get("Responses", {}).get(self.table, []):
                if not is_token_item(item):
                    continue
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
        # Sessions have no `actor`, so the index never holds them; a scan leaves them out.
        kwargs: dict[str, Any] = {"TableName": self.table, "FilterExpression": "attribute_not_exists(#kind)",
                                  "ExpressionAttributeNames": {"#kind": "kind"}}
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
        records = [self._record(item) for item in items if is_token_item(item)]
        return sorted(records, key=lambda r: (r.created, r.id))

    def revoke(self, token_id: str, when: int | None = None) -> bool:
        if not is_token_id(token_id):
            return False
        when = int(time.time()) if when is None else when
        error = self.client.exceptions.ConditionalCheckFailedException
        try:
            self.client.update_item(
                TableName=self.table, Key={"id": {"S": token_id}},
                # The first revocation's time stays.
                UpdateExpression="SET revoked = :t, revoked_at = if_not_exists(revoked_at, :w)",
                ConditionExpression="attribute_exists(secret_hash) AND attribute_not_exists(#kind)",
                ExpressionAttributeNames={"#kind": "kind"},
                ExpressionAttributeValues={":t": {"BOOL": True}, ":w": {"N": str(when)}},
            )
        except error:
            return False
        return True

    def touch(self, token_id: str, when: int) -> None:
        if not is_token_id(token_id):
            return
        error = self.client.exceptions.ConditionalCheckFailedException
        try:
            self.client.update_item(
                TableName=self.table, Key={"id": {"S": token_id}},
                UpdateExpression="SET last_used = :w",
                ConditionExpression="attribute_exists(secret_hash) AND attribute_not_exists(#kind)",
                ExpressionAttributeNames={"#kind": "kind"},
                ExpressionAttributeValues={":w": {"N": str(when)}},
            )
        except error:
            pass

    def put_session(self, session: SessionRecord) -> None:
        item = {
            "id": {"S": SESSION_PREFIX + session.key},
            "kind": {"S": SESSION_KIND},
            "token_id": {"S": session.token_id},
            "csrf": {"S": session.csrf},
            "created": {"N": str(session.created)},
            "expires": {"N": str(session.expires)},
            # TTL removes it once it has ended (days late at worst: `expires` is what counts).
            "expires_at": {"N": str(session.expires)},
        }
        if session.ancestors:
            item["ancestors"] = {"L": [{"S": a} for a in session.ancestors]}
        self.client.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(id)")

    def get_session(self, key: str) -> SessionRecord | None:
        response = self.client.get_item(TableName=self.table, Key={"id": {"S": SESSION_PREFIX + key}},
                                        ConsistentRead=True)
        item = response.get("Item")
        if not item or item.get("kind", {}).get("S") != SESSION_KIND:
            return None
        return SessionRecord(
            key=key, token_id=item["token_id"]["S"], csrf=item["csrf"]["S"],
            created=int(item["created"]["N"]), expires=int(item["expires"]["N"]),
            ancestors=[a["S"] for a in item.get("ancestors", {}).get("L", [])],
        )

    def delete_session(self, key: str) -> None:
        self.client.delete_item(TableName=self.table, Key={"id": {"S": SESSION_PREFIX + key}})

    def close(self) -> None:
        pass  # boto3 clients hold no connection worth closing

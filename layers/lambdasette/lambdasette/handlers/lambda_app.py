"""Building the app inside AWS Lambda: configuration from the environment, Mangum adapter."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lambdasette import logs
from lambdasette.app import create_app
from lambdasette.auth.permissions import Policy
from lambdasette.auth.tokens import open_store
from lambdasette.errors import ApiError
from lambdasette.instance import Lambdasette, Options
from lambdasette.metadata import Metadata
from lambdasette.settings import Settings, parse_bool
from lambdasette.storage.base import Storage
from lambdasette.storage.budget import time_budget
from lambdasette.storage.datadir import Protected
from lambdasette.storage.local import LocalStorage
from lambdasette.web.app import FORWARD_HEADER
from lambdasette.web.requestlog import REQUEST_ID_HEADER

log = logging.getLogger("lambdasette")

# A buffered Lambda response is capped at 6 MB: keep answers (pages, query results, CSV
# exports) below it, with room for the escaping of the body inside Lambda's JSON payload.
LAMBDA_MAX_RESPONSE_BYTES = 5 * 1024 * 1024


class LambdaScope:
    """Completes Mangum's scope for the app: restores `raw_path` from an API Gateway v2 event
    (Mangum leaves it None and percent-decodes `path`, which would turn an encoded '/' into a
    separator), and says whether this is the container's first invocation (the request log's
    `cold_start`; the handler clears `cold` after each invocation, tasks included)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.cold = True

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            event = scope.get("aws.event") or {}
            raw = event.get("rawPath")
            scope = dict(scope, **{"lambdasette.cold_start": self.cold})
            if raw and not scope.get("raw_path"):
                scope["raw_path"] = raw.encode("utf-8")
        await self.app(scope, receive, send)


def load_policy(value: str | None) -> Policy:
    """LAMBDASETTE_PERMISSIONS: inline JSON (as a template parameter passes it) or a file path."""
    if not value:
        return Policy()
    if value.lstrip().startswith("{"):
        import json

        return Policy.parse(json.loads(value))
    return Policy.load(Path(value))


def build(role: str, environ: dict[str, str] | None = None) -> Any:
    """The ASGI app for a Lambda function, configured from its environment."""
    env = dict(os.environ if environ is None else environ)
    settings = Settings.from_env(env)
    if "LAMBDASETTE_SETTING_MAX_RESPONSE_BYTES" not in env:
        settings.max_response_bytes = LAMBDA_MAX_RESPONSE_BYTES
    data_dir = Path(env.get("LAMBDASETTE_DATA_DIR", "/tmp/lambdasette"))
    tokens_db = env.get("LAMBDASETTE_TOKENS_DB")
    protected = Protected([Path(tokens_db)] if tokens_db else [])
    storage: Storage = LocalStorage([data_dir], protected)
    replica_url = env.get("LAMBDASETTE_REPLICA_URL")
    if replica_url:
        from lambdasette.storage.replicated import ReplicatedStorage

        # The data directory then holds this function's copies: one process per directory,
        # as for `serve --replica-url` (in AWS each container has its own /tmp; locally,
        # handlers given one directory would destroy each other's copies). The storage takes
        # the lock first thing, and holds it for as long as the container's app lives.
        # Without a replica the directory is only a folder of files served as they are.
        # Nothing is restored here: init stays light whatever the size of the space, and each
        # database is restored (the writer: and pre-warmed) by the first request that needs it.
        storage = ReplicatedStorage.configured(replica_url, data_dir, role, settings,
                                               protected=protected)
    metadata_path = env.get("LAMBDASETTE_METADATA")
    ds = Lambdasette(
        storage=storage,
        settings=settings,
        metadata=Metadata.load(Path(metadata_path) if metadata_path else None),
        options=Options(
            cors=parse_bool(env.get("LAMBDASETTE_CORS", "off")),
            public=parse_bool(env.get("LAMBDASETTE_PUBLIC", "off")),
            role=role,
            threaded=False,
            # The read function is the writer's front when it knows the write function.
            forward_writes=role == "read" and bool(env.get("LAMBDASETTE_WRITE_FUNCTION")),
        ),
        tokens=open_store(table=env.get("LAMBDASETTE_TOKENS_TABLE"),
                          path=Path(tokens_db) if tokens_db else None),
        policy=load_policy(env.get("LAMBDASETTE_PERMISSIONS")),
    )
    return LambdaScope(create_app(ds))


# Lambda refuses a synchronous answer over 6 MB (its payload: the API Gateway response as
# JSON, the body escaped inside it); API Gateway then answers an opaque 500.
LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024 - 1024


def within_payload_limit(http: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """`http` (Mangum), with every answer too big for Lambda replaced by a truthful 413 that
    says what to do, and logged: the endpoints keep answers under max_response_bytes, so this
    is the net for whatever still slips through (e.g. a body of escaped characters)."""

    def handler(event: Any, context: Any) -> Any:
        response = http(event, context)
        if not isinstance(response, dict) or "body" not in response:
            return response
        size = len(json.dumps(response))
        if size <= LAMBDA_PAYLOAD_LIMIT:
            return response
        path = (event or {}).get("rawPath", "") if isinstance(event, dict) else ""
        headers = {k: v for k, v in (response.get("headers") or {}).items()
                   if k.lower().startswith("access-control-") or k.lower() in ("vary", "x-request-id")}
        request_id = next((v for k, v in headers.items() if k.lower() == "x-request-id"), None)
        log.error("Answer to %s is %d bytes, over Lambda's 6 MB: answering 413", path, size,
                  extra={"fields": {"request_id": request_id, "path": path, "bytes": size}})
        error = ApiError(413, f"The answer would be {size} bytes, more than AWS Lambda can return "
                              "(6 MB). Ask for less: fewer rows (_size=), fewer columns (_col=), "
                              "or page through with _next.")
        headers["content-type"] = "application/json; charset=utf-8"
        body = error.body()
        if request_id:
            body["request_id"] = request_id
        return {"statusCode": 413, "headers": headers, "isBase64Encoded": False,
                "body": json.dumps(body)}

    return handler


# API Gateway (HTTP API) gives up on a request after 30 s, whatever the function's timeout; a
# request stops waiting for storage this long before its end, for the rest of its work.
GATEWAY_LIMIT_S = 30.0
BUDGET_MARGIN_S = 3.0


def storage_budget(context: Any, *, gateway: bool) -> float | None:
    """How long this invocation may wait for storage (a restore, a first snapshot): the time
    left (`context.get_remaining_time_in_millis()`), at most what API Gateway waits for an
    HTTP request, less a margin. None without a Lambda context."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    seconds = remaining() / 1000
    if gateway:
        seconds = min(seconds, GATEWAY_LIMIT_S)
    return max(0.0, seconds - BUDGET_MARGIN_S)


def within_budget(function: Callable[[Any, Any], Any], *, gateway: bool) -> Callable[[Any, Any], Any]:
    """`function`, with storage waiting no longer than the invocation can afford: past that, a
    restore answers 503 + Retry-After instead of running into a gateway timeout (the restore
    goes on whenever the container runs)."""

    def handler(event: Any, context: Any) -> Any:
        seconds = storage_budget(context, gateway=gateway)
        if seconds is None:
            return function(event, context)
        with time_budget(seconds):
            return function(event, context)

    return handler


# How long a front keeps trying a busy writer (reserved concurrency 1: a second concurrent
# invocation is throttled, and nothing ran) before it answers 429 itself.
WRITER_BUSY_WAIT_S = 10.0


def forwarding(http: Callable[[Any, Any], Any], function_name: str,
               client: Any = None) -> Callable[[Any, Any], Any]:
    """`http` (the read function's app) as the front of the one writer (B10): every POST is
    authenticated, authorized and checked here, every refusal (401 with WWW-Authenticate, 403,
    400, 404, 413) answered here, and only a request that would write is handed on to the
    write function (Lambda Invoke), its event unchanged but for `x-request-id`: the front's
    request id, so that the writer's log line carries the same id as the front's. A flood of
    requests without a valid credential scales out over read functions instead of occupying
    the single writer.

    A throttled invocation ran nothing: it is retried with backoff for up to
    WRITER_BUSY_WAIT_S, then answered 429 (JSON, Retry-After). The invocation itself is never
    retried: after a timeout the write may have been made.

    The Lambda client (boto3, some 100-200 ms of imports) is made on the first forwarded
    request, never at a cold start: most requests to the read function are GETs."""
    made: list[Any] = [client]

    def lambda_client() -> Any:
        if made[0] is None:
            import boto3
            from botocore.config import Config

            # The writer answers within API Gateway's 30 s or not at all; no automatic retries.
            made[0] = boto3.client("lambda", config=Config(read_timeout=31, connect_timeout=5,
                                                           retries={"max_attempts": 0}))
        return made[0]

    def handler(event: Any, context: Any) -> Any:
        response = http(event, context)
        headers = response.get("headers") if isinstance(response, dict) else None
        if not headers or headers.get(FORWARD_HEADER) != "1":
            return response
        base = {k: v for k, v in headers.items() if k != FORWARD_HEADER and k != "content-length"}
        request_id = next((v for k, v in base.items() if k.lower() == REQUEST_ID_HEADER.lower()), None)
        if request_id and isinstance(event, dict):
            sent = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "x-request-id"}
            event = {**event, "headers": {**sent, "x-request-id": request_id}}
        return _invoke_writer(lambda_client(), function_name, event, base)

    return handler


def _invoke_writer(client: Any, function_name: str, event: Any, headers: dict[str, str]) -> Any:
    import time

    def answer(error: ApiError) -> dict[str, Any]:
        return {"statusCode": error.status, "isBase64Encoded": False, "body": json.dumps(error.body()),
                "headers": {**headers, **error.headers, "content-type": "application/json; charset=utf-8"}}

    started, delay = time.monotonic(), 0.05
    while True:
        try:
            response = client.invoke(FunctionName=function_name, Payload=json.dumps(event).encode())
        except client.exceptions.TooManyRequestsException:
            if time.monotonic() - started + delay > WRITER_BUSY_WAIT_S:
                return answer(ApiError(429, "The writer is busy with other writes: retry shortly",
                                       headers={"Retry-After": "1"}))
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
            continue
        except Exception as exc:  # botocore's: unreachable, or no answer in time
            log.error("Forwarding to the write function %s failed: %s", function_name, exc)
            return answer(ApiError(503, "The write function could not be reached, or did not answer in "
                                        "time: the write may or may not have been made (retry with "
                                        "upsert or a primary key to be safe)", headers={"Retry-After": "2"}))
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError") or not isinstance(payload, dict) or "statusCode" not in payload:
            log.error("The write function %s failed: %s", function_name, payload)
            return answer(ApiError(502, "The write function failed"))
        return payload


def handler_for(role: str) -> Any:
    """The Lambda handler: API Gateway events through Mangum; for the read function, when it
    knows the write function (LAMBDASETTE_WRITE_FUNCTION), the writer's front too
    (`forwarding`); for the write function also the direct invocations of `tasks`
    (maintenance, import batches)."""
    from mangum import Mangum

    logs.configure("stdout")  # Lambda sends stdout to the function's log group, line by line
    app = build(role)
    http = within_budget(within_payload_limit(Mangum(app, lifespan="off")), gateway=True)
    writer = os.environ.get("LAMBDASETTE_WRITE_FUNCTION") if role != "write" else None
    if writer:
        http = forwarding(http, writer)
    from lambdasette.handlers import tasks

    ds = app.app.state.lambdasette
    # Tasks are invoked directly, not through API Gateway: only the function's timeout binds.
    task = within_budget(lambda event, context: run_task(ds, event, context, cold=app.cold), gateway=False)

    def handler(event: Any, context: Any) -> Any:
        try:
            if role == "write" and tasks.is_task(event):
                return task(event, context)
            return http(event, context)
        finally:
            app.cold = False

    return handler


def run_task(ds: Lambdasette, event: dict[str, Any], context: Any, *, cold: bool) -> Any:
    """A direct invocation of the write function (maintenance, an import batch), logged as
    one line like a request, with Lambda's request id."""
    from lambdasette.handlers import tasks

    started = time.perf_counter()
    fields: dict[str, Any] = {"request_id": getattr(context, "aws_request_id", None),
                              "task": event.get("lambdasette"), "cold_start": cold}
    try:
        result = tasks.run(ds, event)
    except Exception:
        fields["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
        log.exception("Task %s failed", fields["task"], extra={"fields": fields})
        raise
    fields["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    ok = result.get("ok") if isinstance(result, dict) else None
    fields["ok"] = ok
    log.log(logging.INFO if ok is not False else logging.WARNING, "Task %s", fields["task"],
            extra={"fields": fields})
    return result

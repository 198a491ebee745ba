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
from lambdasette.storage.budget import DEADLINE_HEADER, seconds_until, time_budget
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


def storage_budget(context: Any, *, gateway: bool, until_s: float | None = None) -> float | None:
    """How long this invocation may wait for storage (a restore, a first snapshot): the time
    left (`context.get_remaining_time_in_millis()`), at most what API Gateway waits for an
    HTTP request and at most `until_s` (the front's deadline, for the writer), less a margin.
    None without a Lambda context."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    seconds = remaining() / 1000
    if gateway:
        seconds = min(seconds, GATEWAY_LIMIT_S)
    if until_s is not None:
        seconds = min(seconds, until_s)
    return max(0.0, seconds - BUDGET_MARGIN_S)


def front_deadline_s(event: Any) -> float | None:
    """The seconds until the front stops waiting for this event's answer, from the
    `DEADLINE_HEADER` the front set on it; None if there is none, or none well-formed (then
    the writer's own budget applies). Every well-formed copy counts, the earliest wins: the
    value can only shorten the budget."""
    headers = event.get("headers") if isinstance(event, dict) else None
    if not isinstance(headers, dict):
        return None
    found: list[float] = []
    for name, value in headers.items():
        if isinstance(name, str) and name.lower() == DEADLINE_HEADER and isinstance(value, str):
            seconds = seconds_until(value)
            if seconds is None:
                log.warning("Ignoring a malformed %s header: %.40r", DEADLINE_HEADER, value)
            else:
                found.append(seconds)
    return min(found) if found else None


def within_budget(function: Callable[[Any, Any], Any], *, gateway: bool,
                  front_deadline: bool = False) -> Callable[[Any, Any], Any]:
    """`function`, with storage waiting no longer than the invocation can afford: past that, a
    restore answers 503 + Retry-After instead of running into a gateway timeout (the restore
    goes on whenever the container runs). `front_deadline` (the write function only, which
    only its front invokes): no longer than the front waits either (`DEADLINE_HEADER`). The
    read function never reads that header: there it could only have come from a client."""

    def handler(event: Any, context: Any) -> Any:
        until = front_deadline_s(event) if front_deadline else None
        seconds = storage_budget(context, gateway=gateway, until_s=until)
        if seconds is None:
            return function(event, context)
        with time_budget(seconds):
            return function(event, context)

    return handler


# How long a front keeps trying a busy writer (reserved concurrency 1: a second concurrent
# invocation is throttled, and nothing ran) before it answers 429 itself; never past
# `WRITER_MIN_S` before the front's own deadline.
WRITER_BUSY_WAIT_S = 10.0
# The front answers (a JSON 503 or 429) this long before its own end or API Gateway's 30 s,
# whichever comes first: time to build and return the answer, and for the payload of the
# invocation to go out, so that the client never gets the gateway's own non-JSON 503/504.
FRONT_MARGIN_S = 1.5
# Connecting to the Lambda API within the region takes milliseconds; a pooled connection none.
INVOKE_CONNECT_TIMEOUT_S = 2.0
# The least time worth handing a write on with: the connection, and a second for the writer.
WRITER_MIN_S = INVOKE_CONNECT_TIMEOUT_S + 1.0


def front_until(event: Any, context: Any) -> float:
    """The monotonic time by which the front must have answered: `FRONT_MARGIN_S` before the
    earliest of the function's own end (its context), API Gateway's 30 s counted from when it
    received the request (`requestContext.timeEpoch`, when plausible: the gateway's clock, and
    an init before the handler, count there), and 30 s from now (the gateway started earlier)."""
    now, epoch = time.monotonic(), time.time()
    ends = [now + GATEWAY_LIMIT_S]
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        ends.append(now + remaining() / 1000)
    received = (event.get("requestContext") or {}).get("timeEpoch") if isinstance(event, dict) else None
    if isinstance(received, int) and not isinstance(received, bool):
        waited = epoch - received / 1000
        if 0 <= waited < GATEWAY_LIMIT_S:  # else not a live gateway's (a test's, a replay's)
            ends.append(now + GATEWAY_LIMIT_S - waited)
    return min(ends) - FRONT_MARGIN_S


def invoke_read_timeout(left: float) -> int:
    """The read timeout for an invocation with `left` seconds to go (at least `WRITER_MIN_S`):
    whole seconds (a client is made per value), so that connecting and reading together end
    within `left`."""
    return max(1, int(left - INVOKE_CONNECT_TIMEOUT_S))


def forwarding(http: Callable[[Any, Any], Any], function_name: str,
               client_for: Callable[[int], Any] | None = None) -> Callable[[Any, Any], Any]:
    """`http` (the read function's app) as the front of the one writer (B10): every POST is
    authenticated, authorized and checked here, every refusal (401 with WWW-Authenticate, 403,
    400, 404, 413) answered here, and only a request that would write is handed on to the
    write function (Lambda Invoke), its event unchanged but for two headers the front sets,
    dropping any copy the client sent: `x-request-id`, the front's request id, so that the
    writer's log line carries the same id as the front's, and `DEADLINE_HEADER`, when the
    front stops waiting, so that the writer stops waiting for storage before then. A flood of
    requests without a valid credential scales out over read functions instead of occupying
    the single writer.

    Everything fits in the front's time (`front_until`): a throttled invocation ran nothing
    and is retried with backoff for up to WRITER_BUSY_WAIT_S while at least WRITER_MIN_S is
    left, then answered 429 (JSON, Retry-After); the invocation's own timeouts end by the
    front's deadline, so that a writer that does not answer in time gets a JSON 503, not the
    gateway's error. The invocation itself is never retried: after a timeout the write may
    have been made.

    `client_for(read_timeout)`: the Lambda client to invoke with. By default boto3's (some
    100-200 ms of imports), one per read timeout, made on the first forwarded request that
    needs it, never at a cold start: most requests to the read function are GETs."""
    made: dict[int, Any] = {}

    def lambda_client(read_timeout: int) -> Any:
        if read_timeout not in made:
            import boto3
            from botocore.config import Config

            # No automatic retries: a retried invocation could write twice.
            made[read_timeout] = boto3.client("lambda", config=Config(
                read_timeout=read_timeout, connect_timeout=INVOKE_CONNECT_TIMEOUT_S,
                retries={"max_attempts": 0}))
        return made[read_timeout]

    clients = client_for or lambda_client

    def handler(event: Any, context: Any) -> Any:
        response = http(event, context)
        headers = response.get("headers") if isinstance(response, dict) else None
        if not headers or headers.get(FORWARD_HEADER) != "1":
            return response
        until = front_until(event, context)  # after the front's own work, which counts too
        base = {k: v for k, v in headers.items() if k != FORWARD_HEADER and k != "content-length"}
        request_id = next((v for k, v in base.items() if k.lower() == REQUEST_ID_HEADER.lower()), None)
        sent: dict[str, Any] = {}
        if isinstance(event, dict):
            sent = {k: v for k, v in (event.get("headers") or {}).items()
                    if k.lower() not in ("x-request-id", DEADLINE_HEADER)}
            if request_id:
                sent["x-request-id"] = request_id
        return _invoke_writer(clients, function_name, event, sent, base, until)

    return handler


def _invoke_writer(clients: Callable[[int], Any], function_name: str, event: Any,
                   sent: dict[str, Any], headers: dict[str, str], until: float) -> Any:
    """The writer's answer to `event` (with the headers `sent`), or the front's JSON error
    (with `headers`) by the monotonic time `until`."""
    from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

    def answer(error: ApiError) -> dict[str, Any]:
        return {"statusCode": error.status, "isBase64Encoded": False, "body": json.dumps(error.body()),
                "headers": {**headers, **error.headers, "content-type": "application/json; charset=utf-8"}}

    def not_written(why: str) -> dict[str, Any]:
        return answer(ApiError(503, f"{why}: nothing was written, retry", headers={"Retry-After": "2"}))

    def unknown(why: str) -> dict[str, Any]:
        return answer(ApiError(503, f"{why}: the write may or may not have been made (retry with "
                                    "upsert or a primary key to be safe)", headers={"Retry-After": "2"}))

    started, delay = time.monotonic(), 0.05
    busy_until = min(started + WRITER_BUSY_WAIT_S, until - WRITER_MIN_S)
    while True:
        left = until - time.monotonic()
        if left < WRITER_MIN_S:
            # Only before the first try: a throttled retry stops at busy_until, earlier.
            log.warning("No time left to hand a write to %s (%.1f s)", function_name, left)
            return not_written("This request has no time left to reach the writer")
        read_timeout = invoke_read_timeout(left)
        # When the front stops waiting, in the writer's terms: it stops waiting for storage before.
        stop = time.time() + INVOKE_CONNECT_TIMEOUT_S + read_timeout
        payload = event if not isinstance(event, dict) else {
            **event, "headers": {**sent, DEADLINE_HEADER: str(int(stop * 1000))}}
        try:
            response = clients(read_timeout).invoke(FunctionName=function_name,
                                                    Payload=json.dumps(payload).encode())
        except ClientError as exc:  # Lambda answered with an error instead of the writer's answer
            error = exc.response.get("Error", {})
            code = error.get("Code", "")
            if code == "TooManyRequestsException":  # throttled: nothing ran
                if time.monotonic() + delay > busy_until:
                    return answer(ApiError(429, "The writer is busy with other writes: retry shortly",
                                           headers={"Retry-After": "1"}))
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            log.error("Lambda refused to invoke the write function %s: %s", function_name, exc)
            if code in ("RequestTooLargeException", "SerializedRequestEntityTooLargeException"):
                return answer(ApiError(413, "The request is too large to hand to the writer (AWS "
                                            "Lambda takes at most 6 MB, the body base64-encoded): "
                                            "send a smaller body"))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "ServiceException" or status == 500:
                # Lambda's own internal error: whether the writer ran is unknown.
                return unknown("AWS Lambda failed while invoking the write function")
            # Refused before the writer ran: not found, access denied, its environment failed...
            return not_written("The write function could not be invoked")
        except (EndpointConnectionError, ConnectTimeoutError) as exc:  # never connected: nothing sent
            log.error("Could not connect to invoke the write function %s: %s", function_name, exc)
            return not_written("The write function could not be reached")
        except Exception as exc:  # botocore's read timeout or dropped connection: sent, answer unknown
            log.error("Forwarding to the write function %s failed: %s", function_name, exc)
            return unknown("The write function did not answer in time, or the connection to it was lost")
        answered = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError") or not isinstance(answered, dict) or "statusCode" not in answered:
            log.error("The write function %s failed: %s", function_name, answered)
            return answer(ApiError(502, "The write function failed"))
        return answered


def handler_for(role: str) -> Any:
    """The Lambda handler: API Gateway events through Mangum; for the read function, when it
    knows the write function (LAMBDASETTE_WRITE_FUNCTION), the writer's front too
    (`forwarding`); for the write function also the direct invocations of `tasks`
    (maintenance, import batches)."""
    from mangum import Mangum

    logs.configure("stdout")  # Lambda sends stdout to the function's log group, line by line
    app = build(role)
    ds = app.app.state.lambdasette
    http = within_budget(within_payload_limit(Mangum(app, lifespan="off")), gateway=True,
                         front_deadline=role == "write")
    # Decided once, by the app: it answers a placeholder for each write exactly when it is a
    # front, and only the wrapper turns the placeholder into the writer's answer.
    if ds.options.forward_writes:
        http = forwarding(http, os.environ["LAMBDASETTE_WRITE_FUNCTION"])
    from lambdasette.handlers import tasks

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

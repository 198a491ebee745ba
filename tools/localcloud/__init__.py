"""`scripts/local-cloud`: the deployed shape of template.yaml on one machine, without Docker.

- moto's server stands in for S3 and DynamoDB; the bucket and the tokens table are created
  from template.yaml's own resource definitions.
- The real handlers run in worker processes, each with its own data directory (its own
  `/tmp`) and the environment the template gives the functions: the read function in a
  pool of workers, the write function in exactly one (reserved concurrency 1), one event at
  a time per worker - as Lambda runs them.
- An HTTP gateway turns each request into the API Gateway HTTP API payload 2.0 event AWS
  would send (raw path and query string, comma-joined repeated parameters, cookies, base64
  bodies), routes it as the template's events do (GET/HEAD/OPTIONS to read, POST to write)
  and turns the handler's answer back into HTTP, with API Gateway's limits: 10 MB request
  bodies, 6 MB responses (a larger one is a 500), 30 s (then a 503).
- A second port speaks Lambda's Invoke API, so the import function's boto3 `invoke` of the
  write function works unchanged; `POST /-/local-cloud/schedules/<Event>` on the gateway fires
  one of the template's schedules.

Where it differs from AWS: a second concurrent write waits for the writer instead of being
throttled (429); workers are not frozen between requests; no IAM; `sam local` would run the
handlers in the Lambda container image instead of this Python.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import queue
import secrets
import shutil
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

import yaml

ROOT = Path(__file__).resolve().parents[2]
MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway HTTP API payload limit
MAX_RESPONSE_BYTES = 6 * 1024 * 1024  # Lambda's synchronous response limit
GATEWAY_TIMEOUT = 30.0
REGION = "us-east-1"


# -- template.yaml ---------------------------------------------------------------------------------

class _CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"Fn::" + suffix if suffix not in ("Ref",) else "Ref": value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path | None = None) -> dict[str, Any]:
    return yaml.load((path or ROOT / "template.yaml").read_text(), Loader=_CfnLoader)


def resolve(value: Any, names: dict[str, str]) -> Any:
    """!Ref, !Sub and !GetAtt against `names` (parameters, resource names, pseudo parameters)."""
    if isinstance(value, dict) and len(value) == 1:
        (key, inner), = value.items()
        if key == "Ref":
            return names[inner]
        if key == "Fn::Sub":
            text = inner if isinstance(inner, str) else inner[0]
            for name, replacement in names.items():
                text = text.replace("${" + name + "}", str(replacement))
            return text
        if key == "Fn::GetAtt":
            target = inner if isinstance(inner, str) else ".".join(inner)
            return names.get(target, f"arn:aws:local:::{target}")
    if isinstance(value, dict):
        return {k: resolve(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, names) for v in value]
    return value


def function_environment(template: dict[str, Any], function: str, names: dict[str, str]) -> dict[str, str]:
    env = dict(template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
    props = template["Resources"][function]["Properties"]
    env.update(props.get("Environment", {}).get("Variables", {}))
    return {k: str(resolve(v, names)) for k, v in env.items()}


def create_tokens_table(client: Any, name: str, template: dict[str, Any] | None = None) -> str:
    """The TokensTable exactly as template.yaml deploys it: keys, index and TTL."""
    props = (template or load_template())["Resources"]["TokensTable"]["Properties"]
    client.create_table(TableName=name, BillingMode=props["BillingMode"],
                        AttributeDefinitions=props["AttributeDefinitions"], KeySchema=props["KeySchema"],
                        GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"])
    client.update_time_to_live(TableName=name, TimeToLiveSpecification=props["TimeToLiveSpecification"])
    return name


def routes(template: dict[str, Any]) -> dict[str, str]:
    """HTTP method -> function name, from the functions' HttpApi events."""
    table: dict[str, str] = {}
    for name, resource in template["Resources"].items():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event.get("Type") == "HttpApi":
                table[event["Properties"]["Method"].upper()] = name
    return table


def schedules(template: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Schedule event name -> (function, input event)."""
    found = {}
    for name, resource in template["Resources"].items():
        for event_name, event in resource.get("Properties", {}).get("Events", {}).items():
            if event.get("Type") in ("ScheduleV2", "Schedule"):
                found[event_name] = (name, json.loads(event["Properties"].get("Input") or "{}"))
    return found


# -- worker processes ----------------------------------------------------------------------------

class LambdaContext:
    def __init__(self, function_name: str, timeout: float) -> None:
        self.function_name = function_name
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:000000000000:function:{function_name}"
        self.memory_limit_in_mb = "1769"
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return int(max(0.0, self._deadline - time.monotonic()) * 1000)


def worker_main(handler_file: str, function_name: str, env: dict[str, str], timeout: float,
                conn: Connection) -> None:
    """A Lambda execution environment: init once (module import), then one event at a time."""
    os.environ.update(env)
    sys.path.insert(0, str(Path(handler_file).parent))
    try:
        import importlib.util

        spec = importlib.util.spec_from_file_location(f"handler_{function_name}", handler_file)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        conn.send({"ready": True})
    except BaseException:
        conn.send({"ready": False, "error": traceback.format_exc()})
        return
    while True:
        try:
            event = conn.recv()
        except EOFError:
            return
        try:
            result = module.handler(event, LambdaContext(function_name, timeout))
            conn.send({"ok": True, "result": result})
        except BaseException as exc:
            conn.send({"ok": False, "error": {"errorMessage": str(exc), "errorType": type(exc).__name__,
                                               "stackTrace": traceback.format_exc().splitlines()}})


@dataclass
class Worker:
    function: str
    handler_file: str
    env: dict[str, str]
    timeout: float
    process: Any = None
    conn: Connection | None = None

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self.process = context.Process(target=worker_main, daemon=True,
                                       args=(self.handler_file, self.function, self.env, self.timeout, child))
        self.process.start()
        self.conn = parent
        if not parent.poll(600):
            raise RuntimeError(f"{self.function} did not finish its init")
        status = parent.recv()
        if not status.get("ready"):
            raise RuntimeError(f"{self.function} failed its init:\n{status.get('error')}")

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """One event; a timeout kills the environment, as Lambda does."""
        assert self.conn is not None
        self.conn.send(event)
        if not self.conn.poll(self.timeout):
            self.stop()
            self.start()
            return {"ok": False, "timeout": True,
                    "error": {"errorMessage": f"Task timed out after {self.timeout:.2f} seconds"}}
        return self.conn.recv()

    def stop(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.process.terminate()
            self.process.join(10)


@dataclass
class Function:
    """A Lambda function: its workers and how many events it may run at once."""

    name: str
    workers: list[Worker]
    idle: queue.Queue[Worker] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        for worker in self.workers:
            self.idle.put(worker)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        worker = self.idle.get()  # a concurrency limit: wait for a free environment
        try:
            return worker.invoke(event)
        finally:
            self.idle.put(worker)


# -- API Gateway HTTP API (payload format 2.0) --------------------------------------------------

TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded", "application/xml",
              "application/javascript")


def http_event(scope: dict[str, Any], body: bytes, api_id: str, stage_host: str) -> dict[str, Any]:
    method = scope["method"]
    raw_path = scope.get("raw_path", scope["path"].encode()).decode("latin-1").split("?", 1)[0]
    raw_query = scope.get("query_string", b"").decode("latin-1")
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for key, value in scope["headers"]:
        name, text = key.decode("latin-1").lower(), value.decode("latin-1")
        if name == "cookie":
            cookies += [c.strip() for c in text.split(";") if c.strip()]
            continue
        headers[name] = f"{headers[name]},{text}" if name in headers else text
    # API Gateway adds these; the scheme and port are this gateway's (plain HTTP here).
    client_ip = (scope.get("client") or ("127.0.0.1", 0))[0]
    forwarded = headers.get("x-forwarded-for")
    headers["x-forwarded-for"] = f"{forwarded}, {client_ip}" if forwarded else client_ip
    headers["x-forwarded-proto"] = scope.get("scheme", "http")
    headers["x-forwarded-port"] = str((scope.get("server") or ("", 80))[1])
    query: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    route = f"{method} /{{proxy+}}" if raw_path != "/" else f"{method} /"
    content_type = headers.get("content-type", "")
    textual = not body or content_type.startswith(TEXT_TYPES)
    if textual:
        try:
            payload, encoded = body.decode("utf-8"), False
        except UnicodeDecodeError:
            payload, encoded = base64.b64encode(body).decode("ascii"), True
    else:
        payload, encoded = base64.b64encode(body).decode("ascii"), True
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000", "apiId": api_id, "domainName": stage_host,
            "domainPrefix": api_id,
            "http": {"method": method, "path": unquote(raw_path), "protocol": "HTTP/1.1",
                     "sourceIp": (scope.get("client") or ("127.0.0.1", 0))[0],
                     "userAgent": headers.get("user-agent", "")},
            "requestId": secrets.token_hex(8), "routeKey": route, "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": encoded,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if raw_path != "/":
        event["pathParameters"] = {"proxy": unquote(raw_path.lstrip("/"))}
    if body:
        event["body"] = payload
    return event


def http_response(result: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """A payload 2.0 handler result as HTTP, as API Gateway does it."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # A bare value: API Gateway answers 200 with it as JSON.
        return 200, [(b"content-type", b"application/json")], json.dumps(result).encode()
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    headers = [(k.lower().encode("latin-1"), str(v).encode("latin-1"))
               for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers += [(name.lower().encode("latin-1"), str(v).encode("latin-1")) for v in values]
    for cookie in result.get("cookies") or []:
        headers.append((b"set-cookie", cookie.encode("latin-1")))
    return int(result["statusCode"]), headers, data


def aws_error(status: int, message: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return status, [(b"content-type", b"application/json")], json.dumps({"message": message}).encode()


async def read_body(receive: Any, limit: int) -> bytes | None:
    """The whole ASGI request body; None once it passes `limit` bytes (0: no limit)."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if limit and len(body) > limit:
            return None
        if not message.get("more_body"):
            return body


class Gateway:
    def __init__(self, template: dict[str, Any], functions: dict[str, Function]) -> None:
        self.routes = routes(template)
        self.schedules = schedules(template)
        self.functions = functions
        self.api_id = "local"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive, MAX_REQUEST_BYTES)
        if body is None:
            status, headers, data = aws_error(413, "Request Entity Too Large")
            return await self._send(send, status, headers, data)
        status, headers, data = await asyncio.get_running_loop().run_in_executor(
            None, self.handle, scope, body)
        await self._send(send, status, headers, data)

    @staticmethod
    async def _send(send: Any, status: int, headers: list[tuple[bytes, bytes]], data: bytes) -> None:
        headers = [h for h in headers if h[0] != b"content-length"]
        headers.append((b"content-length", str(len(data)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    def handle(self, scope: dict[str, Any], body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        path = scope["path"]
        if path.startswith("/-/local-cloud/schedules/") and scope["method"] == "POST":
            return self.fire(path.rsplit("/", 1)[1])
        function = self.routes.get(scope["method"])
        if function is None:
            return aws_error(404, "Not Found")
        host = dict(scope["headers"]).get(b"host", b"localhost").decode("latin-1")
        event = http_event(scope, body, self.api_id, host)
        started = time.monotonic()
        outcome = self.functions[function].invoke(event)
        if outcome.get("timeout") or time.monotonic() - started > GATEWAY_TIMEOUT:
            return aws_error(503, "Service Unavailable")
        if not outcome.get("ok"):
            return aws_error(500, "Internal Server Error")
        result = outcome["result"]
        if len(json.dumps(result)) > MAX_RESPONSE_BYTES:
            return aws_error(500, "Internal Server Error")  # Lambda refuses > 6 MB responses
        return http_response(result)

    def fire(self, event_name: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        if event_name not in self.schedules:
            return aws_error(404, f"No schedule named {event_name}")
        function, payload = self.schedules[event_name]
        if function not in self.functions:
            return aws_error(404, f"{function} is not running")
        outcome = self.functions[function].invoke(payload)
        return 200, [(b"content-type", b"application/json")], json.dumps(outcome).encode()


class LambdaApi:
    """Lambda's Invoke API (`POST /2015-03-31/functions/<name>/invocations`) for boto3."""

    def __init__(self, functions: dict[str, Function], physical: dict[str, str]) -> None:
        self.functions = functions
        self.by_physical = {v: k for k, v in physical.items()}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive, 0) or b""
        parts = scope["path"].strip("/").split("/")
        name = parts[2] if len(parts) == 4 and parts[3] == "invocations" else ""
        logical = self.by_physical.get(name.rsplit(":", 1)[-1])
        if logical is None:
            data = json.dumps({"Type": "User", "message": f"Function not found: {name}"}).encode()
            return await Gateway._send(send, 404, [(b"content-type", b"application/json")], data)
        event = json.loads(body or b"{}")
        function = self.functions[logical]
        outcome = await asyncio.get_running_loop().run_in_executor(None, function.invoke, event)
        headers = [(b"content-type", b"application/json"), (b"x-amz-executed-version", b"$LATEST")]
        if outcome.get("ok"):
            data = json.dumps(outcome["result"]).encode()
        else:
            headers.append((b"x-amz-function-error", b"Unhandled"))
            data = json.dumps(outcome["error"]).encode()
        await Gateway._send(send, 200, headers, data)


# -- putting it together -------------------------------------------------------------------------

HANDLER_FILES = {"ReadFunction": "functions/read/app.py", "WriteFunction": "functions/write/app.py",
                 "ImportFunction": "functions/importer/app.py"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="local-cloud", description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="SQLite files to push as the first databases")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--lambda-port", type=int, default=0, help="port of the Lambda Invoke API")
    parser.add_argument("--state-dir", type=Path, default=Path(".lambdasette/local-cloud"))
    parser.add_argument("--read-workers", type=int, default=2)
    parser.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE",
                        help="template parameter override, e.g. Cors=on PublicReads=on")
    parser.add_argument("--setting", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="a setting, passed to the functions as LAMBDASETTE_SETTING_<NAME>")
    parser.add_argument("--root-token", action="store_true", help="print a new root token")
    options = parser.parse_args(argv)

    import logging

    import boto3
    import uvicorn
    from moto.server import ThreadedMotoServer

    from lambdasette.auth import tokens
    from lambdasette.auth.store_dynamodb import DynamoDBTokenStore
    from lambdasette.storage import publish
    from lambdasette.storage.litestream import Replica

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    template = load_template()
    state = options.state_dir.resolve()
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    credentials = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                   "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}
    os.environ.update(credentials)
    os.environ.pop("AWS_CA_BUNDLE", None)

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    moto_host, moto_port = moto.get_host_and_port()
    endpoint = f"http://{moto_host}:{moto_port}"
    stack = "lambdasette-local"
    bucket, table = f"{stack}-data", f"{stack}-tokens"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    s3.create_bucket(Bucket=bucket)
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    create_tokens_table(dynamodb, table, template)

    lambda_port = options.lambda_port or _free_port()
    physical = {name: f"{stack}-{name}" for name in HANDLER_FILES}
    names: dict[str, str] = {"AWS::Region": REGION, "AWS::URLSuffix": "amazonaws.com",
                             "AWS::AccountId": "000000000000", "AWS::StackName": stack,
                             "DataBucket": bucket, "TokensTable": table, "HttpApi": "local",
                             **physical}
    for name, parameter in template.get("Parameters", {}).items():
        names[name] = str(parameter.get("Default", ""))
    for override in options.parameter:
        key, _, value = override.partition("=")
        if key not in template.get("Parameters", {}):
            parser.error(f"unknown template parameter {key}")
        names[key] = value
    # What the S3 and DynamoDB clients (boto3, and litestream via the replica URL) need to
    # reach moto instead of AWS.
    service_env = {**credentials, "AWS_ENDPOINT_URL_DYNAMODB": endpoint, "AWS_ENDPOINT_URL_S3": endpoint,
                   "AWS_ENDPOINT_URL_LAMBDA": f"http://127.0.0.1:{lambda_port}"}
    replica_url = f"s3://{bucket}/databases?endpoint={endpoint}&region={REGION}"
    replica = Replica(replica_url)
    for path in options.files:
        publish.push(replica, path, path.stem)

    functions: dict[str, Function] = {}
    for name, handler in HANDLER_FILES.items():
        if name not in template["Resources"] or not (ROOT / handler).exists():
            continue
        props = template["Resources"][name]["Properties"]
        env = {**function_environment(template, name, names), **service_env}
        if "LAMBDASETTE_REPLICA_URL" in env:
            env["LAMBDASETTE_REPLICA_URL"] = replica_url
        for setting, value in options.setting:
            env[f"LAMBDASETTE_SETTING_{setting.upper()}"] = value
        timeout = float(props.get("Timeout") or template["Globals"]["Function"].get("Timeout", 3))
        count = 1 if props.get("ReservedConcurrentExecutions") == 1 or name != "ReadFunction" \
            else options.read_workers
        workers = []
        for i in range(count):
            worker_env = {**env, "LAMBDASETTE_DATA_DIR": str(state / f"{name}-{i}")}
            worker = Worker(name, str(ROOT / handler), worker_env, timeout)
            workers.append(worker)
        functions[name] = Function(name, workers)
    # The writer first: readers restore what it pre-warmed.
    for name in ("WriteFunction", "ReadFunction", "ImportFunction"):
        for worker in functions.get(name, Function(name, [])).workers:
            worker.start()

    env_file = state / "local-cloud.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in {**service_env, "LAMBDASETTE_TOKENS_TABLE": table,
                                                           "LAMBDASETTE_REPLICA_URL": replica_url}.items()))
    if options.root_token:
        store = DynamoDBTokenStore(table, client=dynamodb)
        print(f"Root token: {tokens.create(store, 'root')[0]}", flush=True)
    print(f"local-cloud: API on http://{options.host}:{options.port}/ (S3 and DynamoDB: moto at {endpoint}); "
          f"environment for the CLI in {env_file}", flush=True)

    lambda_server = uvicorn.Server(uvicorn.Config(LambdaApi(functions, physical), host="127.0.0.1",
                                                  port=lambda_port, log_level="warning"))
    threading.Thread(target=lambda_server.run, daemon=True).start()
    try:
        uvicorn.run(Gateway(template, functions), host=options.host, port=options.port, log_level="warning")
    finally:
        lambda_server.should_exit = True
        for function in functions.values():
            for worker in function.workers:
                worker.stop()
        moto.stop()
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


"""`scripts/local-cloud`: the deployed shape of template.yaml on one machine, without Docker.

- moto's server stands in for S3 and DynamoDB; the bucket and the tokens table are created
  from template.yaml's own resource definitions.
- The real handlers run in worker processes, each with its own data directory (its own
  `/tmp`) and the environment the template gives the functions: the read function in a
  pool of workers, the write function in exactly one (reserved concurrency 1), one event at
  a time per worker - as Lambda runs them.
- An HTTP gateway turns each request into the API Gateway HTTP API payload 2.0 event AWS
  would send (raw path and query string, comma-joined repeated parameters, cookies, base64
  bodies), routes it as the template's events do (every method to the read function, which
  is the writer's front: it invokes the write function for a POST that would write) and
  turns the handler's answer back into HTTP, with API Gateway's limits: 10 MB request
  bodies, 6 MB responses (a larger one is a 500), 30 s (then a 503). (API Gateway's route
  throttling on POSTs is not emulated.)
- A second port speaks Lambda's Invoke API, so the read function's and the import function's
  boto3 `invoke` of the write function work unchanged; `POST /-/local-cloud/schedules/<Event>`
  on the gateway fires one of the template's schedules (`Maintenance`: Litestream's upkeep and
  the restore drill, whose report is then `GET /-/restore-drill.json`).
- For `sam local invoke/start-api`: `<state-dir>/sam-env-vars.json` (`--env-vars`) gives each
  function the variables template.yaml declares, pointed at this cloud as a container reaches it
  (host.docker.internal); `--services-only` leaves the functions to `sam local`.

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
import shlex
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
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return int(max(0.0, self._deadline - time.monotonic()) * 1000)


def worker_main(handler_file: str, function_name: str, env: dict[str, str], timeout: float,
                conn: Connection, attribute: str = "handler", isolated: bool = False) -> None:
    """A Lambda execution environment: init once (module import), then one event at a time.
    `isolated`: none of this machine's AWS_* variables (endpoints, credentials) leak in, as a
    container under `sam local` gets only what SAM gives it."""
    if isolated:
        for name in [n for n in os.environ if n.startswith("AWS_")]:
            del os.environ[name]
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
            result = getattr(module, attribute)(event, LambdaContext(function_name, timeout))
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
    attribute: str = "handler"  # the function's Handler: module file + attribute
    isolated: bool = False
    process: Any = None
    conn: Connection | None = None

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self.process = context.Process(target=worker_main, daemon=True,
                                       args=(self.handler_file, self.function, self.env, self.timeout, child,
                                             self.attribute, self.isolated))
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
    invocations: int = 0  # how many events it was given (tests: what reached the writer)

    def __post_init__(self) -> None:
        for worker in self.workers:
            self.idle.put(worker)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        self.invocations += 1
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

STACK = "lambdasette-local"
# How a container reaches this machine: Docker Desktop resolves this name itself; Docker Engine
# on Linux needs it mapped (`sam local ... --add-host host.docker.internal:host-gateway`).
CONTAINER_HOST = "host.docker.internal"
ENV_FILE = "local-cloud.env"
SAM_ENV_FILE = "sam-env-vars.json"
LOOPBACK = "127.0.0.1"


def function_names(template: dict[str, Any]) -> list[str]:
    return [name for name, resource in template["Resources"].items()
            if resource.get("Type") == "AWS::Serverless::Function"]


def function_code(template: dict[str, Any], function: str) -> tuple[Path, str]:
    """The handler's file and attribute: `CodeUri` + `Handler`, as Lambda and `sam local` find them."""
    props = template["Resources"][function]["Properties"]
    module, _, attribute = props["Handler"].rpartition(".")
    return ROOT / props["CodeUri"] / f"{module.replace('.', '/')}.py", attribute


def declared_variables(template: dict[str, Any], function: str) -> list[str]:
    """The environment variables template.yaml gives `function` (Globals and its own). They are
    the only ones `sam local --env-vars` can set: SAM overrides declared variables and drops
    every other name (samcli/local/lambdafn/env_vars.py, EnvironmentVariables.resolve)."""
    found = dict(template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
    found.update(template["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {}))
    return list(found)


class LocalCloud:
    """The deployed shape, started and stopped as one thing (`scripts/local-cloud` and tests):
    moto's server with template.yaml's bucket and tokens table, the databases pushed to the
    replica, each function's environment, and - unless `functions` is empty (services only,
    for `sam local`) - the real handlers in worker processes behind a Lambda Invoke API."""

    def __init__(self, state_dir: Path, files: list[Path] | None = None, *,
                 parameters: dict[str, str] | None = None, settings: list[tuple[str, str]] | None = None,
                 read_workers: int = 2, service_host: str = LOOPBACK, lambda_port: int = 0,
                 functions: list[str] | None = None, extra_env: dict[str, dict[str, str]] | None = None,
                 template: dict[str, Any] | None = None, stack: str = STACK) -> None:
        self.template = template or load_template()
        unknown = set(parameters or {}) - set(self.template.get("Parameters", {}))
        if unknown:
            raise ValueError(f"unknown template parameter {', '.join(sorted(unknown))}")
        self.state = state_dir.resolve()
        self.files = list(files or [])
        self.parameters = dict(parameters or {})
        self.settings = list(settings or [])
        self.read_workers = read_workers
        # Where moto and the Lambda API listen. Containers on Docker Engine's bridge network
        # reach the host on the bridge, not on its loopback: they need 0.0.0.0 or the bridge IP.
        self.service_host = service_host
        self.lambda_port = lambda_port
        self.running = function_names(self.template) if functions is None else list(functions)
        self.extra_env = extra_env or {}
        # moto keeps one set of resources per process: two clouds in one process need two stacks.
        self.stack = stack
        self.bucket, self.table = f"{stack}-data", f"{stack}-tokens"
        self.physical = {name: f"{stack}-{name}" for name in function_names(self.template)}
        self.functions: dict[str, Function] = {}
        self.endpoint = self.lambda_endpoint = self.replica_url = ""
        self._moto: Any = None
        self._lambda_server: Any = None

    # The endpoints as this machine's processes reach them (0.0.0.0 is not an address to call).
    def _host_view(self, port: int) -> str:
        host = LOOPBACK if self.service_host in ("0.0.0.0", "::", "") else self.service_host
        return f"http://{host}:{port}"

    @property
    def credentials(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}

    @property
    def service_env(self) -> dict[str, str]:
        """What boto3 (and litestream, through the replica URL) needs to reach this cloud instead of AWS."""
        env = {**self.credentials, "AWS_ENDPOINT_URL_DYNAMODB": self.endpoint,
               "AWS_ENDPOINT_URL_S3": self.endpoint}
        if self.lambda_endpoint:
            env["AWS_ENDPOINT_URL_LAMBDA"] = self.lambda_endpoint
        return env

    def names(self) -> dict[str, str]:
        """What !Ref, !Sub and !GetAtt resolve to here: parameters, resources, pseudo parameters."""
        names: dict[str, str] = {"AWS::Region": REGION, "AWS::URLSuffix": "amazonaws.com",
                                 "AWS::AccountId": "000000000000", "AWS::StackName": self.stack,
                                 "DataBucket": self.bucket, "TokensTable": self.table, "HttpApi": "local",
                                 **self.physical}
        for name, parameter in self.template.get("Parameters", {}).items():
            names[name] = str(self.parameters.get(name, parameter.get("Default", "")))
        return names

    def function_env(self, function: str) -> dict[str, str]:
        """The function's environment as this machine's processes see it (the template's
        variables pointed at this cloud, plus the service endpoints), before each worker gets its
        own data directory."""
        env = {**function_environment(self.template, function, self.names()), **self.service_env}
        if "LAMBDASETTE_REPLICA_URL" in env:
            env["LAMBDASETTE_REPLICA_URL"] = self.replica_url
        for setting, value in self.settings:
            env[f"LAMBDASETTE_SETTING_{setting.upper()}"] = value
        env.update(self.extra_env.get(function, {}))
        return env

    def sam_env_vars(self, container_host: str = CONTAINER_HOST) -> dict[str, dict[str, str]]:
        """`sam local invoke/start-api --env-vars`: function logical id -> its variables, exactly
        the ones template.yaml declares for it, with every endpoint as a container reaches this
        machine. The data directory stays the template's (/tmp in the container)."""
        seen_from_container = {self._host_view(port): f"http://{container_host}:{port}"
                               for port in self._ports()}
        result = {}
        for function in function_names(self.template):
            env = self.function_env(function)
            variables = {}
            for name in declared_variables(self.template, function):
                value = env[name]
                for ours, theirs in seen_from_container.items():
                    value = value.replace(ours, theirs)
                variables[name] = value
            result[function] = variables
        return result

    def dropped_by_sam(self, function: str) -> list[str]:
        """Variables this cloud gives `function` that `sam local` cannot pass because
        template.yaml does not declare them: the DynamoDB endpoint (every function opens the
        token store), the Lambda one where the writer is invoked, and settings beyond the
        template's. (The S3 endpoint travels in the replica URL; SAM sets credentials itself.)"""
        declared = set(declared_variables(self.template, function))
        wanted = ["AWS_ENDPOINT_URL_DYNAMODB"]
        if "LAMBDASETTE_WRITE_FUNCTION" in declared:
            wanted.append("AWS_ENDPOINT_URL_LAMBDA")
        wanted += [name for name in self.function_env(function) if name.startswith("LAMBDASETTE_")]
        return [name for name in wanted if name not in declared]

    def _ports(self) -> list[int]:
        urls = [self.endpoint, self.lambda_endpoint]
        return [int(url.rsplit(":", 1)[1]) for url in urls if url]

    def start(self) -> None:
        import logging

        import boto3
        from moto.server import ThreadedMotoServer

        from lambdasette.storage import publish
        from lambdasette.storage.litestream import Replica

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        shutil.rmtree(self.state, ignore_errors=True)
        self.state.mkdir(parents=True)
        os.environ.update(self.credentials)
        os.environ.pop("AWS_CA_BUNDLE", None)
        self._moto = ThreadedMotoServer(ip_address=self.service_host, port=0, verbose=False)
        self._moto.start()
        self.endpoint = self._host_view(self._moto.get_host_and_port()[1])
        s3 = boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION)
        s3.create_bucket(Bucket=self.bucket)
        create_tokens_table(self.dynamodb(), self.table, self.template)
        self.replica_url = f"s3://{self.bucket}/databases?endpoint={self.endpoint}&region={REGION}"
        replica = Replica(self.replica_url)
        for path in self.files:
            publish.push(replica, path, path.stem)
        if self.running:
            self.lambda_endpoint = self._host_view(self.lambda_port or _free_port())
        for name in self.running:
            props = self.template["Resources"][name]["Properties"]
            handler_file, attribute = function_code(self.template, name)
            timeout = float(props.get("Timeout") or self.template["Globals"]["Function"].get("Timeout", 3))
            # The read function scales out; the others run one environment at a time.
            pool = name == "ReadFunction" and "ReservedConcurrentExecutions" not in props
            env = self.function_env(name)
            # What Lambda sets in every environment (storage derives its caps from the memory).
            memory = props.get("MemorySize") or self.template["Globals"]["Function"].get("MemorySize", 128)
            env.update(AWS_LAMBDA_FUNCTION_NAME=self.physical[name],
                       AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(memory))
            # Each environment has its own data directory, as each Lambda sandbox has its own /tmp.
            dirs = [self.state / f"{name}-{i}" for i in range(self.read_workers if pool else 1)]
            workers = [Worker(name, str(handler_file), {**env, "LAMBDASETTE_DATA_DIR": str(d)},
                              timeout, attribute) for d in dirs]
            self.functions[name] = Function(name, workers)
        # The writer first: readers restore what it pre-warmed.
        order = sorted(self.functions, key=lambda n: ("WriteFunction", "ReadFunction").index(n)
                       if n in ("WriteFunction", "ReadFunction") else 2)
        for name in order:
            for worker in self.functions[name].workers:
                worker.start()
        if self.functions:
            import uvicorn

            port = int(self.lambda_endpoint.rsplit(":", 1)[1])
            api = LambdaApi(self.functions, self.physical)
            self._lambda_server = uvicorn.Server(uvicorn.Config(api, host=self.service_host, port=port,
                                                                log_level="warning"))
            threading.Thread(target=self._lambda_server.run, daemon=True).start()
            deadline = time.monotonic() + 30
            while not self._lambda_server.started and time.monotonic() < deadline:
                time.sleep(0.05)

    def dynamodb(self) -> Any:
        import boto3

        return boto3.client("dynamodb", endpoint_url=self.endpoint, region_name=REGION)

    def mint_token(self, actor: str = "root") -> str:
        """A new token in this cloud's tokens table (what `lambdasette token create` would do)."""
        from lambdasette.auth import tokens
        from lambdasette.auth.store_dynamodb import DynamoDBTokenStore

        store = DynamoDBTokenStore(self.table, client=self.dynamodb())
        # The CLI's lifespan (a day for root, as `serve --root` and `token create root` give).
        return tokens.create(store, actor, None, tokens.cli_lifespan(actor, None))[0]

    def invoke(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
        """One event through the function's handler: {"ok": True, "result": ...} or its error."""
        return self.functions[function].invoke(event)

    def write_env_files(self, container_host: str = CONTAINER_HOST) -> tuple[Path, Path]:
        """The CLI's environment (shell syntax) and `sam local`'s --env-vars file (JSON)."""
        env_file = self.state / ENV_FILE
        env = {**self.service_env, "LAMBDASETTE_TOKENS_TABLE": self.table,
               "LAMBDASETTE_REPLICA_URL": self.replica_url}
        # Quoted: the replica URL holds '&' and '?', which a shell sourcing the file would
        # otherwise read as "run in the background" and a glob.
        env_file.write_text("".join(f"{k}={shlex.quote(str(v))}\n" for k, v in env.items()))
        sam_file = self.state / SAM_ENV_FILE
        sam_file.write_text(json.dumps(self.sam_env_vars(container_host), indent=2) + "\n")
        return env_file, sam_file

    def stop(self) -> None:
        if self._lambda_server is not None:
            self._lambda_server.should_exit = True
        for function in self.functions.values():
            for worker in function.workers:
                worker.stop()
        if self._moto is not None:
            self._moto.stop()


def sam_commands(cloud: LocalCloud, sam_file: Path, container_host: str) -> list[str]:
    """The `sam local` lines to copy (run from the repo root after `sam build`), and what to know."""
    common = f"--env-vars {sam_file} --region {REGION}"
    if container_host == CONTAINER_HOST:
        common += f" --add-host {CONTAINER_HOST}:host-gateway"
    lines = ["sam local (needs Docker; from the repo root, after `sam build`):",
             f"  sam local invoke ReadFunction -e events/read/table-page.json {common}",
             f"  sam local start-api --port 3001 {common}"]
    if cloud.service_host == LOOPBACK and container_host == CONTAINER_HOST:
        lines.append("  (Docker Engine on Linux reaches this machine on its bridge, not on 127.0.0.1: "
                     "start with --service-host 0.0.0.0 or the bridge's address)")
    if cloud.names().get("PublicReads") != "on":
        lines.append("  (events without a token answer 401 unless started with --parameter PublicReads=on)")
    dropped = sorted({name for f in function_names(cloud.template) for name in cloud.dropped_by_sam(f)})
    endpoints = [name for name in dropped if name.startswith("AWS_ENDPOINT_URL_")]
    if endpoints:
        lines.append(f"  (template.yaml does not declare {', '.join(endpoints)}: under sam local, token "
                     "checks and the import function's invoke go to AWS, not here; see README)")
    others = [name for name in dropped if name not in endpoints]
    if others:
        lines.append(f"  (sam local ignores {', '.join(others)}: template.yaml does not declare it)")
    if cloud.functions.get("WriteFunction"):
        lines.append("  (for sam local's write function, start with --services-only: one writer per replica)")
    return lines


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
    parser.add_argument("--services-only", action="store_true",
                        help="only S3 and DynamoDB (moto) and the databases: functions run in `sam local`")
    parser.add_argument("--service-host", default=LOOPBACK,
                        help="address moto and the Lambda API listen on (containers on Linux: 0.0.0.0)")
    parser.add_argument("--container-host", default=CONTAINER_HOST,
                        help=f"how containers reach this machine, in {SAM_ENV_FILE} (default: %(default)s)")
    options = parser.parse_args(argv)

    if not options.files:
        # As `lambdasette serve` does: the demo database, which the read samples in events/ query.
        from lambdasette.demo import create_demo

        options.files = [create_demo(Path(".lambdasette/demo.db"))]
    parameters = {}
    for override in options.parameter:
        key, _, value = override.partition("=")
        parameters[key] = value
    try:
        cloud = LocalCloud(options.state_dir, options.files, parameters=parameters,
                           settings=[tuple(s) for s in options.setting], read_workers=options.read_workers,
                           service_host=options.service_host, lambda_port=options.lambda_port,
                           functions=[] if options.services_only else None)
    except ValueError as exc:
        parser.error(str(exc))
    import uvicorn

    try:
        cloud.start()
        env_file, sam_file = cloud.write_env_files(options.container_host)
        if options.root_token:
            print(f"Root token: {cloud.mint_token('root')}", flush=True)
        print("\n".join(sam_commands(cloud, sam_file, options.container_host)), flush=True)
        if options.services_only:
            print(f"local-cloud: S3 and DynamoDB (moto) at {cloud.endpoint}, no functions; "
                  f"environment for the CLI in {env_file}", flush=True)
            threading.Event().wait()  # until Ctrl-C
        print(f"local-cloud: API on http://{options.host}:{options.port}/ (S3 and DynamoDB: moto at "
              f"{cloud.endpoint}); environment for the CLI in {env_file}", flush=True)
        uvicorn.run(Gateway(cloud.template, cloud.functions), host=options.host, port=options.port,
                    log_level="warning")
    except KeyboardInterrupt:
        pass
    finally:
        cloud.stop()
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

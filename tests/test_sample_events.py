"""events/: the sample events `sam local invoke -e` takes, and the env-vars file `scripts/local-cloud`
writes for `sam local`.

- Every file in events/ goes through the real handler module of its function (the
  functions/<fn>/app.py that `sam local invoke` runs in its container) on one local cloud, and
  its answer is checked; the token placeholder is replaced by a token minted in that cloud.
- template.yaml cannot gain a function, a route or a schedule without a sample event for it.
- The env-vars file holds exactly the variables template.yaml declares per function (the only
  ones SAM lets it set), with endpoints as a container reaches this machine; SAM CLI's own code
  reads it (when SAM is installed), and a handler given only that environment, as a container
  would be, reaches the local cloud through a non-loopback address.

No Docker here: `sam local` itself is not run (see README, "The deployed shape, locally").
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit

import pytest

from lambdasette.demo import create_demo
from localcloud import (
    CONTAINER_HOST,
    LocalCloud,
    Worker,
    declared_variables,
    function_code,
    function_names,
    load_template,
    sam_commands,
)

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
# Where a secret goes in a sample event; `envsubst '$LAMBDASETTE_TOKEN'` fills it in by hand.
TOKEN_PLACEHOLDER = "${LAMBDASETTE_TOKEN}"
API_HOST = "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"  # the samples' API Gateway domain


def folder_of(template: dict[str, Any], function: str) -> str:
    """A function's sample events live in events/<its CodeUri folder>/ (functions/read/ -> events/read/)."""
    return Path(template["Resources"][function]["Properties"]["CodeUri"]).name


def function_of(path: Path) -> str:
    template = load_template()
    by_folder = {folder_of(template, f): f for f in function_names(template)}
    return by_folder[path.relative_to(EVENTS).parts[0]]


def event_files() -> list[str]:
    return sorted(str(p.relative_to(EVENTS)) for p in EVENTS.rglob("*.json"))


def is_http(event: Any) -> bool:
    return isinstance(event, dict) and event.get("version") == "2.0" and "routeKey" in event


def template_events(template: dict[str, Any], function: str, *types: str) -> dict[str, dict[str, Any]]:
    events = template["Resources"][function]["Properties"].get("Events", {})
    return {name: e for name, e in events.items() if e["Type"] in types}


def http_routes(template: dict[str, Any], function: str) -> set[str]:
    return {f"{e['Properties']['Method']} {e['Properties']['Path']}"
            for e in template_events(template, function, "HttpApi").values()}


def fronts(template: dict[str, Any], function: str) -> str | None:
    """The function `function` forwards its writes to, if it is a front (B10)."""
    if not http_routes(template, function):
        return None  # the importer invokes the writer too, but is no front
    variables = template["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {})
    target = variables.get("LAMBDASETTE_WRITE_FUNCTION")
    return target.get("Ref") if isinstance(target, dict) else None


# -- the template and the samples cannot drift apart ----------------------------------------------

def test_every_function_route_and_schedule_has_a_sample_event() -> None:
    template = load_template()
    functions = function_names(template)
    assert {p.name for p in EVENTS.iterdir() if p.is_dir()} == {folder_of(template, f) for f in functions}
    for function in functions:
        files = sorted((EVENTS / folder_of(template, function)).glob("*.json"))
        assert files, f"{function} has no sample event"
        samples = [json.loads(f.read_text()) for f in files]
        route_keys = {e["routeKey"] for e in samples if is_http(e)}
        routes = http_routes(template, function)
        assert routes <= route_keys, f"{function}: no sample event for {sorted(routes - route_keys)}"
        # The writer gets the POSTs its front forwards, as API Gateway sent them to the front.
        forwarded = {route for front in function_names(template) if fronts(template, front) == function
                     for route in http_routes(template, front) if route.startswith("POST ")}
        assert forwarded <= route_keys, f"{function}: no sample event for {sorted(forwarded - route_keys)}"
        assert route_keys <= routes | forwarded, \
            f"{function}: samples for routes it does not have: {route_keys - routes - forwarded}"
        for name, schedule in template_events(template, function, "Schedule", "ScheduleV2").items():
            # EventBridge (Scheduler) delivers the schedule's Input as the whole event.
            assert json.loads(schedule["Properties"]["Input"]) in samples, f"no sample event for schedule {name}"


def test_http_samples_have_api_gateways_payload_2_shape() -> None:
    for name in event_files():
        text = (EVENTS / name).read_text()
        assert "lstok_" not in text, f"{name} holds a real token; use {TOKEN_PLACEHOLDER}"
        event = json.loads(text)
        if not is_http(event):
            continue
        method, _, route = event["routeKey"].partition(" ")
        context = event["requestContext"]
        assert context["routeKey"] == event["routeKey"] and context["stage"] == "$default"
        assert context["http"]["method"] == method and context["http"]["protocol"] == "HTTP/1.1"
        assert context["http"]["path"] == unquote(event["rawPath"]), name
        assert context["domainName"] == event["headers"]["host"] == API_HOST
        assert all(h == h.lower() for h in event["headers"]), f"{name}: HTTP APIs send header names lowercased"
        # The proxy route passes the path (decoded) as its parameter; the root route has none.
        if route == "/{proxy+}":
            assert event["pathParameters"] == {"proxy": unquote(event["rawPath"][1:])}, name
        else:
            assert event["rawPath"] == "/" and "pathParameters" not in event
        # Repeated keys are comma-joined; AWS leaves the key out when there is no query string.
        joined: dict[str, str] = {}
        for key, value in parse_qsl(event["rawQueryString"], keep_blank_values=True):
            joined[key] = f"{joined[key]},{value}" if key in joined else value
        assert event.get("queryStringParameters") == (joined or None), name
        if "body" in event:
            assert event["isBase64Encoded"] is False and event["headers"]["content-type"] == "application/json"
            assert int(event["headers"]["content-length"]) == len(event["body"].encode()), name
            json.loads(event["body"])
        # The only secret a sample carries is the placeholder.
        authorization = event["headers"].get("authorization")
        assert authorization in (None, f"Bearer {TOKEN_PLACEHOLDER}"), name


# -- every sample through its handler on one local cloud ------------------------------------------

@dataclass
class Cloud:
    cloud: LocalCloud
    token: str
    demo: Path


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """One local cloud for every sample: the demo database and an empty `data` database (the
    Federal Register import's target), public reads (the samples without a token are anonymous)."""
    from localcloud import _free_port

    tmp = tmp_path_factory.mktemp("sample-events")
    demo = create_demo(tmp / "demo.db")
    data = tmp / "data.db"
    with sqlite3.connect(data) as conn:
        conn.execute("pragma user_version = 1")  # an empty database still needs its header page
    conn.close()
    # No test reaches the internet: the Federal Register fetch goes to a proxy that refuses it,
    # so the import run fails the same way everywhere (and is still recorded by the writer).
    refused = f"http://127.0.0.1:{_free_port()}"
    with pytest.MonkeyPatch.context() as patch:
        # LocalCloud.start sets this process's AWS credentials for its clients; put them back after.
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION"):
            patch.setenv(name, os.environ.get(name, "testing"))
        patch.delenv("AWS_CA_BUNDLE", raising=False)
        local = LocalCloud(tmp / "state", [demo, data], parameters={"PublicReads": "on"}, read_workers=1,
                           extra_env={"ImportFunction": {"HTTPS_PROXY": refused, "https_proxy": refused}})
        try:
            local.start()
            yield Cloud(local, local.mint_token("root"), demo)
        finally:
            local.stop()


def load_event(name: str, token: str) -> Any:
    return json.loads((EVENTS / name).read_text().replace(TOKEN_PLACEHOLDER, token))


@dataclass
class Answer:
    """A payload 2.0 handler result, as API Gateway turns it into HTTP."""

    status: int
    headers: dict[str, str]
    text: str

    @classmethod
    def of(cls, result: dict[str, Any]) -> Answer:
        body = result.get("body") or ""
        text = base64.b64decode(body).decode() if result.get("isBase64Encoded") else body
        return cls(result["statusCode"], {k.lower(): v for k, v in (result.get("headers") or {}).items()}, text)

    def json(self) -> Any:
        assert self.headers["content-type"].startswith("application/json"), self.headers
        return json.loads(self.text)


def get(cloud: Cloud, raw_path: str, raw_query: str = "") -> Answer:
    """A GET through the read function, made from a sample (for checks after a direct invocation)."""
    event = load_event("read/instance.json", cloud.token)
    event.update(rawPath=raw_path, rawQueryString=raw_query, pathParameters={"proxy": raw_path[1:]})
    event["requestContext"]["http"]["path"] = raw_path
    outcome = cloud.cloud.invoke("ReadFunction", event)
    assert outcome["ok"], outcome
    return Answer.of(outcome["result"])


def http(status: int, check: Callable[[Answer, Cloud], None] | None = None) -> Callable[[Any, Cloud], None]:
    def checked(result: Any, cloud: Cloud) -> None:
        answer = Answer.of(result)
        assert answer.status == status, answer.text[:500]
        if check:
            check(answer, cloud)
    return checked


def instance(answer: Answer, cloud: Cloud) -> None:
    body = answer.json()
    assert {"demo", "data"} <= set(body)
    assert "trees" in [t["name"] for t in body["demo"]["tables_and_views_truncated"]]


def table_page(answer: Answer, cloud: Cloud) -> None:
    body = answer.json()
    rows = body["rows"]
    assert body["ok"] is True and 0 < len(rows) <= 5
    assert all(r["city_code"] == {"value": "lon", "label": "London"} and r["height_m"] > 30 for r in rows)
    assert [r["height_m"] for r in rows] == sorted((r["height_m"] for r in rows), reverse=True)
    # Links are built from what API Gateway says the request was (host, x-forwarded-proto).
    assert body["next_url"].startswith(f"https://{API_HOST}/demo/trees.json?")


def row(answer: Answer, cloud: Cloud) -> None:
    rows = answer.json()["rows"]
    assert len(rows) == 1 and rows[0]["id"] == 17 and {"city_code", "height_m"} <= set(rows[0])


def sql(answer: Answer, cloud: Cloud) -> None:
    rows = answer.json()
    assert all(set(r) == {"city_code", "trees"} for r in rows)
    assert sum(r["trees"] for r in rows) == 2500
    assert [r["trees"] for r in rows] == sorted((r["trees"] for r in rows), reverse=True)


def csv_export(answer: Answer, cloud: Cloud) -> None:
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    with sqlite3.connect(cloud.demo) as conn:
        expected = conn.execute("select count(*) from trees where species_id = 3").fetchone()[0]
    conn.close()
    assert len(rows) == expected  # _stream=on: every matching row, not a page
    assert {(r["species_id"], r["species_id_label"]) for r in rows} == {("3", "lime")}


def head(answer: Answer, cloud: Cloud) -> None:
    assert answer.headers["content-type"].startswith("application/json")


def actor(answer: Answer, cloud: Cloud) -> None:
    shown = answer.json()["actor"]
    assert shown.pop("token_expires") > time.time() + 23 * 3600  # a root token lasts a day
    assert shown == {"id": "root", "token": "lstok", "token_id": cloud.token.split("_")[1]}


def refused_preflight(answer: Answer, cloud: Cloud) -> None:
    # The template's default is Cors=off: OPTIONS answers 200 "ok" as Datasette 0.65 does, but
    # without the CORS headers, so a browser still refuses the cross-origin request.
    assert answer.text == "ok"
    assert not any(k.lower().startswith("access-control-") for k in answer.headers)


def through_the_front(answer: Answer, cloud: Cloud) -> None:
    written(answer, cloud)
    assert [r["name"] for r in answer.json()["rows"]] == ["ash", "elm"]


def refused_by_the_front(answer: Answer, cloud: Cloud) -> None:
    body = answer.json()
    assert body["ok"] is False and body["status"] == 403
    assert "x-lambdasette-forward" not in answer.headers


def written(answer: Answer, cloud: Cloud) -> None:
    assert answer.headers["x-lambdasette-txid"].isdigit()  # acknowledged only once durable in S3


def create(answer: Answer, cloud: Cloud) -> None:
    written(answer, cloud)
    body = answer.json()
    assert body["table"] == "birds" and body["schema"].startswith('CREATE TABLE "birds"')
    assert body["table_url"] == f"https://{API_HOST}/demo/birds"


def insert(answer: Answer, cloud: Cloud) -> None:
    written(answer, cloud)
    rows = answer.json()["rows"]
    assert [r["name"] for r in rows] == ["hornbeam", "rowan"] and all(isinstance(r["id"], int) for r in rows)


def upsert(answer: Answer, cloud: Cloud) -> None:
    written(answer, cloud)
    # The second row names no country: an upsert keeps the column it leaves out.
    assert answer.json()["rows"] == [{"code": "lis", "name": "Lisbon", "country": "PT"},
                                     {"code": "lon", "name": "London", "country": "GB"}]


def token_created(answer: Answer, cloud: Cloud) -> None:
    body = answer.json()
    assert body["token"].startswith("lstok_") and body["actor"] == "root" and body["status"] == "active"
    assert body["expires"] - body["created"] == 3600
    assert {db: sorted(actions) for db, actions in body["restrictions"]["d"].items()} == \
        {"demo": ["insert-row", "view-table"]}


def import_batch(result: Any, cloud: Cloud) -> None:
    assert result["ok"] is True and result["written"] == 2 and isinstance(result["txid"], int)


def maintenance(result: Any, cloud: Cloud) -> None:
    assert result["ok"] is True and result["daemon_running"] is True
    assert set(result["databases"]) == {"demo", "data"}


def federal_register_run(result: Any, cloud: Cloud) -> None:
    assert result["name"] == "federal-register" and result["target_table"] == "federal_register"
    assert result["status"] == "error" and "federalregister.gov" in result["error"] and result["pages"] == 0
    assert "record_error" not in result
    # The import function recorded its run through the write function (Lambda Invoke API).
    runs = get(cloud, "/data/_import_runs.json", f"_shape=array&id={result['id']}").json()
    assert [r["status"] for r in runs] == ["error"]


# What each sample must answer. A new file in events/ needs a line here (test below).
EXPECTATIONS: dict[str, Callable[[Any, Cloud], None]] = {
    "importer/schedule-federal-register.json": federal_register_run,
    "read/cors-preflight.json": http(200, refused_preflight),
    "read/csv-export.json": http(200, csv_export),
    "read/head.json": http(200, head),
    "read/insert-through-the-front.json": http(201, through_the_front),
    "read/insert-refused-by-the-front.json": http(403, refused_by_the_front),
    "read/instance.json": http(200, instance),
    "read/root.json": http(200, instance),
    "read/row.json": http(200, row),
    "read/sql.json": http(200, sql),
    "read/table-page.json": http(200, table_page),
    "read/with-token.json": http(200, actor),
    "write/create.json": http(201, create),
    "write/import-batch.json": import_batch,
    "write/insert.json": http(201, insert),
    "write/schedule-maintenance.json": maintenance,
    "write/token-create.json": http(201, token_created),
    "write/upsert.json": http(200, upsert),
}


def test_every_sample_has_an_expected_answer() -> None:
    assert sorted(EXPECTATIONS) == event_files()


@pytest.mark.parametrize("name", sorted(EXPECTATIONS))
def test_sample_event_through_its_handler(cloud: Cloud, name: str) -> None:
    event = load_event(name, cloud.token)
    if event.get("lambdasette") == "maintenance":
        event["seconds"] = 0.5  # the schedule keeps the writer awake 40 s; the answer is the same
    outcome = cloud.cloud.invoke(function_of(EVENTS / name), event)
    assert outcome["ok"], outcome.get("error")
    EXPECTATIONS[name](outcome["result"], cloud)


# -- the env-vars file for `sam local` ---------------------------------------------------------------

def test_env_vars_file_holds_the_templates_variables_as_a_container_sees_them(cloud: Cloud) -> None:
    local = cloud.cloud
    _, sam_file = local.write_env_files()
    values = json.loads(sam_file.read_text())
    template = load_template()
    moto_port = urlsplit(local.endpoint).port
    assert list(values) == function_names(template)
    for function, variables in values.items():
        # Exactly what template.yaml declares: SAM would drop any other name, and leaving one out
        # would let the shell's value (or the template's unresolved !Ref) through.
        assert list(variables) == declared_variables(template, function)
        assert all(isinstance(v, str) for v in variables.values())
        assert not any(host in v for v in variables.values() for host in ("127.0.0.1", "localhost", "0.0.0.0"))
        assert variables["LAMBDASETTE_DATA_DIR"] == "/tmp/lambdasette"  # the container's own /tmp
        assert variables["LAMBDASETTE_TOKENS_TABLE"] == local.table
        assert variables["LAMBDASETTE_PUBLIC"] == "on"  # the cloud's parameters, not the defaults
        replica = urlsplit(variables["LAMBDASETTE_REPLICA_URL"])
        assert (replica.scheme, replica.netloc, replica.path) == ("s3", local.bucket, "/databases")
        assert parse_qs(replica.query) == {"endpoint": [f"http://{CONTAINER_HOST}:{moto_port}"],
                                           "region": ["us-east-1"]}
    # What the local cloud's Lambda Invoke API answers to.
    assert values["ImportFunction"]["LAMBDASETTE_WRITE_FUNCTION"] == local.physical["WriteFunction"]


def test_the_commands_to_copy(cloud: Cloud) -> None:
    _, sam_file = cloud.cloud.write_env_files()
    lines = sam_commands(cloud.cloud, sam_file, CONTAINER_HOST)
    invoke = next(line.split() for line in lines if "sam local invoke" in line)
    assert invoke[3:6] == ["ReadFunction", "-e", "events/read/table-page.json"]
    assert (ROOT / invoke[5]).exists() and invoke[invoke.index("--env-vars") + 1] == str(sam_file)
    assert f"{CONTAINER_HOST}:host-gateway" in invoke
    assert any("sam local start-api" in line and f"--env-vars {sam_file}" in line for line in lines)


def test_the_commands_say_what_sam_local_cannot_pass(tmp_path: Path) -> None:
    template = load_template()
    local = LocalCloud(tmp_path, settings=[("max_csv_mb", "10"), ("max_returned_rows", "50")])
    values = local.sam_env_vars()
    # A setting the template declares goes through; one it does not is named as ignored.
    assert values["ReadFunction"]["LAMBDASETTE_SETTING_MAX_RETURNED_ROWS"] == "50"
    assert "LAMBDASETTE_SETTING_MAX_CSV_MB" not in values["ReadFunction"]
    notes = "\n".join(sam_commands(local, tmp_path / "sam-env-vars.json", CONTAINER_HOST))
    assert "sam local ignores LAMBDASETTE_SETTING_MAX_CSV_MB" in notes
    if "AWS_ENDPOINT_URL_DYNAMODB" not in declared_variables(template, "ReadFunction"):
        assert "does not declare AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_LAMBDA" in notes
    assert "--service-host 0.0.0.0" in notes and "PublicReads=on" in notes


def sam_python() -> Path | None:
    python = ROOT / ".tools/sam-venv/bin/python"
    return python if python.exists() else None


@pytest.mark.skipif(sam_python() is None, reason="SAM CLI is not installed (scripts/check-template installs it)")
def test_sam_cli_reads_the_env_vars_file_as_written(cloud: Cloud, tmp_path: Path) -> None:
    """SAM CLI's own code resolves each function's container environment from template.yaml and
    the file (tools/localcloud/samcheck.py): every variable arrives with the file's value, and a
    variable the template does not declare is dropped (why the file holds only declared ones)."""
    _, sam_file = cloud.cloud.write_env_files()
    written = json.loads(sam_file.read_text())
    undeclared = {"AWS_ENDPOINT_URL_SQS": "http://host.docker.internal:4566", "LAMBDASETTE_EXTRA": "x"}
    probe = tmp_path / "probe.json"
    probe.write_text(json.dumps({f: {**v, **undeclared} for f, v in written.items()}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LAMBDASETTE_"))}
    resolved = {}
    for path in (sam_file, probe):
        done = subprocess.run([str(sam_python()), str(ROOT / "tools/localcloud/samcheck.py"), "template.yaml",
                               str(path), "us-east-1"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                              env={**env, "SAM_CLI_TELEMETRY": "0"})
        assert done.returncode == 0, done.stderr
        resolved[path] = json.loads(done.stdout)
    for function, variables in written.items():
        # SAM adds its own AWS_* variables (region, placeholder credentials); the file's arrive as written.
        assert {k: resolved[sam_file][function].get(k) for k in variables} == variables
        assert not {k for k in resolved[sam_file][function] if k.startswith("LAMBDASETTE_")} - set(variables)
        assert "AWS_ENDPOINT_URL_SQS" not in resolved[probe][function]
        assert "LAMBDASETTE_EXTRA" not in resolved[probe][function]
        assert resolved[probe][function] == resolved[sam_file][function]


def outward_address() -> str | None:
    """This machine's address on its network (what a container on a bridge reaches it by)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.123", 9))  # UDP: nothing is sent, only a route is chosen
        except OSError:
            return None
        address = sock.getsockname()[0]
    return None if address.startswith("127.") else address


def test_a_handler_with_only_the_env_vars_file_reaches_the_local_cloud(tmp_path: Path) -> None:
    """What `sam local invoke` would do, short of the container: `--services-only` (no functions
    of its own) listening on all interfaces, and each handler in a process that gets only the
    file's variables and SAM's placeholder credentials, with host.docker.internal resolving to
    this machine's outward address, as --add-host host.docker.internal:host-gateway makes it."""
    address = outward_address()
    if address is None:
        pytest.skip("no non-loopback address to reach the services by")
    demo = create_demo(tmp_path / "demo.db", rows=50)
    data = tmp_path / "data.db"
    with sqlite3.connect(data) as conn:
        conn.execute("pragma user_version = 1")
    conn.close()
    template = load_template()
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION"):
            patch.setenv(name, os.environ.get(name, "testing"))
        services = LocalCloud(tmp_path / "state", [demo, data], parameters={"PublicReads": "on"},
                              service_host="0.0.0.0", functions=[], stack="lambdasette-sam-local")
        workers: list[Worker] = []
        try:
            services.start()
            _, sam_file = services.write_env_files()
            values = json.loads(sam_file.read_text())
            answers = {}
            # The writer first, as in a deployment: it pre-warms what the reader restores.
            for function, sample in (("WriteFunction", "write/import-batch.json"),
                                     ("ReadFunction", "read/table-page.json")):
                env = {k: v.replace(CONTAINER_HOST, address) for k, v in values[function].items()}
                # SAM's own additions without AWS credentials configured (samcli env_vars.py).
                env.update(AWS_ACCESS_KEY_ID="defaultkey", AWS_SECRET_ACCESS_KEY="defaultsecret",
                           AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1", AWS_SAM_LOCAL="true",
                           LAMBDASETTE_DATA_DIR=str(tmp_path / function))  # a container's /tmp is its own
                handler_file, attribute = function_code(template, function)
                worker = Worker(function, str(handler_file), env, 60.0, attribute, isolated=True)
                workers.append(worker)
                worker.start()
                answers[function] = worker.invoke(load_event(sample, "unused"))
        finally:
            for worker in workers:
                worker.stop()
            services.stop()
    write = answers["WriteFunction"]
    assert write["ok"] and write["result"]["ok"] is True and write["result"]["written"] == 2, write
    read = Answer.of(answers["ReadFunction"]["result"])
    assert read.status == 200 and read.json()["ok"] is True, read.text[:500]

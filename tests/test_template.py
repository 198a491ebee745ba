"""template.yaml, the one source of truth for what is deployed (and what local-cloud runs)."""

from __future__ import annotations

import json
from typing import Any

from localcloud import load_template, routes, schedules

from .aws import create_tokens_table, template_resource


def test_routing_sends_every_request_to_the_read_function_the_writers_front() -> None:
    """B10: API Gateway sends POSTs to the read function, which authenticates, authorizes and
    checks them and invokes the one writer only for a request that would write: a POST
    without a valid credential never occupies the writer (reserved concurrency 1)."""
    template = load_template()
    table = routes(template)
    assert table == {"GET": "ReadFunction", "HEAD": "ReadFunction", "OPTIONS": "ReadFunction",
                     "POST": "ReadFunction"}
    read = template["Resources"]["ReadFunction"]["Properties"]
    assert read["Environment"]["Variables"]["LAMBDASETTE_WRITE_FUNCTION"] == {"Ref": "WriteFunction"}
    # lambda:InvokeFunction on the write function alone, and on nothing else.
    invokes = [st for p in read["Policies"] if "Statement" in p for st in p["Statement"]
               if any(a.startswith("lambda:") for a in ([st["Action"]] if isinstance(st["Action"], str)
                                                         else st["Action"]))]
    assert invokes == [{"Effect": "Allow", "Action": "lambda:InvokeFunction",
                        "Resource": {"Fn::GetAtt": "WriteFunction.Arn"}}]
    assert not [p for p in read["Policies"] if "LambdaInvokePolicy" in p]
    write = template["Resources"]["WriteFunction"]["Properties"]
    assert not [e for e in write["Events"].values() if e["Type"] == "HttpApi"]  # Invoke only
    # A ceiling on POSTs at API Gateway, whoever sends them.
    settings = template["Resources"]["HttpApi"]["Properties"]["RouteSettings"]["POST /{proxy+}"]
    assert settings == {"ThrottlingRateLimit": {"Ref": "PostRateLimit"},
                        "ThrottlingBurstLimit": {"Ref": "PostBurstLimit"}}


def test_one_writer_and_its_maintenance_schedule() -> None:
    template = load_template()
    write = template["Resources"]["WriteFunction"]["Properties"]
    assert write["ReservedConcurrentExecutions"] == 1
    assert write["Timeout"] >= 60  # import batches and maintenance outlast an API request
    assert schedules(template)["Maintenance"] == ("WriteFunction", {"lambdasette": "maintenance", "seconds": 40})
    assert "ReservedConcurrentExecutions" not in template["Resources"]["ReadFunction"]["Properties"]


def test_runtime_layer_and_environment() -> None:
    template = load_template()
    function = template["Globals"]["Function"]
    assert function["Runtime"] == "python3.12" and function["Architectures"] == ["x86_64"]
    env = function["Environment"]["Variables"]
    assert env["LAMBDASETTE_TOKENS_TABLE"] == {"Ref": "TokensTable"}
    assert "LAMBDASETTE_REPLICA_URL" in env
    layer = template["Resources"]["LambdasetteLayer"]
    assert layer["Metadata"]["BuildMethod"] == "makefile"  # keeps litestream executable


def test_bucket_and_table_are_locked_down() -> None:
    bucket = template_resource("DataBucket")["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]
    table = template_resource("TokensTable")["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_the_tests_tokens_table_is_the_templates(dynamodb: Any) -> None:
    """tests/aws.py builds the table from template.yaml: what the tests exercise is what deploys."""
    name = create_tokens_table(dynamodb)
    described = dynamodb.describe_table(TableName=name)["Table"]
    props = template_resource("TokensTable")["Properties"]
    assert described["KeySchema"] == props["KeySchema"]
    assert [i["IndexName"] for i in described["GlobalSecondaryIndexes"]] == ["by_actor"]
    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == props["TimeToLiveSpecification"]["AttributeName"]


def test_every_import_definition_has_its_schedule() -> None:
    from lambdasette.imports.definition import load_definitions

    from .aws import ROOT

    template = load_template()
    events = template["Resources"]["ImportFunction"]["Properties"]["Events"]
    scheduled = {json.loads(e["Properties"]["Input"])["import"]: e["Properties"]["ScheduleExpression"]
                 for e in events.values() if e["Type"] == "ScheduleV2"}
    definitions = load_definitions(ROOT / "functions/importer/imports")
    assert definitions, "the Federal Register example ships with the function"
    assert scheduled == {d.name: d.schedule for d in definitions}

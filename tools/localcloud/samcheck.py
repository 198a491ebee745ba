"""What `sam local invoke` / `sam local start-api` would put in each function's container
environment, computed by SAM CLI's own code from template.yaml and an `--env-vars` file: the step
just before SAM starts a container, so the file can be checked on a machine without Docker.

Run it with SAM CLI's Python (scripts/check-template installs SAM into .tools/sam-venv):

    .tools/sam-venv/bin/python tools/localcloud/samcheck.py template.yaml ENV_VARS.json [REGION]

It prints {function logical id: {variable: value}} as JSON. It uses SAM's internal classes (the
same calls `sam local invoke` makes: InvokeContext reads the file, LocalLambdaRunner resolves the
environment), so a SAM release that moves them breaks this script loudly rather than silently.
"""

from __future__ import annotations

import json
import sys


def resolve(template: str, env_vars_file: str, region: str = "us-east-1") -> dict[str, dict[str, str]]:
    from samcli.commands.local.cli_common.invoke_context import InvokeContext
    from samcli.commands.local.lib.local_lambda import LocalLambdaRunner
    from samcli.lib.providers.sam_function_provider import SamFunctionProvider
    from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

    # Parsed exactly as `--env-vars` is (JSON, or .env as a fallback); a malformed file raises here.
    values = InvokeContext._get_env_vars_value(env_vars_file)
    stacks, _ = SamLocalStackProvider.get_stacks(template, global_parameter_overrides={"AWS::Region": region})
    provider = SamFunctionProvider(stacks)
    # No runtime: nothing is started, only each function's invoke configuration is computed.
    runner = LocalLambdaRunner(local_runtime=None, function_provider=provider, cwd=".", real_path=".",  # type: ignore[arg-type]
                               aws_region=region, env_vars_values=values)
    return {function.name: runner._make_env_vars(function).resolve() for function in provider.get_all()}


if __name__ == "__main__":
    print(json.dumps(resolve(*sys.argv[1:4]), indent=2, sort_keys=True))

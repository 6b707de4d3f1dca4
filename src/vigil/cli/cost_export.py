"""``vigil export aws-budgets``: the spec's cost budgets as AWS Budgets definitions (registered on
the ``export`` group by :mod:`vigil.cli.export`)."""

from __future__ import annotations

import json

import click

from vigil.cli.common import env, json_option, spec_option
from vigil.cli.export import _emit, _output_option, export_group
from vigil.errors import UsageError


class _Exported:
    def __init__(self, document: object, notes: list[str]) -> None:
        self.document = document
        self.notes = notes


@export_group.command("aws-budgets")
@click.option("--account", metavar="ID", default="${AWS::AccountId}", show_default=True, help="the AccountId written into each definition")
@_output_option
@spec_option
@json_option
def aws_budgets_cmd(account: str, output: str | None) -> int:
    """AWS Budgets definitions of costs.budgets (boto3 create_budget arguments, JSON): monthly COST
    budgets filtered by the env and service tags (AND) and ServiceName, ACTUAL and FORECASTED
    notifications to the budgets' SNS topics."""
    from vigil.finops.audit import aws_budgets

    spec = env().loaded.spec
    if spec.costs is None:
        raise UsageError("the spec has no `costs:` section", hint="add costs.budgets to vigil.yaml (README, FinOps)")
    defs, notes = aws_budgets(spec.costs)
    doc = [{"AccountId": account, **d} for d in defs]
    return _emit("aws-budgets", _Exported(doc, notes), json.dumps(doc, indent=2) + "\n", output)

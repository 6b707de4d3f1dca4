"""Synthetic cost line items for the example platform (``vigil simulate --costs focus|cur2``).

Pure and seeded: (seed, days, spikes) -> the same rows. One line item per day, environment and
usage of the platform: Lambda requests and GB-seconds (api, checkout; the api's requests follow
the simulated traffic, 20 requests/s in prod), Aurora Serverless v2 ACU-hours, S3 storage,
CloudFront delivery (edge), data transfer to the internet and between regions (search
replication), CloudWatch Logs ingestion and storage, the search nodes; each month a tax line, and
on the 10th a credit (negative cost). Costs follow a weekly pattern (weekends lower) and a little
noise. The dev search node carries no tags, as a forgotten resource does. ``spikes`` multiply one (env, service)'s
usage on one day: the labelled anomalies of the anomaly benchmark.

Written as FOCUS 1.2 columns (:data:`FOCUS_COLUMNS`) or AWS CUR 2.0 columns (:data:`CUR_COLUMNS`).
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Iterable, Iterator, TextIO

ACCOUNT = "123456789012"
REGION = "eu-west-1"
DR_REGION = "eu-central-1"

FOCUS_COLUMNS = (
    "AvailabilityZone", "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd",
    "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency", "ChargePeriodEnd",
    "ChargePeriodStart", "CommitmentDiscountId", "ConsumedQuantity", "ConsumedUnit", "ContractedCost", "ContractedUnitPrice",
    "EffectiveCost", "InvoiceIssuerName", "ListCost", "ListUnitPrice", "PricingCategory", "PricingQuantity", "PricingUnit",
    "ProviderName", "PublisherName", "RegionId", "RegionName", "ResourceId", "ResourceName", "ResourceType",
    "ServiceCategory", "ServiceName", "ServiceSubcategory", "SkuId", "SkuPriceId", "SubAccountId", "SubAccountName", "Tags",
    "x_UsageType",
)

CUR_COLUMNS = (
    "bill_bill_type", "bill_billing_period_start_date", "bill_billing_period_end_date", "bill_payer_account_id",
    "line_item_usage_account_id", "line_item_line_item_type", "line_item_usage_start_date", "line_item_usage_end_date",
    "line_item_product_code", "line_item_usage_type", "line_item_operation", "line_item_resource_id",
    "line_item_usage_amount", "line_item_currency_code", "line_item_unblended_rate", "line_item_unblended_cost",
    "line_item_net_unblended_cost", "line_item_line_item_description", "pricing_unit", "pricing_public_on_demand_cost",
    "product", "product_region_code", "resource_tags", "savings_plan_savings_plan_effective_cost",
    "reservation_effective_cost",
)


@dataclass(frozen=True)
class Usage:
    """One kind of usage of one service in one environment: a daily quantity and its unit price."""

    env: str
    service: str
    service_name: str
    product_code: str
    category: str  # FOCUS ServiceCategory
    usage_type: str
    unit: str
    price: Decimal
    daily: float  # mean quantity per weekday
    region: str = REGION
    resource: str = ""


def _u(env: str, service: str, sname: str, code: str, cat: str, utype: str, unit: str, price: str, daily: float, region: str = REGION, resource: str = "") -> Usage:
    return Usage(env, service, sname, code, cat, utype, unit, Decimal(price), daily, region, resource)


SCALE = {"prod": 1.0, "stage": 0.15, "dev": 0.05}
API_REQUESTS_PER_DAY = 20 * 86400  # the simulated api's mean rate, 20/s


def platform_usage() -> list[Usage]:
    """The example platform's usage per environment (prod at full scale)."""
    out: list[Usage] = []
    for env, k in SCALE.items():
        cluster = f"platform-{env}"
        out += [
            _u(env, "api", "AWS Lambda", "AWSLambda", "Compute", "EUW1-Request", "Requests", "0.0000002", API_REQUESTS_PER_DAY * k, resource=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:api-{env}"),
            _u(env, "api", "AWS Lambda", "AWSLambda", "Compute", "EUW1-Lambda-GB-Second", "Lambda-GB-Second", "0.0000166667", API_REQUESTS_PER_DAY * 0.12 * k, resource=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:api-{env}"),
            _u(env, "checkout", "AWS Lambda", "AWSLambda", "Compute", "EUW1-Lambda-GB-Second", "Lambda-GB-Second", "0.0000166667", 86400 * 0.4 * k, resource=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:checkout-{env}"),
            _u(env, "api", "Amazon Relational Database Service", "AmazonRDS", "Databases", "EUW1-Aurora:ServerlessV2Usage", "ACU-Hr", "0.14", (6.0 if env == "prod" else 1.0 if env == "stage" else 0.5) * 24, resource=f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:{cluster}"),
            _u(env, "api", "Amazon Relational Database Service", "AmazonRDS", "Databases", "EUW1-Aurora:StorageUsage", "GB-Mo", "0.11", 200 * k / 30, resource=f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:{cluster}"),
            _u(env, "pages", "Amazon Simple Storage Service", "AmazonS3", "Storage", "EUW1-TimedStorage-ByteHrs", "GB-Mo", "0.023", 800 * k / 30, resource=f"platform-assets-{env}"),
            _u(env, "pages", "Amazon CloudFront", "AmazonCloudFront", "Networking", "EU-DataTransfer-Out-Bytes", "GB", "0.085", 120 * k, region="global"),
            _u(env, "pages", "Amazon CloudFront", "AmazonCloudFront", "Networking", "EU-Requests-Tier1", "Requests", "0.0000012", 5 * 86400 * k, region="global"),
            _u(env, "api", "AWS Data Transfer", "AWSDataTransfer", "Networking", "EUW1-DataTransfer-Out-Bytes", "GB", "0.09", 15 * k),
            _u(env, "search", "AWS Data Transfer", "AWSDataTransfer", "Networking", "EUW1-EUC1-AWS-Out-Bytes", "GB", "0.02", 40 * k),
            _u(env, "api", "AmazonCloudWatch", "AmazonCloudWatch", "Management and Governance", "EUW1-DataProcessing-Bytes", "GB", "0.57", 6 * k, resource=f"/aws/lambda/api-{env}"),
            _u(env, "api", "AmazonCloudWatch", "AmazonCloudWatch", "Management and Governance", "EUW1-TimedStorage-ByteHrs", "GB-Mo", "0.03", 150 * k / 30, resource=f"/aws/lambda/api-{env}"),
            _u(env, "search", "Amazon Elastic Compute Cloud", "AmazonEC2", "Compute", "EUW1-BoxUsage:m6g.large", "Hrs", "0.086", 24.0 if env != "dev" else 12.0, resource=f"i-search-{env}"),
        ]
    return out


WEEKLY = (1.0, 1.04, 1.05, 1.03, 0.98, 0.72, 0.68)  # Monday .. Sunday


@dataclass(frozen=True)
class Spike:
    day: date
    env: str
    service: str
    factor: float


@dataclass(frozen=True)
class Item:
    day: date
    usage: Usage
    quantity: Decimal
    billed: Decimal
    effective: Decimal
    list_cost: Decimal
    category: str  # FOCUS ChargeCategory
    tagged: bool
    description: str


def _q(x: float, places: str = "0.000001") -> Decimal:
    return Decimal(repr(x)).quantize(Decimal(places), rounding=ROUND_HALF_EVEN)


def items(start: date, days: int, *, seed: int = 0, spikes: Iterable[Spike] = (), noise: float = 0.04) -> Iterator[Item]:
    """The line items of ``days`` days from ``start``, deterministic for a seed."""
    rng = random.Random(seed)
    spike = {(s.day, s.env, s.service): s.factor for s in spikes}
    usage = platform_usage()
    for i in range(days):
        d = start + timedelta(days=i)
        w = WEEKLY[d.weekday()]
        for u in usage:
            factor = w if u.category not in ("Storage",) and "Storage" not in u.usage_type and "BoxUsage" not in u.usage_type else 1.0
            qty = u.daily * factor * max(0.0, rng.gauss(1.0, noise)) * spike.get((d, u.env, u.service), 1.0)
            quantity = _q(qty)
            cost = (quantity * u.price).quantize(Decimal("0.00000001"), rounding=ROUND_HALF_EVEN)
            tagged = not (u.env == "dev" and u.service == "search")  # a dev search node nobody tagged
            yield Item(d, u, quantity, cost, cost, cost, "Usage", tagged, f"{u.usage_type} in {u.region}")
        if d.day == 10:  # a promotional credit: negative cost
            cr = Usage("prod", "api", "AWS Lambda", "AWSLambda", "Compute", "", "", Decimal(0), 0)
            v = Decimal("-25.00")
            yield Item(d, cr, Decimal(0), v, v, Decimal(0), "Credit", True, "AWS promotional credit")
        if (d + timedelta(days=1)).day == 1:  # the month's tax, on its last day
            tx = Usage("prod", "api", "Tax", "Tax", "Other", "", "", Decimal(0), 0, region="")
            v = Decimal("31.50")
            yield Item(d, tx, Decimal(0), v, v, v, "Tax", False, "VAT")


def _month_bounds(d: date) -> tuple[date, date]:
    first = d.replace(day=1)
    nxt = (first + timedelta(days=32)).replace(day=1)
    return first, nxt


def _ts(d: date) -> str:
    return f"{d.isoformat()}T00:00:00Z"


def focus_row(it: Item) -> list[str]:
    u = it.usage
    first, nxt = _month_bounds(it.day)
    tags = json.dumps({"env": u.env, "service": u.service, "team": "platform"}, sort_keys=True) if it.tagged else "{}"
    unit_price = f"{u.price.normalize():f}" if u.price else ""
    return [
        "", f"{it.billed:f}", ACCOUNT, "platform", "USD", _ts(nxt), _ts(first), it.category, "", it.description,
        "Usage-Based" if it.category == "Usage" else "One-Time", _ts(it.day + timedelta(days=1)), _ts(it.day), "",
        f"{it.quantity:f}" if it.category == "Usage" else "", u.unit, f"{it.billed:f}", unit_price, f"{it.effective:f}",
        "Amazon Web Services EMEA SARL", f"{it.list_cost:f}", unit_price, "Standard" if it.category == "Usage" else "",
        f"{it.quantity:f}" if it.category == "Usage" else "", u.unit, "AWS", "AWS", u.region, u.region, u.resource, u.resource,
        "", u.category, u.service_name, "", "", "", ACCOUNT, "platform", tags, u.usage_type,
    ]


_CUR_TYPE = {"Usage": "Usage", "Credit": "Credit", "Tax": "Tax"}


def cur_row(it: Item) -> list[str]:
    u = it.usage
    first, nxt = _month_bounds(it.day)
    tags = json.dumps({"user_env": u.env, "user_service": u.service}, sort_keys=True) if it.tagged else "{}"
    product = json.dumps({"product_name": u.service_name, "region": u.region}, sort_keys=True) if u.service_name != "Tax" else "{}"
    return [
        "Anniversary", _ts(first), _ts(nxt), ACCOUNT, ACCOUNT, _CUR_TYPE[it.category], _ts(it.day), _ts(it.day + timedelta(days=1)),
        u.product_code, u.usage_type, "", u.resource, f"{it.quantity:f}", "USD", f"{u.price.normalize():f}" if u.price else "",
        f"{it.billed:f}", f"{it.billed:f}", it.description, u.unit, f"{it.list_cost:f}", product,
        u.region if u.region not in ("global", "") else "", tags, "", "",
    ]


def write_csv(out: TextIO, kind: str, rows: Iterable[Item]) -> int:
    """Write FOCUS (``focus``) or CUR 2.0 (``cur2``) CSV; returns the number of line items."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(FOCUS_COLUMNS if kind == "focus" else CUR_COLUMNS)
    conv = focus_row if kind == "focus" else cur_row
    n = 0
    for it in rows:
        w.writerow(conv(it))
        n += 1
    return n


def parse_spike(text: str) -> Spike:
    """``2026-10-14:prod:api:4`` -> a Spike."""
    parts = text.split(":")
    if len(parts) != 4:
        raise ValueError(f"--cost-spike {text!r}: write DAY:ENV:SERVICE:FACTOR, like 2026-10-14:prod:api:4")
    try:
        return Spike(date.fromisoformat(parts[0]), parts[1], parts[2], float(parts[3]))
    except ValueError:
        raise ValueError(f"--cost-spike {text!r}: the day is YYYY-MM-DD and the factor a number") from None


def simulate_costs(kind: str, from_: str | None, to: str | None, out: str | None, seed: int, spikes: tuple[str, ...], now: object, json_mode: bool) -> int:
    """``vigil simulate --costs``: days ``[from, to)`` of line items to a file or stdout."""
    import sys

    from vigil.errors import UsageError

    if not from_ or not to:
        raise UsageError("--costs needs --from DAY and --to DAY", hint="like --costs focus --from 2026-10-01 --to 2026-11-01 --out costs.csv")
    try:
        start, end = date.fromisoformat(from_[:10]), date.fromisoformat(to[:10])
    except ValueError:
        raise UsageError("--from/--to with --costs are days, YYYY-MM-DD") from None
    if end <= start or (end - start).days > 3660:
        raise UsageError("--to must be after --from, at most 10 years later")
    try:
        sp = [parse_spike(s) for s in spikes]
    except ValueError as e:
        raise UsageError(str(e)) from None
    rows = items(start, (end - start).days, seed=seed, spikes=sp)
    if out is None or out == "-":
        n = write_csv(sys.stdout, kind, rows)
        sys.stdout.flush()
    else:
        try:
            with open(out, "w", newline="") as f:
                n = write_csv(f, kind, rows)
        except OSError as e:
            raise UsageError(f"cannot write {out}: {e.strerror}") from None
    summary = {"costs": kind, "from": start.isoformat(), "to": end.isoformat(), "line_items": n, "seed": seed, "output": out or "-"}
    print(json.dumps(summary) if json_mode else f"wrote {n:,} {kind} cost line items, {start} to {end}", file=sys.stderr)
    return 0

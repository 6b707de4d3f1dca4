"""Cost line items to daily rows: FOCUS columns, AWS CUR 2.0 mapped to them, checked row by row.

Pure: a :class:`Mapper` is built from a file's header and turns each row (a list of strings) into
its key and amounts, or a rejection naming the column and what is wrong with it. :class:`Rollup`
sums the accepted rows per scope, day and {env, service, ServiceName, region, usage type, charge
category} in ``Decimal``, exactly; amounts become integers of 1e-9 of the currency only once per
summed row.

FOCUS (1.0 to 1.3): BilledCost, EffectiveCost, ListCost, ChargePeriodStart, ChargeCategory,
BillingCurrency, BillingAccountId, BillingPeriodStart, ServiceName, RegionId, ConsumedQuantity,
ConsumedUnit, Tags (a JSON object), and ProviderName (``ServiceProviderName`` from 1.3).

CUR 2.0, as the FinOps Foundation's converters map it: BilledCost is
``line_item_net_unblended_cost``, falling back to ``line_item_unblended_cost``; EffectiveCost is the
amortized cost (a Savings Plan's or reservation's effective cost for covered usage, the unused part
of a commitment for its recurring fee, 0 for the negation and upfront lines); ChargePeriodStart is
``line_item_usage_start_date``; the tags are ``resource_tags`` (a map, ``user_`` keys) or the
legacy ``resource_tags_user_*`` columns.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Callable, Sequence

NANO = Decimal("1e-9")
MICRO = Decimal("1e-6")
ZERO = Decimal(0)
MAX_REJECTIONS_LISTED = 100

CHARGE_CATEGORIES = ("Usage", "Purchase", "Tax", "Credit", "Adjustment")

FOCUS_REQUIRED = ("BilledCost", "EffectiveCost", "ChargePeriodStart", "ChargeCategory", "BillingCurrency", "BillingPeriodStart", "ServiceName")
CUR_REQUIRED = ("line_item_unblended_cost", "line_item_usage_start_date", "line_item_line_item_type", "bill_billing_period_start_date")

# CUR line item types -> FOCUS ChargeCategory
CUR_CATEGORY = {
    "Usage": "Usage",
    "DiscountedUsage": "Usage",
    "SavingsPlanCoveredUsage": "Usage",
    "SavingsPlanNegation": "Usage",
    "Tax": "Tax",
    "Credit": "Credit",
    "Refund": "Credit",
    "BundledDiscount": "Credit",
    "Discount": "Credit",
    "EdpDiscount": "Credit",
    "PrivateRateDiscount": "Credit",
    "SavingsPlanRecurringFee": "Purchase",
    "SavingsPlanUpfrontFee": "Purchase",
    "RIFee": "Purchase",
    "Fee": "Purchase",
}


def to_nano(d: Decimal) -> int:
    return int(d.quantize(NANO, rounding=ROUND_HALF_EVEN).scaleb(9))


def to_micro(d: Decimal) -> int:
    return int(d.quantize(MICRO, rounding=ROUND_HALF_EVEN).scaleb(6))


def from_nano(n: int) -> Decimal:
    return Decimal(n).scaleb(-9)


def detect_format(header: Sequence[str]) -> str | None:
    """``focus`` or ``cur2`` from a header, None when it is neither."""
    cols = set(header)
    if "BilledCost" in cols and "ChargePeriodStart" in cols:
        return "focus"
    if "line_item_unblended_cost" in cols or "line_item_usage_start_date" in cols:
        return "cur2"
    return None


class RowError(ValueError):
    """One row cannot be read: ``column`` says which value."""

    def __init__(self, column: str | None, message: str) -> None:
        super().__init__(message)
        self.column = column


@dataclass(frozen=True)
class Rejection:
    line: int
    error: str

    def to_dict(self) -> dict:
        return {"line": self.line, "error": self.error}


@dataclass
class Attribution:
    """How tags become an environment and a service (from the spec's ``costs.tags``)."""

    env_keys: tuple[str, ...] = ("env", "environment")
    service_keys: tuple[str, ...] = ("service", "app")
    env_values: dict[str, str] = field(default_factory=lambda: {"production": "prod", "staging": "stage", "development": "dev"})

    @classmethod
    def from_spec(cls, costs: Any) -> "Attribution":
        if costs is None:
            return cls()
        t = costs.tags
        return cls(tuple(t.env), tuple(t.service), {k.lower(): v for k, v in t.env_values.items()})

    def __post_init__(self) -> None:
        self._env = [k.lower() for k in self.env_keys]
        self._svc = [k.lower() for k in self.service_keys]
        self._values = {k.lower(): v for k, v in self.env_values.items()}
        self._cache: dict[str, tuple[str, str]] = {}

    def of_pairs(self, pairs: dict[str, Any]) -> tuple[str, str]:
        low: dict[str, str] = {}
        for k, v in pairs.items():
            if v is None or isinstance(v, (dict, list)):
                continue
            key = str(k).lower()
            if key.startswith("user_"):  # CUR: user-defined tags are user_<key>
                key = key[5:]
            elif key.startswith("user:"):  # Cost Explorer / legacy CUR spelling
                key = key[5:]
            low.setdefault(key, str(v).strip())
        env = next((low[k] for k in self._env if low.get(k)), "")
        svc = next((low[k] for k in self._svc if low.get(k)), "")
        env = self._values.get(env.lower(), env.lower())
        return env[:64], svc[:128]

    def of_json(self, text: str) -> tuple[str, str]:
        """(env, service) of a tags JSON object; raises RowError when it is not one."""
        hit = self._cache.get(text)
        if hit is not None:
            return hit
        s = text.strip()
        if not s:
            out = ("", "")
        else:
            try:
                obj = json.loads(s)
            except ValueError:
                raise RowError("Tags", f"not a JSON object: {_clip(text)}") from None
            if not isinstance(obj, dict):
                raise RowError("Tags", f"must be a JSON object of keys and values, not {type(obj).__name__}")
            out = self.of_pairs(obj)
        if len(self._cache) < 100_000:
            self._cache[text] = out
        return out


_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UTC_TIME = re.compile(r"[T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?(Z|\+00:00|\+0000)?")
_days_ok: dict[str, bool] = {}


def day_of(text: str, column: str) -> str:
    """The UTC day (YYYY-MM-DD) of a FOCUS/CUR date-time: ``2026-03-01T00:00:00Z``,
    ``2026-03-01 00:00:00``, ``2026-03-01T00:00:00.000+00:00``, ``2026-03-01``."""
    s = text.strip()
    head = s[:10]
    ok = _days_ok.get(head)
    if ok is None:
        ok = bool(_DAY.match(head))
        if ok:
            try:
                date.fromisoformat(head)
            except ValueError:
                ok = False
        if len(_days_ok) < 100_000:
            _days_ok[head] = ok
    if not ok:
        raise RowError(column, f"not a date-time: {_clip(text)}" if s else "is empty")
    rest = s[10:]
    if not rest or _UTC_TIME.fullmatch(rest):
        return head
    try:
        dt = datetime.fromisoformat(s.replace(" ", "T"))
    except ValueError:
        raise RowError(column, f"not a date-time: {_clip(text)}") from None
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc)
    return dt.date().isoformat()


def number(text: str, column: str, *, required: bool = True) -> Decimal:
    s = text.strip() if text else ""
    if not s:
        if required:
            raise RowError(column, "is empty (a cost column must hold a number)")
        return ZERO
    try:
        d = Decimal(s)
    except InvalidOperation:
        raise RowError(column, f"not a number: {_clip(text)}") from None
    if not d.is_finite():
        raise RowError(column, f"not a finite number: {_clip(text)}")
    if d.adjusted() > 14:
        raise RowError(column, f"{_clip(text)} is out of range")
    return d


def _clip(s: str, n: int = 60) -> str:
    s = str(s)
    return repr(s if len(s) <= n else s[:n] + "...")


@dataclass(frozen=True)
class Line:
    """One checked line item."""

    scope: str
    day: str
    env: str
    service: str
    service_name: str
    region: str
    usage_type: str
    category: str
    billed: Decimal
    effective: Decimal
    list_cost: Decimal
    quantity: Decimal
    unit: str
    currency: str


class Mapper:
    """Reads one format's rows by column position, built once from the header."""

    def __init__(self, header: Sequence[str], kind: str, attribution: Attribution, currency: str | None = None) -> None:
        self.kind = kind
        self.attr = attribution
        self.currency = currency
        self.header = [h.strip().lstrip("\ufeff") for h in header]
        self.ix = {h: i for i, h in enumerate(self.header)}
        required = FOCUS_REQUIRED if kind == "focus" else CUR_REQUIRED
        missing = [c for c in required if c not in self.ix]
        if missing:
            raise RowError(None, f"the header lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
        self.read: Callable[[Sequence[str]], Line] = self._focus if kind == "focus" else self._cur
        self._tag_cols = [(h[len("resource_tags_"):], i) for h, i in self.ix.items() if h.startswith("resource_tags_")]

    def _get(self, row: Sequence[str], col: str) -> str:
        i = self.ix.get(col)
        if i is None or i >= len(row):
            return ""
        v = row[i]
        if v is None or v == "NULL":  # a SQL export's null (the FOCUS sample data writes NULL unquoted)
            return ""
        return str(v)

    def _check_width(self, row: Sequence[str]) -> None:
        if len(row) != len(self.header):
            raise RowError(None, f"has {len(row)} fields; the header has {len(self.header)}")

    def _currency(self, cur: str) -> str:
        cur = cur.strip()
        if not re.fullmatch(r"[A-Z]{3}", cur):
            raise RowError("BillingCurrency" if self.kind == "focus" else "line_item_currency_code", f"not an ISO 4217 currency: {_clip(cur)}")
        if self.currency is not None and cur != self.currency:
            raise RowError(
                "BillingCurrency" if self.kind == "focus" else "line_item_currency_code",
                f"is {cur}; the spec's costs.currency is {self.currency} (vigil does not convert currencies)",
            )
        return cur

    def _focus(self, row: Sequence[str]) -> Line:
        self._check_width(row)
        g = self._get
        cat = g(row, "ChargeCategory").strip()
        if cat not in CHARGE_CATEGORIES:
            raise RowError("ChargeCategory", f"{_clip(cat)} is not one of {', '.join(CHARGE_CATEGORIES)}")
        billed = number(g(row, "BilledCost"), "BilledCost")
        effective = number(g(row, "EffectiveCost"), "EffectiveCost")
        list_cost = number(g(row, "ListCost"), "ListCost", required=False)
        qty = number(g(row, "ConsumedQuantity"), "ConsumedQuantity", required=False)
        day = day_of(g(row, "ChargePeriodStart"), "ChargePeriodStart")
        period = day_of(g(row, "BillingPeriodStart"), "BillingPeriodStart")
        cur = self._currency(g(row, "BillingCurrency"))
        env, svc = self.attr.of_json(g(row, "Tags"))
        provider = (g(row, "ServiceProviderName") or g(row, "ProviderName") or g(row, "InvoiceIssuerName")).strip()
        account = g(row, "BillingAccountId").strip()
        sname = g(row, "ServiceName").strip()
        if not sname:
            raise RowError("ServiceName", "is empty")
        region = (g(row, "RegionId") or g(row, "Region")).strip()
        utype = (g(row, "x_UsageType") or g(row, "SkuMeter") or g(row, "ServiceSubcategory")).strip()
        return Line(
            f"focus:{provider[:60]}:{account[:80]}:{period}", day, env, svc, sname[:200], region[:64], utype[:200], cat,
            billed, effective, list_cost, qty, g(row, "ConsumedUnit").strip()[:64], cur,
        )

    def _cur(self, row: Sequence[str]) -> Line:
        self._check_width(row)
        g = self._get
        ltype = g(row, "line_item_line_item_type").strip()
        cat = CUR_CATEGORY.get(ltype)
        if cat is None:
            raise RowError("line_item_line_item_type", f"{_clip(ltype)} is not a CUR line item type")
        unblended = number(g(row, "line_item_unblended_cost"), "line_item_unblended_cost")
        net_text = g(row, "line_item_net_unblended_cost")
        billed = number(net_text, "line_item_net_unblended_cost") if net_text.strip() else unblended
        effective = self._effective(row, ltype, billed)
        list_cost = number(g(row, "pricing_public_on_demand_cost"), "pricing_public_on_demand_cost", required=False)
        qty = number(g(row, "line_item_usage_amount"), "line_item_usage_amount", required=False)
        day = day_of(g(row, "line_item_usage_start_date"), "line_item_usage_start_date")
        period = day_of(g(row, "bill_billing_period_start_date"), "bill_billing_period_start_date")
        cur = self._currency(g(row, "line_item_currency_code") or "USD")
        env, svc = self._cur_tags(row)
        product = self._product(row)
        sname = (product.get("product_name") or g(row, "product_product_name") or g(row, "line_item_product_code")).strip()
        if not sname:
            sname = "(no product)" if cat in ("Tax", "Credit", "Purchase") else ""
        if not sname:
            raise RowError("line_item_product_code", "is empty (and no product name)")
        region = (g(row, "product_region_code") or product.get("region") or g(row, "product_region")).strip()
        account = g(row, "bill_payer_account_id").strip()
        return Line(
            f"cur2:aws:{account[:80]}:{period}", day, env, svc, sname[:200], region[:64], g(row, "line_item_usage_type").strip()[:200],
            cat, billed, effective, list_cost, qty, g(row, "pricing_unit").strip()[:64], cur,
        )

    def _effective(self, row: Sequence[str], ltype: str, billed: Decimal) -> Decimal:
        g = self._get
        if ltype == "SavingsPlanCoveredUsage":
            return number(g(row, "savings_plan_savings_plan_effective_cost"), "savings_plan_savings_plan_effective_cost", required=False)
        if ltype == "DiscountedUsage":
            return number(g(row, "reservation_effective_cost"), "reservation_effective_cost", required=False)
        if ltype == "SavingsPlanRecurringFee":
            total = number(g(row, "savings_plan_total_commitment_to_date"), "savings_plan_total_commitment_to_date", required=False)
            used = number(g(row, "savings_plan_used_commitment"), "savings_plan_used_commitment", required=False)
            return total - used
        if ltype in ("SavingsPlanNegation", "SavingsPlanUpfrontFee"):
            return ZERO
        if ltype == "RIFee":
            a = number(g(row, "reservation_unused_amortized_upfront_fee_for_billing_period"), "reservation_unused_amortized_upfront_fee_for_billing_period", required=False)
            b = number(g(row, "reservation_unused_recurring_fee"), "reservation_unused_recurring_fee", required=False)
            return a + b
        if ltype == "Fee" and g(row, "reservation_reservation_a_r_n").strip():
            return ZERO  # a reservation's upfront payment: amortized over its term by the RIFee/DiscountedUsage lines
        return billed

    def _product(self, row: Sequence[str]) -> dict:
        text = self._get(row, "product").strip()
        if not text:
            return {}
        try:
            obj = json.loads(text)
        except ValueError:
            raise RowError("product", f"not a JSON map: {_clip(text)}") from None
        return obj if isinstance(obj, dict) else {}

    def _cur_tags(self, row: Sequence[str]) -> tuple[str, str]:
        text = self._get(row, "resource_tags")
        if text.strip():
            try:
                return self.attr.of_json(text)
            except RowError as e:
                raise RowError("resource_tags", str(e)) from None
        if self._tag_cols:
            return self.attr.of_pairs({k: row[i] for k, i in self._tag_cols if i < len(row) and row[i]})
        return "", ""


@dataclass
class Rollup:
    """Accepted lines summed per scope and key; rejections with their line numbers."""

    sums: dict[tuple, list] = field(default_factory=dict)
    read: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    untagged_billed: Decimal = ZERO
    untagged_rows: int = 0
    days: dict[str, list[str]] = field(default_factory=dict)  # scope -> [first, last]

    def add(self, ln: Line) -> None:
        self.read += 1
        key = (ln.scope, ln.day, ln.env, ln.service, ln.service_name, ln.region, ln.usage_type, ln.category)
        s = self.sums.get(key)
        if s is None:
            self.sums[key] = [ln.billed, ln.effective, ln.list_cost, ln.quantity, 1, ln.unit, ln.currency]
        else:
            s[0] += ln.billed
            s[1] += ln.effective
            s[2] += ln.list_cost
            s[3] += ln.quantity
            s[4] += 1
        if not ln.env or not ln.service:
            self.untagged_rows += 1
            self.untagged_billed += ln.billed
        span = self.days.get(ln.scope)
        if span is None:
            self.days[ln.scope] = [ln.day, ln.day]
        else:
            if ln.day < span[0]:
                span[0] = ln.day
            if ln.day > span[1]:
                span[1] = ln.day

    def reject(self, line: int, error: str) -> None:
        self.read += 1
        self.rejected += 1
        if len(self.rejections) < MAX_REJECTIONS_LISTED:
            self.rejections.append(Rejection(line, error))

    @property
    def scopes(self) -> list[str]:
        return sorted(self.days)

    def billed(self) -> Decimal:
        return sum((v[0] for v in self.sums.values()), ZERO)

    def rows(self) -> list[dict]:
        """The summed rows as the table's columns (amounts as integers)."""
        out = []
        for (scope, day, env, svc, sname, region, utype, cat), (b, e, lc, q, n, unit, cur) in self.sums.items():
            out.append({
                "scope": scope, "day": day, "env": env, "service": svc, "service_name": sname, "region": region,
                "usage_type": utype, "charge_category": cat, "billed_nano": to_nano(b), "effective_nano": to_nano(e),
                "list_nano": to_nano(lc), "quantity_micro": to_micro(q), "unit": unit, "currency": cur, "line_items": n,
            })
        return out


def read_rows(rows: Any, mapper: Mapper, rollup: Rollup) -> Rollup:
    """Check and sum ``(line number, fields)`` pairs into ``rollup``."""
    read = mapper.read
    add = rollup.add
    for n, fields in rows:
        try:
            ln = read(fields)
        except RowError as e:
            rollup.reject(n, f"{e.column}: {e}" if e.column else str(e))
            continue
        add(ln)
    return rollup


# -- data transfer -----------------------------------------------------------------------------------

_INTER_REGION = re.compile(r"^[A-Z]{2,4}\d?-[A-Z]{2,4}\d?-AWS-(In|Out)-(Bytes|ABytes)", re.I)


def transfer_class(service_name: str, usage_type: str) -> str | None:
    """``edge`` (CDN delivery), ``inter-region``, ``internet``, ``intra-region``, or None when the
    line is not data transfer. AWS usage types: ``EU-DataTransfer-Out-Bytes`` under CloudFront is
    edge, ``EUW1-USE1-AWS-Out-Bytes`` inter-region, ``EUW1-DataTransfer-Out-Bytes`` internet,
    ``EUW1-DataTransfer-Regional-Bytes`` intra-region; FOCUS ServiceSubcategory-style names too."""
    u = usage_type or ""
    s = (service_name or "").lower()
    low = u.lower()
    if _INTER_REGION.match(u) or "inter-region" in low or "interregion" in low:
        return "inter-region"
    if "datatransfer-regional" in low or "intra-region" in low:
        return "intra-region"
    is_transfer = "datatransfer" in low or "data transfer" in low or "-out-bytes" in low or "-in-bytes" in low
    if not is_transfer:
        return None
    if "cloudfront" in s or "cdn" in s or "cloudfront" in low:
        return "edge"
    return "internet"

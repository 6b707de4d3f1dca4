"""PII recognizers over column names and sampled values (pure).

Value recognizers are patterns with a validation step, in the manner of presidio-analyzer's
pattern recognizers (regex plus checksum), written here because presidio-analyzer cannot be used
as the house requires: it installs spaCy (a 390 MB environment), and its e-mail recognizer calls
tldextract, which fetches the public suffix list from the internet on first use. What each checks:

* ``email``: local@domain.tld (RFC 5321 shapes, a 2-63 letter TLD);
* ``credit_card``: 13-19 digits (spaces or dashes allowed) with a valid Luhn checksum and a known
  issuer prefix (Visa, Mastercard, Amex, Discover, Diners, JCB, UnionPay, Maestro);
* ``iban``: a country code, two check digits and the country's length, valid mod-97 (ISO 13616);
* ``us_ssn``: AAA-GG-SSSS without the invalid ranges (000, 666, 9xx areas; 00 group; 0000 serial)
  and without the famous advertising numbers (078-05-1120, 219-09-9999);
* ``phone``: an international number (+ and 8-15 digits, E.164) with separators;
* ``ip_address``: an IPv4 or IPv6 address (personal data under the GDPR);
* ``uk_nino``: a UK National Insurance number (prefix rules, suffix A-D).

Name recognizers match column names (``email``, ``phone``, ``ssn``, ``birth``, ``first_name``, ...)
and say which class the column should have.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

_EMAIL = re.compile(r"(?i)^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_EMAIL_IN = re.compile(r"(?i)[a-z0-9._%+-]+@(?:[a-z0-9-]+\.)+[a-z]{2,63}")
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_SSN = re.compile(r"\b(\d{3})-(\d{2})-(\d{4})\b")
_PHONE = re.compile(r"(?<![\w+])\+\d[\d\s().-]{7,20}\d(?!\w)")
_NINO = re.compile(r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")

IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20, "ES": 24, "FI": 18,
    "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27,
    "MT": 31, "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TR": 26, "VA": 22,
}
CARD_PREFIXES = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|6011|65|64[4-9]|30[0-5]|36|38|35|62|50|5[6-8]|6[0-9])")


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    s = text.replace(" ", "").upper()
    if len(s) < 15 or IBAN_LENGTHS.get(s[:2]) != len(s) or not s[2:4].isdigit():
        return False
    moved = s[4:] + s[:4]
    num = "".join(str(int(c, 36)) for c in moved)
    return int(num) % 97 == 1


def _card(value: str) -> bool:
    for m in _CARD.finditer(value):
        d = re.sub(r"[ -]", "", m.group())
        if 13 <= len(d) <= 19 and CARD_PREFIXES.match(d) and luhn(d) and len(set(d)) > 1:
            return True
    return False


def _ssn(value: str) -> bool:
    for m in _SSN.finditer(value):
        a, g, s = m.groups()
        if a in ("000", "666") or a[0] == "9" or g == "00" or s == "0000" or m.group() in ("078-05-1120", "219-09-9999"):
            continue
        return True
    return False


def _phone(value: str) -> bool:
    for m in _PHONE.finditer(value):
        d = re.sub(r"\D", "", m.group())
        if 8 <= len(d) <= 15:
            return True
    return False


def _ip(value: str) -> bool:
    v = value.strip()
    if not v or len(v) > 45:
        return False
    try:
        ipaddress.ip_address(v.split("%")[0])
        return True
    except ValueError:
        return False


def _email(value: str) -> bool:
    v = value.strip()
    return bool(_EMAIL.match(v)) if len(v) <= 254 and " " not in v else bool(_EMAIL_IN.search(v))


VALUE_RECOGNIZERS = {
    "email": _email,
    "credit_card": _card,
    "iban": lambda v: any(iban_valid(m.group()) for m in _IBAN.finditer(v.upper())),
    "us_ssn": _ssn,
    "phone": _phone,
    "ip_address": _ip,
    "uk_nino": lambda v: bool(_NINO.search(v.upper())),
}
SENSITIVE_ENTITIES = {"credit_card", "iban", "us_ssn", "uk_nino"}


@dataclass(frozen=True)
class NameRule:
    entity: str
    pattern: re.Pattern[str]
    suggests: str  # pii | sensitive


NAME_RULES = [
    NameRule("email", re.compile(r"(?:^|_)e_?mail(?:_|$|address)"), "pii"),
    NameRule("phone", re.compile(r"(?:^|_)(?:phone|mobile|msisdn|tel|telephone|fax)(?:_|$|number)"), "pii"),
    NameRule("name", re.compile(r"(?:^|_)(?:first|last|full|given|family|middle|maiden)_?name(?:_|$)|(?:^|_)surname(?:_|$)"), "pii"),
    NameRule("birth_date", re.compile(r"(?:^|_)(?:dob|birth_?date|date_of_birth|birthday)(?:_|$)"), "pii"),
    NameRule("address", re.compile(r"(?:^|_)(?:street|address(?:_line)?\d?|postcode|postal_code|zip_?code|city)(?:_|$)"), "pii"),
    NameRule("ip_address", re.compile(r"(?:^|_)(?:ip|ip_?addr(?:ess)?|remote_addr|client_ip)(?:_|$)"), "pii"),
    NameRule("geo", re.compile(r"(?:^|_)(?:lat|latitude|lon|lng|longitude|geo_?location)(?:_|$)"), "pii"),
    NameRule("national_id", re.compile(r"(?:^|_)(?:ssn|social_security(?:_number)?|national_id|nino|tax_id|passport(?:_no|_number)?|driver_?licen[cs]e)(?:_|$)"), "sensitive"),
    NameRule("payment", re.compile(r"(?:^|_)(?:card_?(?:number|no)|cc_?(?:number|num)|pan|iban|bank_account|account_number|cvv|cvc)(?:_|$)"), "sensitive"),
    NameRule("credential", re.compile(r"(?:^|_)(?:password|passwd|password_hash|secret|api_key|token|totp_secret|private_key)(?:_|$)"), "sensitive"),
    NameRule("health", re.compile(r"(?:^|_)(?:diagnosis|medical|health|allergy|medication)(?:_|$)"), "sensitive"),
]


def name_entities(column: str) -> list[NameRule]:
    c = column.lower()
    return [r for r in NAME_RULES if r.pattern.search(c)]


def value_entities(values: list[str], *, min_share: float = 0.3, min_hits: int = 2) -> dict[str, tuple[int, int]]:
    """Entities found in at least ``min_share`` of the non-empty sampled values (and ``min_hits`` of
    them): entity -> (hits, non-empty values)."""
    vals = [v for v in values if v is not None and str(v).strip()]
    n = len(vals)
    out: dict[str, tuple[int, int]] = {}
    if not n:
        return out
    for ent, fn in VALUE_RECOGNIZERS.items():
        hits = sum(1 for v in vals if fn(str(v)[:4096]))
        if hits >= min_hits and hits / n >= min_share:
            out[ent] = (hits, n)
    return out

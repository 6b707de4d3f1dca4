"""Billing client."""
import stripe

stripe.api_key = "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"


def charge(amount_cents: int, customer: str) -> str:
    return stripe.Charge.create(amount=amount_cents, customer=customer, currency="eur").id

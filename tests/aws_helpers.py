"""Shared by the AWS tests: moto's account (AWS cannot run here) and injected AWS errors.

moto does not model IAM refusals or throttling, so ``inject`` answers a client's next calls of one
operation with AWS error codes at botocore's ``before-call`` hook; the code under test sees the same
``ClientError`` a real AWS answer would raise.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import pytest
from moto import mock_aws


class _Resp:
    def __init__(self, status: int) -> None:
        self.status_code = status
        self.headers: dict = {}
        self.content = b""


def inject(client, operation: str, codes: list[str], status: int = 400) -> list[str]:
    """Answer the next len(codes) calls of ``operation`` with these AWS error codes, then let calls through."""
    left = list(codes)
    seen: list[str] = []

    def handler(**_kw):
        if not left:
            return None
        code = left.pop(0)
        seen.append(code)
        return _Resp(status), {"Error": {"Code": code, "Message": f"injected {code}"}, "ResponseMetadata": {"HTTPStatusCode": status}}

    client.meta.events.register(f"before-call.{client.meta.service_model.service_id.hyphenize()}.{operation}", handler)
    return seen


@contextlib.contextmanager
def moto_account(monkeypatch: pytest.MonkeyPatch, region: str) -> Iterator[None]:
    """moto's fake account with test credentials; nothing from the real AWS environment leaks in."""
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
                 "AWS_DEFAULT_REGION": region}.items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(k, raising=False)
    with mock_aws():
        yield

"""boto3 clients, one bounded retry policy, and AWS errors turned into vigil errors.

Every AWS call goes through :class:`Aws`. It retries throttling and transient failures with
capped exponential backoff and full jitter (``sleep`` and ``rng`` injected, so tests run on no
real time), and turns what is left into an :class:`AwsError` (exit 3) that says what failed,
where, and what to do. botocore's own retries are off (``max_attempts=1``) so there is exactly one
retry policy to reason about.

Credentials and the region come from the standard AWS chain; nothing here reads them.
"""

from __future__ import annotations

import random
import time
from typing import Any, Callable

from vigil.errors import ExternalError

THROTTLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
        "ProvisionedThroughputExceededException",
        "BandwidthLimitExceeded",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
TRANSIENT_CODES = frozenset({"RequestTimeout", "RequestTimeoutException", "InternalError", "InternalFailure", "ServiceUnavailable", "503", "500"})
DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "AuthorizationError",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "ExpiredToken",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "AllAccessDisabled",
        "403",
    }
)
NOT_FOUND_CODES = frozenset(
    {
        "NoSuchBucket",
        "DBClusterNotFoundFault",
        "DBClusterSnapshotNotFoundFault",
        "DBInstanceNotFound",
        "DBInstanceNotFoundFault",
        "DBSubnetGroupNotFoundFault",
        "NotFoundException",
        "404",
    }
)
WRONG_REGION_CODES = frozenset({"301", "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"})
KMS_CODES = frozenset({"KMSKeyNotAccessibleFault", "InvalidKMSKeyFault", "KMSKeyNotAccessible", "KMS.NotFoundException", "NotFoundException"})

# S3 API operations whose IAM action is spelled differently
_S3_IAM = {
    "HeadBucket": "s3:ListBucket",
    "GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "PutBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
    "DeleteBucketLifecycle": "s3:PutLifecycleConfiguration",
    "GetObjectLockConfiguration": "s3:GetBucketObjectLockConfiguration",
    "PutObjectLockConfiguration": "s3:PutBucketObjectLockConfiguration",
}


class AwsError(ExternalError):
    """An AWS call failed. ``service``, ``operation`` and ``aws_code`` say which and how."""

    code = "aws"

    def __init__(self, message: str, *, hint: str | None = None, service: str = "", operation: str = "", aws_code: str = "") -> None:
        super().__init__(message, hint=hint)
        self.service = service
        self.operation = operation
        self.aws_code = aws_code

    def to_dict(self) -> dict:
        d = super().to_dict()
        d.update({"service": self.service, "operation": self.operation, "aws_code": self.aws_code})
        return d


class AwsAccessDenied(AwsError):
    code = "aws-access-denied"


class AwsThrottled(AwsError):
    code = "aws-throttled"


class AwsNotFound(AwsError):
    """The cluster, snapshot or bucket named does not exist in that account and region."""

    code = "aws-not-found"


class AwsKmsError(AwsError):
    code = "aws-kms"


def iam_action(service: str, operation: str) -> str:
    if service == "s3":
        return _S3_IAM.get(operation, f"s3:{operation}")
    return f"{service}:{operation}"


def make_client(service: str, region: str | None, *, endpoint_url: str | None = None, allow_link_local: bool = False) -> Any:
    """A boto3 client with the standard credential chain, botocore retries off (ours are on), bounded timeouts."""
    import boto3
    from botocore.config import Config

    if endpoint_url is not None:
        from vigil.dr.aws.endpoint import check_endpoint_resolves
        from vigil.errors import UsageError

        try:
            check_endpoint_resolves(endpoint_url, allow_link_local=allow_link_local)
        except ValueError as e:
            raise UsageError(str(e), hint="fix backups.s3.endpoint_url in the spec") from None
        except OSError as e:
            raise AwsError(
                f"cannot resolve the S3 endpoint {endpoint_url}: {e}",
                hint="check the host name in backups.s3.endpoint_url and this machine's DNS",
                service=service,
            ) from None
    cfg = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=60, user_agent_extra="vigil")
    kw: dict[str, Any] = {"config": cfg}
    if region:
        kw["region_name"] = region
    if endpoint_url:
        kw["endpoint_url"] = endpoint_url
    return boto3.session.Session().client(service, **kw)


ClientFactory = Callable[[str, "str | None"], Any]
"""``factory(service, region) -> boto3 client``; tests and the CLI pass one in."""


class Aws:
    """One boto3 client plus the house retry policy and error translation.

    ``call("create_db_cluster_snapshot", DBClusterIdentifier=...)`` returns the parsed response or
    raises :class:`AwsError`. ``max_attempts`` bounds tries of one call (5: about 8 s of backoff at
    most with the defaults).
    """

    def __init__(
        self,
        client: Any,
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 5,
        base_delay: float = 0.5,
        max_delay: float = 20.0,
        rng: random.Random | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts is at least 1")
        self.client = client
        self.sleep = sleep
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.rng = rng or random.Random()
        model = getattr(getattr(client, "meta", None), "service_model", None)
        self.service: str = model.service_name if model is not None else "aws"
        self.region = getattr(getattr(client, "meta", None), "region_name", None)
        self.attempts: list[tuple[str, str]] = []  # (operation, outcome code) of every retried attempt

    def paginate(self, method: str, key: str, **params: Any) -> list[dict]:
        """Every item under ``key`` across all pages, each page fetched with the retry policy."""
        items: list[dict] = []
        marker: str | None = None
        for _ in range(10_000):
            kw = dict(params)
            if marker:
                kw["Marker"] = marker
            page = self.call(method, **kw)
            items.extend(page.get(key, []))
            marker = page.get("Marker")
            if not marker:
                return items
        raise AwsError(f"{method}: more than 10000 pages; giving up", service=self.service, operation=method)

    def call(self, method: str, **params: Any) -> dict:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
            NoRegionError,
            PartialCredentialsError,
            ReadTimeoutError,
        )

        op = self._op_name(method)
        for attempt in range(1, self.max_attempts + 1):
            try:
                return getattr(self.client, method)(**params)
            except ClientError as e:
                err = e.response.get("Error", {}) or {}
                code = str(err.get("Code") or e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or "")
                msg = str(err.get("Message") or "")
                if (code in THROTTLE_CODES or code in TRANSIENT_CODES) and attempt < self.max_attempts:
                    self.attempts.append((op, code))
                    self.sleep(self._delay(attempt))
                    continue
                raise self._translate(op, code, msg, params, attempt) from None
            except (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError, ConnectTimeoutError) as e:
                if attempt < self.max_attempts:
                    self.attempts.append((op, type(e).__name__))
                    self.sleep(self._delay(attempt))
                    continue
                raise AwsError(
                    f"{self.service} {op} in {self.region or 'the default region'}: cannot reach AWS after {attempt} attempts: {e}",
                    hint="check the network path to AWS (proxy, VPC endpoint, DNS) and try again",
                    service=self.service,
                    operation=op,
                    aws_code=type(e).__name__,
                ) from None
            except (NoCredentialsError, PartialCredentialsError) as e:
                raise AwsAccessDenied(
                    f"{self.service} {op}: no usable AWS credentials ({e})",
                    hint="vigil uses the standard AWS credential chain: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY, or run with an instance/task role; credentials never go in the spec",
                    service=self.service,
                    operation=op,
                    aws_code=type(e).__name__,
                ) from None
            except NoRegionError:
                raise AwsError(
                    f"{self.service} {op}: no AWS region",
                    hint="set the region in the spec (backups.aurora.region, backups.s3.region) or AWS_REGION",
                    service=self.service,
                    operation=op,
                    aws_code="NoRegionError",
                ) from None
            except BotoCoreError as e:
                raise AwsError(f"{self.service} {op}: {e}", service=self.service, operation=op, aws_code=type(e).__name__) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, attempt: int) -> float:
        cap = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return self.rng.uniform(cap / 2, cap)

    def _op_name(self, method: str) -> str:
        try:
            return self.client.meta.method_to_api_mapping.get(method, method)
        except AttributeError:
            return method

    def _translate(self, op: str, code: str, msg: str, params: dict, attempt: int) -> AwsError:
        where = f"{self.service} {op} in {self.region or 'the default region'}"
        subject = _subject(params)
        head = f"{where}{' on ' + subject if subject else ''}"
        kw = {"service": self.service, "operation": op, "aws_code": code}
        if code in THROTTLE_CODES or code in TRANSIENT_CODES:
            return AwsThrottled(
                f"{head}: AWS kept refusing ({code}) after {attempt} attempts",
                hint="AWS is rate-limiting this account or having trouble; try again in a few minutes, "
                "or spread vigil's runs out (other tools may share the API rate limit)",
                **kw,
            )
        if code in DENIED_CODES:
            return AwsAccessDenied(
                f"{head}: access denied ({code}: {msg})",
                hint=f"the AWS identity in use lacks {iam_action(self.service, op)}"
                + (f" on {subject}" if subject else "")
                + "; grant it, or pick another identity with AWS_PROFILE (check which one with `aws sts get-caller-identity`)",
                **kw,
            )
        if code in KMS_CODES and ("kms" in msg.lower() or "KMS" in code):
            key = params.get("KmsKeyId", "")
            return AwsKmsError(
                f"{head}: the KMS key {key!r} cannot be used ({code}: {msg})",
                hint=f"a KMS key is regional: the key must exist and be enabled in {self.region}, and the identity in use "
                "needs kms:DescribeKey and kms:CreateGrant on it; for a cross-region copy use a key in the destination region",
                **kw,
            )
        if code in WRONG_REGION_CODES:
            return AwsError(
                f"{head}: the resource is in another region ({code}: {msg})",
                hint="set the right region in the spec (backups.s3.region, backups.aurora.region)",
                **kw,
            )
        if code in NOT_FOUND_CODES:
            return AwsNotFound(
                f"{head}: not found ({code}: {msg})",
                hint=f"check the name in the spec, the region ({self.region}) and the AWS account of the credentials in use",
                **kw,
            )
        return AwsError(f"{head}: {code}: {msg}", hint="see the AWS error above; --debug shows the traceback", **kw)


def _subject(params: dict) -> str:
    for k in ("Bucket", "DBClusterIdentifier", "SourceDBClusterIdentifier", "DBClusterSnapshotIdentifier",
              "SourceDBClusterSnapshotIdentifier", "DBInstanceIdentifier"):
        if k in params:
            return f"{params[k]}"
    return ""

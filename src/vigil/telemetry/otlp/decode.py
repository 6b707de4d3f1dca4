"""Reading an OTLP/HTTP request body: the encoding (``application/x-protobuf`` or
``application/json``), the compression (``gzip``, ``deflate`` or none) and the message.

Pure: bytes in, a protobuf message out, or an :class:`OtlpError` that says what is wrong. Limits:
the body is limited before and after decompression (a small gzip body cannot inflate past the
limit: inflation stops there), and nesting is limited by the protobuf runtime (a message nested
deeper than 100 levels, e.g. an attribute value of arrays in arrays, is a decode error).

OTLP/JSON differs from protobuf's standard JSON mapping in two ways (the OTLP specification,
"JSON Protobuf Encoding"): trace and span ids are hex strings, not base64, and unknown fields are
ignored. Both are handled here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zlib
from dataclasses import dataclass
from typing import Any, Literal

from vigil.errors import VigilError

Signal = Literal["traces", "metrics"]
Encoding = Literal["protobuf", "json"]

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


class OtlpError(VigilError):
    """A request the receiver refuses as a whole (nothing of it is stored)."""

    code = "otlp-bad-request"
    http_status = 400


class OtlpUnsupported(OtlpError):
    code = "otlp-unsupported-media-type"
    http_status = 415


class OtlpTooLarge(OtlpError):
    code = "payload-too-large"
    http_status = 413


@dataclass(frozen=True)
class Decoded:
    """A decoded request: the message, the encoding the answer must use, the SHA-256 of the
    decoded payload (the request's idempotency key is derived from it), and the payload: the
    message's binary protobuf (as received, or encoded from OTLP/JSON)."""

    message: Any
    encoding: Encoding
    digest: str
    data: bytes


def media_type(content_type: str | None) -> Encoding:
    """The encoding named by a Content-Type header (parameters such as charset ignored)."""
    mt = (content_type or "").split(";", 1)[0].strip().lower()
    if mt == PROTOBUF:
        return "protobuf"
    if mt == JSON:
        return "json"
    shown = repr(mt) if mt else "none"
    raise OtlpUnsupported(
        f"Content-Type {shown} is not an OTLP encoding",
        hint=f"send {PROTOBUF} (binary protobuf) or {JSON} (OTLP/JSON), as an OpenTelemetry exporter does",
    )


def inflate(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """The body without its Content-Encoding, never more than ``max_bytes`` (413 past that)."""
    enc = (content_encoding or "").strip().lower()
    if enc in ("", "identity", "none"):
        data = body
    elif enc in ("gzip", "x-gzip", "deflate"):
        data = _inflate(body, enc, max_bytes)
    else:
        raise OtlpUnsupported(
            f"Content-Encoding {enc!r} is not supported",
            hint="send the body uncompressed or with Content-Encoding: gzip (or deflate)",
        )
    if len(data) > max_bytes:
        raise OtlpTooLarge(f"the decoded body is over the limit of {max_bytes} bytes", hint="export smaller batches")
    return data


def _inflate(body: bytes, enc: str, max_bytes: int) -> bytes:
    wbits = 16 + zlib.MAX_WBITS if enc != "deflate" else zlib.MAX_WBITS
    out: list[bytes] = []
    size = 0
    rest = body
    try:
        while True:
            d = zlib.decompressobj(wbits)
            chunk = d.decompress(rest, max_bytes + 1 - size)
            size += len(chunk)
            out.append(chunk)
            if size > max_bytes:
                raise OtlpTooLarge(
                    f"the body inflates past the limit of {max_bytes} bytes", hint="export smaller batches"
                )
            if d.unconsumed_tail:  # stopped by the limit with input left
                raise OtlpTooLarge(
                    f"the body inflates past the limit of {max_bytes} bytes", hint="export smaller batches"
                )
            if not d.eof:
                raise OtlpError(f"the {enc} body is truncated", hint="send the whole compressed body")
            rest = d.unused_data
            if not rest or enc == "deflate":
                if rest:
                    raise OtlpError("the deflate body has bytes after its end", hint="send one deflate stream")
                break
    except zlib.error as e:
        raise OtlpError(f"the body is not valid {enc}: {e}", hint=f"send a {enc} body, or drop the Content-Encoding header") from None
    return b"".join(out)


def _message_class(signal: Signal) -> Any:
    if signal == "traces":
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        return ExportTraceServiceRequest
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    return ExportMetricsServiceRequest


def decode(body: bytes, *, signal: Signal, content_type: str | None, content_encoding: str | None, max_bytes: int) -> Decoded:
    """Decode an OTLP/HTTP export request (see the module doc)."""
    encoding = media_type(content_type)
    if len(body) > max_bytes:
        raise OtlpTooLarge(f"the body is {len(body)} bytes; the limit is {max_bytes}", hint="export smaller batches")
    data = inflate(body, content_encoding, max_bytes)
    cls = _message_class(signal)
    msg = cls()
    if encoding == "protobuf":
        from google.protobuf.message import DecodeError

        try:
            msg.ParseFromString(data)
        except (DecodeError, RecursionError, ValueError) as e:
            raise OtlpError(
                f"the body is not a valid {cls.__name__} in binary protobuf: {_short(e)}",
                hint=f"send an OTLP {signal} export request; its Content-Type must say how it is encoded",
            ) from None
        return Decoded(msg, encoding, hashlib.sha256(data).hexdigest(), data)
    parse_json(data, msg, signal)
    pb = msg.SerializeToString(deterministic=True)
    return Decoded(msg, encoding, hashlib.sha256(pb).hexdigest(), pb)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(data: bytes, msg: Any, signal: Signal) -> None:
    """OTLP/JSON into ``msg``: hex ids, unknown fields ignored, enums as numbers (names accepted)."""
    from google.protobuf import json_format

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise OtlpError(f"the JSON body is not UTF-8 (byte {e.start})", hint="send UTF-8 JSON") from None
    try:
        doc = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise OtlpError("the JSON body nests too deeply", hint="send an OTLP/JSON export request") from None
    except ValueError as e:
        raise OtlpError(f"the body is not valid JSON: {_short(e)}", hint="send an OTLP/JSON export request") from None
    if not isinstance(doc, dict):
        raise OtlpError("an OTLP/JSON export request is a JSON object", hint="send {\"resourceSpans\": [...]} or {\"resourceMetrics\": [...]}")
    try:
        _hex_ids(doc, signal)
        json_format.ParseDict(doc, msg, ignore_unknown_fields=True)
    except OtlpError:
        raise
    except (json_format.ParseError, RecursionError, ValueError, TypeError, AttributeError) as e:
        raise OtlpError(
            f"the JSON body is not a valid OTLP {signal} export request: {_short(e)}",
            hint="see the OTLP specification's JSON encoding: lowerCamelCase keys, hex trace and span ids, enums as numbers",
        ) from None


def _hex_to_b64(v: Any, where: str, size: int) -> str:
    if not isinstance(v, str):
        raise OtlpError(f"{where} must be a hex string, got {type(v).__name__}", hint="send ids as hex, e.g. \"5b8efff798038103d269b633813fc60c\"")
    if v == "":
        return ""
    try:
        raw = binascii.unhexlify(v)
    except (binascii.Error, ValueError):
        raise OtlpError(f"{where} {v[:40]!r} is not hex", hint="OTLP/JSON sends trace and span ids as hex strings") from None
    if len(raw) != size:
        raise OtlpError(f"{where} has {len(raw)} bytes; it must have {size}", hint="trace ids are 16 bytes (32 hex digits), span ids 8 (16)")
    return base64.b64encode(raw).decode("ascii")


def _items(d: Any, key: str, where: str) -> list:
    v = d.get(key) if isinstance(d, dict) else None
    if v is None:
        return []
    if not isinstance(v, list):
        raise OtlpError(f"{where}.{key} must be an array", hint="send an OTLP/JSON export request")
    return v


def _fix(obj: Any, where: str, fields: tuple[tuple[str, str, int], ...]) -> None:
    if not isinstance(obj, dict):
        return
    for camel, snake, size in fields:
        for k in (camel, snake):
            if k in obj and obj[k] is not None:
                obj[k] = _hex_to_b64(obj[k], f"{where}.{k}", size)


_SPAN_IDS = (("traceId", "trace_id", 16), ("spanId", "span_id", 8), ("parentSpanId", "parent_span_id", 8))
_LINK_IDS = (("traceId", "trace_id", 16), ("spanId", "span_id", 8))


def _hex_ids(doc: dict, signal: Signal) -> None:
    """Rewrite OTLP/JSON's hex ids as the base64 protobuf's JSON mapping reads."""
    if signal == "traces":
        for i, rs in enumerate(_items(doc, "resourceSpans", "")):
            for j, ss in enumerate(_items(rs, "scopeSpans", f"resourceSpans[{i}]")):
                for k, sp in enumerate(_items(ss, "spans", f"resourceSpans[{i}].scopeSpans[{j}]")):
                    w = f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}]"
                    _fix(sp, w, _SPAN_IDS)
                    for n, ln in enumerate(_items(sp, "links", w)):
                        _fix(ln, f"{w}.links[{n}]", _LINK_IDS)
        return
    for i, rm in enumerate(_items(doc, "resourceMetrics", "")):
        for j, sm in enumerate(_items(rm, "scopeMetrics", f"resourceMetrics[{i}]")):
            for k, m in enumerate(_items(sm, "metrics", f"resourceMetrics[{i}].scopeMetrics[{j}]")):
                if not isinstance(m, dict):
                    continue
                for kind in ("gauge", "sum", "histogram", "exponentialHistogram", "summary"):
                    body = m.get(kind)
                    w = f"resourceMetrics[{i}].scopeMetrics[{j}].metrics[{k}].{kind}"
                    for n, p in enumerate(_items(body, "dataPoints", w)):
                        for e, ex in enumerate(_items(p, "exemplars", f"{w}.dataPoints[{n}]")):
                            _fix(ex, f"{w}.dataPoints[{n}].exemplars[{e}]", _LINK_IDS)


def _short(e: BaseException) -> str:
    s = str(e).strip() or type(e).__name__
    return s if len(s) <= 300 else s[:300] + "..."


# -- answers ----------------------------------------------------------------------------------------


def response_body(signal: Signal, encoding: Encoding, rejected: int = 0, message: str = "") -> bytes:
    """An Export<signal>ServiceResponse: ``partial_success`` set only when something was rejected
    or there is a warning (the specification's full and partial success)."""
    if signal == "traces":
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse as R
    else:
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse as R
    r = R()
    if rejected or message:
        ps = r.partial_success
        if signal == "traces":
            ps.rejected_spans = rejected
        else:
            ps.rejected_data_points = rejected
        ps.error_message = message
    if encoding == "protobuf":
        return r.SerializeToString()
    if not (rejected or message):
        return b"{}"
    key = "rejectedSpans" if signal == "traces" else "rejectedDataPoints"
    return json.dumps({"partialSuccess": {key: str(rejected), "errorMessage": message}}).encode()


GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 413: 8, 415: 3, 429: 8, 500: 13, 502: 14, 503: 14}
"""google.rpc.Code of an HTTP status (the Status message's ``code``, informative only)."""


def status_body(encoding: Encoding, http_status: int, error: dict) -> bytes:
    """A google.rpc.Status for a failure. In JSON it also carries vigil's error shape under ``error``."""
    message = error.get("message", "")
    hint = error.get("hint")
    code = GRPC_CODES.get(http_status, 2)
    if encoding == "protobuf":
        from google.rpc.status_pb2 import Status

        text = f"{message} ({hint})" if hint else message
        return Status(code=code, message=text).SerializeToString()
    return json.dumps({"code": code, "message": message, "details": [], "error": error}).encode()

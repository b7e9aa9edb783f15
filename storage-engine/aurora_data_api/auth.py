"""Who is calling: AWS Signature Version 4, checked by signing the request again with botocore.

Why SigV4 and not a bearer token: boto3's ``rds-data`` client signs every request with SigV4 and cannot send
anything else without code changes, which is the point of the Data API. Why botocore: it is the reference
implementation of the signature (canonical request, string to sign, key derivation); checking means
computing the signature the caller should have sent, over exactly the headers it says it signed, and
comparing in constant time. A request older or newer than ``MAX_SKEW_SECONDS`` is refused (replays).
"""

from __future__ import annotations

import datetime
import hmac
import re
from collections.abc import Mapping

from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import Credentials  # type: ignore[import-untyped]

from aurora_data_api.wire import DataApiError

SERVICE = "rds-data"
MAX_SKEW_SECONDS = 300
_HEADER = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/"
    r"aws4_request, ?SignedHeaders=(?P<signed>[^,]+), ?Signature=(?P<signature>[0-9a-f]{64})$"
)


def denied(message: str) -> DataApiError:
    return DataApiError("ForbiddenException", message, 403)


def verify(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    keys: Mapping[str, str],
    now: datetime.datetime,
) -> str:
    """The access key id that signed this request; ``ForbiddenException`` otherwise. ``keys``: access key
    id -> secret access key. ``url`` is the URL as the caller addressed it (scheme, Host header, path)."""
    m = _HEADER.match(headers.get("Authorization", ""))
    if m is None:
        raise denied("missing or malformed SigV4 Authorization header")
    secret = keys.get(m.group("key"))
    if secret is None:
        raise denied(f"unknown access key {m.group('key')!r}")
    if m.group("service") != SERVICE:
        raise denied(f"signed for service {m.group('service')!r}, not {SERVICE!r}")
    stamp = headers.get("X-Amz-Date", "")
    try:
        signed_at = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
    except ValueError as err:
        raise denied("missing or malformed X-Amz-Date") from err
    if abs((now - signed_at).total_seconds()) > MAX_SKEW_SECONDS:
        raise denied("the signature has expired (X-Amz-Date too far from now)")
    signed = m.group("signed").split(";")
    lower = {k.lower(): v for k, v in headers.items()}
    request = AWSRequest(method=method, url=url, data=body, headers={h: lower.get(h, "") for h in signed})
    request.context["timestamp"] = stamp
    auth = SigV4Auth(Credentials(m.group("key"), secret), SERVICE, m.group("region"))
    canonical = auth.canonical_request(request)
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, m.group("signature")):
        raise denied("the request signature does not match (wrong secret key, or the request was altered)")
    return m.group("key")

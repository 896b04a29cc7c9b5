"""Turning botocore, aiohttp and s3fs failures into clear molexp :class:`StorageError` messages.

The workspace layer relies on ``FileNotFoundError`` (a key is missing) and ``FileExistsError``
(an exclusive write lost); those pass through unchanged. Everything else that can go wrong with an
S3 request (unreachable endpoint, a connection cut mid-request, a server that stays busy, missing
credentials, access denied, timeouts) becomes a ``StorageError`` that names the URL, the endpoint,
and what to change.

Each message was checked against what the libraries really raise (through a fault-injecting
proxy, tests/reliability/test_s3_faults.py): aiobotocore reports a refused connection *and* a
connection reset mid-request as ``EndpointConnectionError``, told apart only by the aiohttp error
inside (``ClientConnectorError`` versus a bare ``ClientOSError``); s3fs turns a 503 into
``OSError(EBUSY)`` over the botocore ``ClientError`` that carries the status.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from molexp.workspace import StorageError

#: Exceptions with a meaning the workspace layer acts on: never wrapped.
PASS_THROUGH: tuple[type[BaseException], ...] = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    StorageError,
    ValueError,
    TypeError,
)

CREDENTIALS_HINT = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, choose a profile (AWS_PROFILE or the "
    "storage option 'profile'), pass the storage options 'key' and 'secret', or use anon=True "
    "for a public bucket"
)
#: The connection could not be made at all (nothing was sent).
_CONNECT = {"ClientConnectorError", "ConnectTimeoutError", "gaierror"}
#: The connection broke while a request or its answer was on the wire.
_CUT = {
    "ConnectionResetError",
    "ConnectionAbortedError",
    "BrokenPipeError",
    "ClientOSError",
    "ServerDisconnectedError",
    "ConnectionClosedError",
    "ClientPayloadError",
    "IncompleteRead",
}
_TIMEOUT = {"ReadTimeoutError", "TimeoutError", "FSTimeoutError", "ServerTimeoutError"}


@dataclass(frozen=True)
class Context:
    """What a message needs besides the exception: where the request went, the options that
    govern it, whether it wrote, and how many attempts it made (when counted)."""

    endpoint: str
    read_timeout: float
    max_attempts: int
    writing: bool = False
    attempts: Callable[[], int] | None = None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def error_names(exc: BaseException) -> set[str]:
    """The class names of ``exc`` and of every exception it was raised from."""
    return {cls.__name__ for error in _chain(exc) for cls in type(error).__mro__}


def _response(exc: BaseException) -> dict[str, Any] | None:
    for error in _chain(exc):
        response = getattr(error, "response", None)
        if isinstance(response, dict):
            return response
    return None


def error_code(exc: BaseException) -> str | None:
    """The S3 error code (``NoSuchKey``, ``PreconditionFailed``, ...) behind ``exc``, if any."""
    code = (_response(exc) or {}).get("Error", {}).get("Code")
    return str(code) if code else None


def _status(exc: BaseException) -> int | None:
    status = (_response(exc) or {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status else None


def _attempts(exc: BaseException, context: Context) -> int | None:
    """How many times the request was sent: counted on the wire when possible, else botocore's
    own count of the last call (``RetryAttempts`` + 1)."""
    counted = context.attempts() if context.attempts is not None else 0
    if counted:
        return counted
    retries = (_response(exc) or {}).get("ResponseMetadata", {}).get("RetryAttempts")
    return int(retries) + 1 if retries is not None else None


def _tries(attempts: int | None) -> str:
    if attempts is None:
        return "every attempt"
    return "the only attempt" if attempts == 1 else f"each of {attempts} attempts"


def describe(exc: BaseException, context: Context) -> str:
    """What went wrong, with the fix, in one sentence (no credentials are ever included)."""
    names = error_names(exc)
    endpoint = context.endpoint
    retry_hint = f"storage option 'max_attempts', now {context.max_attempts}"
    if names & {"NoCredentialsError", "PartialCredentialsError"}:
        return f"no AWS credentials were found: {CREDENTIALS_HINT}"
    if "ProfileNotFound" in names:
        return f"{exc}: name a profile that exists in the AWS config files (~/.aws/config)"
    if names & _CONNECT or ("EndpointConnectionError" in names and not names & _CUT):
        return (
            f"cannot connect to the S3 endpoint {endpoint}: check the storage option "
            "'endpoint_url' (or AWS_ENDPOINT_URL) and that the server is up"
        )
    if names & _TIMEOUT:
        return (
            f"the S3 endpoint {endpoint} did not answer within {context.read_timeout:g} s "
            "(storage option 'read_timeout')"
        )
    if names & _CUT:
        how = "reset" if "ConnectionResetError" in names else "closed"
        cause = next(n for n in ("ConnectionResetError", *sorted(_CUT)) if n in names)
        message = (
            f"the connection to the S3 endpoint {endpoint} was {how} during the request "
            f"({cause}), on {_tries(_attempts(exc, context))} ({retry_hint})"
        )
        if context.writing:
            message += (
                ": the write did not complete, and nothing half-written is visible (S3 shows "
                "an object whole or not at all)"
            )
        return message
    status = _status(exc)
    if status is not None and status >= 500:
        code = error_code(exc)
        label = f"{status} {code}" if code and code != str(status) else str(status)
        busy = " (busy)" if status == 503 else ""
        attempts = _attempts(exc, context)
        after = f"after {attempts} attempts" if attempts is not None else "on every attempt"
        return (
            f"the S3 endpoint {endpoint} kept answering {label}{busy} {after}: try again later, "
            f"or allow more retries ({retry_hint})"
        )
    if isinstance(exc, PermissionError) or "AccessDenied" in names:
        return f"access denied by {endpoint} ({exc}): check the credentials and the bucket policy"
    return f"{type(exc).__name__}: {exc} (endpoint {endpoint})"


@contextmanager
def guard(headline: str, context: Context) -> Iterator[None]:
    """Run the block; a failure other than :data:`PASS_THROUGH` becomes a ``StorageError``
    reading ``"<headline>: <what went wrong and what to change>"``."""
    try:
        yield
    except PASS_THROUGH:
        raise
    except Exception as exc:
        raise StorageError(f"{headline}: {describe(exc, context)}") from exc

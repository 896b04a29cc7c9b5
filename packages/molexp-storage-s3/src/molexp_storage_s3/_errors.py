"""Turning botocore, aiohttp and s3fs failures into clear molexp :class:`StorageError` messages.

The workspace layer relies on ``FileNotFoundError`` (a key is missing) and ``FileExistsError``
(an exclusive write lost); those pass through unchanged. Everything else that can go wrong with an
S3 request (unreachable endpoint, missing credentials, access denied, timeouts) becomes a
``StorageError`` that names the URL, the endpoint, and what to change.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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


def error_code(exc: BaseException) -> str | None:
    """The S3 error code (``NoSuchKey``, ``PreconditionFailed``, ...) behind ``exc``, if any."""
    for error in _chain(exc):
        response = getattr(error, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            if code:
                return str(code)
    return None


def describe(exc: BaseException, *, endpoint: str, read_timeout: float) -> str:
    """What went wrong, with the fix, in one sentence (no credentials are ever included)."""
    names = error_names(exc)
    if names & {"NoCredentialsError", "PartialCredentialsError"}:
        return f"no AWS credentials were found: {CREDENTIALS_HINT}"
    if "ProfileNotFound" in names:
        return f"{exc}: name a profile that exists in the AWS config files (~/.aws/config)"
    if names & {"ConnectTimeoutError", "EndpointConnectionError", "ClientConnectorError"}:
        return (
            f"cannot connect to the S3 endpoint {endpoint}: check the storage option "
            "'endpoint_url' (or AWS_ENDPOINT_URL) and that the server is up"
        )
    if names & {"ReadTimeoutError", "TimeoutError", "FSTimeoutError", "ServerTimeoutError"}:
        return (
            f"the S3 endpoint {endpoint} did not answer within {read_timeout:g} s "
            "(storage option 'read_timeout')"
        )
    if names & {"ConnectionClosedError", "ServerDisconnectedError", "ClientOSError"}:
        return f"the S3 endpoint {endpoint} closed the connection ({type(exc).__name__})"
    if isinstance(exc, PermissionError):
        return f"access denied by {endpoint} ({exc}): check the credentials and the bucket policy"
    return f"{type(exc).__name__}: {exc} (endpoint {endpoint})"


@contextmanager
def guard(headline: str, *, endpoint: str, read_timeout: float) -> Iterator[None]:
    """Run the block; a failure other than :data:`PASS_THROUGH` becomes a ``StorageError``
    reading ``"<headline>: <what went wrong and what to change>"``."""
    try:
        yield
    except PASS_THROUGH:
        raise
    except Exception as exc:
        reason = describe(exc, endpoint=endpoint, read_timeout=read_timeout)
        raise StorageError(f"{headline}: {reason}") from exc

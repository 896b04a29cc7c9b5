"""Slugs and ids: the only strings that ever become path segments."""

from __future__ import annotations

import re
import unicodedata

from molexp.workspace._errors import InvalidNameError

MAX_ID_LENGTH = 128
_ID_RE = re.compile(r"[a-z0-9][a-z0-9._-]*\Z")
_SLUG_DROP_RE = re.compile(r"[^a-z0-9]+")

ID_RULE = (
    "lowercase ASCII letters, digits, '.', '_' and '-', starting with a letter or digit, "
    f"at most {MAX_ID_LENGTH} characters"
)


def slugify(name: str, *, what: str = "name") -> str:
    """Turn a display name into its id: lowercase ASCII, runs of other characters become '-'."""
    if not isinstance(name, str):
        raise InvalidNameError(f"{what} must be a string, got {type(name).__name__}")
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = _SLUG_DROP_RE.sub("-", ascii_name.lower()).strip("-")[:MAX_ID_LENGTH].rstrip("-")
    if not slug:
        raise InvalidNameError(
            f"{what} {name!r} has no letters or digits to make an id from; "
            "use a name with ASCII letters or digits, or pass id=... explicitly"
        )
    return slug


def check_id(value: str, *, what: str = "id") -> str:
    """Return ``value`` if it is a safe, canonical id (one path segment); else InvalidNameError.

    The rule every project, experiment, run and asset id follows (see ``ID_RULE``); check an id
    that comes from outside (a URL, a command line) before it is used to build a storage key.
    ``what`` names the value in the error message.
    """
    if not isinstance(value, str):
        raise InvalidNameError(f"{what} must be a string, got {type(value).__name__}")
    if len(value) > MAX_ID_LENGTH or not _ID_RE.match(value):
        raise InvalidNameError(f"{what} {value!r} is not valid: use {ID_RULE}")
    return value


def check_name(value: str, *, what: str = "name") -> str:
    """Return a display name if it is a non-empty single-line string."""
    if not isinstance(value, str):
        raise InvalidNameError(f"{what} must be a string, got {type(value).__name__}")
    if not value.strip() or "\x00" in value or "\n" in value or "\r" in value:
        raise InvalidNameError(f"{what} {value!r} must be a non-empty single line of text")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidNameError(f"{what} {value!r} is not valid UTF-8 text") from None
    return value


def lookup_candidates(name_or_id: str) -> list[str]:
    """The ids a lookup by ``name_or_id`` may mean: the text itself if an id, then its slug."""
    found: list[str] = []
    if (
        isinstance(name_or_id, str)
        and len(name_or_id) <= MAX_ID_LENGTH
        and _ID_RE.match(name_or_id)
    ):
        found.append(name_or_id)
    try:
        slug = slugify(name_or_id)
    except InvalidNameError:
        return found
    if slug not in found:
        found.append(slug)
    return found


# Not the filesystem's 255: a name also becomes `<name>.json`/`<name>.log` and, while written
# atomically, `.<name>.json.<pid>.<random>.tmp` (up to 27 bytes more), which must still fit.
MAX_FILENAME_BYTES = 200
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def check_filename(value: str, *, what: str = "name") -> str:
    """Return ``value`` if it is one safe file name; raise InvalidNameError otherwise.

    Safe: no separators, not '.' or '..', no control characters or surrounding spaces, at most
    ``MAX_FILENAME_BYTES`` bytes of UTF-8 (the rule for artifact, log and checkpoint names).
    ``what`` names the value in the error message.
    """
    if not isinstance(value, str):
        raise InvalidNameError(f"{what} must be a string, got {type(value).__name__}")
    if (
        value in ("", ".", "..")
        or "/" in value
        or "\\" in value
        or _CONTROL_RE.search(value)
        or value != value.strip()
        or len(value.encode("utf-8", "surrogatepass")) > MAX_FILENAME_BYTES
    ):
        raise InvalidNameError(
            f"{what} {value!r} is not a safe file name: use one path segment without '/', '\\', "
            f"control characters or surrounding spaces, not '.' or '..', at most "
            f"{MAX_FILENAME_BYTES} bytes"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidNameError(f"{what} {value!r} is not valid UTF-8 text") from None
    return value


def check_text(value: str | None, *, what: str) -> str | None:
    """``value`` if it is a string or None; a clear TypeError otherwise."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{what} must be a string, got {type(value).__name__} {value!r}")
    return value

"""Keeping secrets out of what molexp records: URLs without credentials, command lines without
passwords.

Provenance records are meant to be read, copied and exported (an RO-Crate is built to be shared),
so anything that may hold a credential is cleaned before it is written: the ``user:password@``
part of a URL, and the value of a command-line option whose name says it is secret
(``--token X``, ``--password=X``, ``api_key=X``). Environment variables are never read for a
record at all; this module is the second line of defence for what is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "***"

# scheme://[userinfo@]host...: the userinfo is everything up to the last "@" before the path.
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s@]*@)")
# A secret-sounding word, not inside a longer word: `--api-key`, `db_password`, `--token`, but
# not `--author`, `--passes` or `--max-tokens`.
_SECRET_NAME = re.compile(
    r"(?<![a-z])(pass(word|wd|phrase)?|secret|token|api[-_]?key|access[-_]?key|"
    r"private[-_]?key|credentials?|auth)(?![a-z])",
    re.IGNORECASE,
)
# --name=value, -name=value or name=value (a bare `name=value` argument, as some tools take).
_ASSIGNMENT = re.compile(r"^(?P<name>-{0,2}[A-Za-z0-9_.-]+)=(?P<value>.*)$", re.DOTALL)


def strip_userinfo(text: str) -> str:
    """``text`` with the ``user:password@`` part of every ``scheme://`` URL in it removed.

    ``https://user:token@host/repo.git`` becomes ``https://host/repo.git``; text without a URL is
    returned unchanged. scp-style git remotes (``git@host:repo``) carry a user name, never a
    password, and are kept.
    """
    if "@" not in text:
        return text
    return _URL_USERINFO.sub(lambda m: m["scheme"], text)


def _is_secret_option(name: str) -> bool:
    return bool(_SECRET_NAME.search(name.lstrip("-")))


def redact_argv(argv: Iterable[str]) -> list[str]:
    """A command line safe to record: credentials stripped from URLs, and the value of any
    option whose name looks secret (``--password``, ``--token``, ``--api-key``, ...) replaced
    by ``***``, in both the ``--name=value`` and the ``--name value`` forms."""
    cleaned: list[str] = []
    hide_next = False
    for arg in argv:
        text = str(arg)
        if hide_next:
            cleaned.append(REDACTED)
            hide_next = False
            continue
        assignment = _ASSIGNMENT.match(text)
        if assignment is not None and _is_secret_option(assignment["name"]):
            cleaned.append(f"{assignment['name']}={REDACTED}")
            continue
        if text.startswith("-") and _is_secret_option(text):
            cleaned.append(text)
            hide_next = True
            continue
        cleaned.append(strip_userinfo(text))
    return cleaned

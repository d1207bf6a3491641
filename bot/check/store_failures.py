"""A Redis that failed, as one line saying why and what to fix: the credentials refused, a command denied
by an ACL, or the server unreachable (in errno's words). redis-py's exceptions are read here, at the
check's Redis edge, from the cause that ``bot.store.connection.store_errors`` keeps."""

from __future__ import annotations

import os

from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError

from bot.check.report import CheckLine, fail
from bot.core.errors import StoreUnavailable
from bot.redaction import redact_url


def reach_fix(setting: str) -> str:
    """What to do about a Redis that does not answer, naming the setting that points at it."""
    return f"start Redis, or fix the host and port in {setting} (and any firewall in between)"


def store_failure(
    exc: StoreUnavailable, url: str, name: str = "redis", setting: str = "REDIS_URL"
) -> CheckLine:
    """The line for the Redis at ``url`` (``setting``) that failed with ``exc``; the URL's password is
    shown as ``***``. Only an unreachable server is an ``outage`` (it may come up by itself). Also what
    ``glmbot quota`` prints when its store fails."""
    shown = redact_url(url)
    chain = _causes(exc)
    denied = next((cause for cause in chain if isinstance(cause, NoPermissionError)), None)
    if denied is not None:
        fix = f"grant the user in {setting} the commands glmbot runs (README, Redis: sizing and policies)"
        return fail(name, f"{shown} denied a command ({redact_url(str(denied))})", fix)
    refused = next((cause for cause in chain if _refused_credentials(cause)), None)
    if refused is not None:
        fix = f"put the right user and password in {setting}: redis://USER:PASSWORD@HOST:PORT/DB"
        return fail(name, f"{shown} refused the credentials ({redact_url(str(refused))})", fix)
    unreachable = next((cause for cause in reversed(chain) if isinstance(cause, OSError)), None)
    if unreachable is not None and unreachable.errno:
        why = os.strerror(unreachable.errno)  # not asyncio's "Connect call failed ('127.0.0.1', 1)"
    else:
        why = redact_url(str(chain[-1])) or type(chain[-1]).__name__
    # Down, or not up yet, or a typo in the host: the same to us; serve exits 1 so a supervisor retries.
    return fail(name, f"cannot reach {shown} ({why})", reach_fix(setting), outage=True)


def _refused_credentials(cause: BaseException) -> bool:
    # redis-py raises AuthenticationError for a refused AUTH; a server that wants a password and got none
    # answers NOAUTH, which some versions pass on as a plain ResponseError.
    return isinstance(cause, AuthenticationError) or (
        isinstance(cause, ResponseError) and str(cause).startswith(("NOAUTH", "WRONGPASS"))
    )


def _causes(error: BaseException) -> list[BaseException]:
    """``error`` and what caused it, outermost first (at most 10: a chain can loop)."""
    chain = [error]
    while len(chain) < 10:
        cause = chain[-1].__cause__ or chain[-1].__context__
        if cause is None or cause in chain:
            break
        chain.append(cause)
    return chain

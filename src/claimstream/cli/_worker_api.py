"""A running worker's API from a command (`check`, `institutions benchmark`, `cases list|show`,
`freezes`): the `--worker`, `--timeout` and `--retries` options, the `claimstream.client.Client`
they make (the token in `CLAIMSTREAM_CLIENT_TOKEN`), `ask` (one read, its errors as the lines
below), and the lines for a token refused or another refusal (exit 2), and a worker that did
not answer or failed to (exit 3).

Light at import (argparse, os): the client is imported when a command runs.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from claimstream.cli.exits import CommandError, Unreachable

if TYPE_CHECKING:
    from claimstream.client import ClaimstreamError, Client


def add_worker_arguments(
    parser: argparse.ArgumentParser, *, worker_note: str, answer: str, retries: int
) -> None:
    """`--worker URL` (`worker_note` ends its help), `--timeout` (seconds to wait for
    `answer`) and `--retries` (default `retries`)."""
    parser.add_argument(
        "--worker",
        default=f"http://127.0.0.1:{os.environ.get('CLAIMSTREAM_WEB_PORT', '6066')}",
        metavar="URL",
        help="the worker's web address (default: http://127.0.0.1:$CLAIMSTREAM_WEB_PORT, port "
        f"6066 when unset); {worker_note}",
    )
    parser.add_argument("--timeout", type=float, default=5.0, help=f"seconds to wait for {answer}")
    parser.add_argument(
        "--retries",
        type=int,
        default=retries,
        help="tries again this many times while the worker is unavailable (503, unreachable)",
    )


def worker_client(args: argparse.Namespace) -> Client:
    """The client of `--worker` with `--timeout` and `--retries`, presenting
    `CLAIMSTREAM_CLIENT_TOKEN`; a URL it cannot use is a usage error."""
    from claimstream.client import Client, Retry

    token = os.environ.get("CLAIMSTREAM_CLIENT_TOKEN", "").strip() or None
    try:
        return Client(
            args.worker,
            token,
            timeout=args.timeout,
            retry=Retry(retries=max(0, args.retries), backoff=0.2, max_wait=5.0),
        )
    except ValueError as exc:
        raise CommandError(f"--worker: {exc}") from None


def token_refused(url: str, status: int, wanted: str) -> CommandError:
    """The worker at `url` answered 401/403: `wanted` says which token would do."""
    return CommandError(
        f"the worker at {url} refused the token: HTTP {status} (set CLAIMSTREAM_CLIENT_TOKEN "
        f"to {wanted}; docs/security.md)"
    )


def no_answer(url: str, exc: Exception, *, what: str = "", more: str = "") -> Unreachable:
    """The worker at `url` did not answer (`what`: to what, after "did not answer"); `more`
    ends the line."""
    return Unreachable(
        f"the worker at {url} did not answer{what} ({exc}): is `claimstream worker` running? "
        f"--worker or CLAIMSTREAM_WEB_PORT names another{more}"
    )


def failed(url: str, exc: ClaimstreamError) -> Unreachable:
    """The worker at `url` answered with an error of its own (a 5xx it is not worth asking
    again about): exit 3, as a service that did not answer."""
    return Unreachable(f"the worker at {url} failed to answer: {exc}")


def ask(
    client: Client,
    path: str,
    *,
    wanted: str,
    holding: str | None = None,
    what: str = "a JSON object",
    unknown: str | None = None,
    more: str = "",
) -> dict[str, Any]:
    """The worker's answer to `GET path`: a JSON object (holding the key `holding` when
    given; else a usage error saying it answered something else than `what`). A 401/403 is
    `token_refused` (`wanted`: the token that would do), a 404 is `unknown` when given,
    another refusal its status and sentence (exit 2); no answer is `no_answer` (`more` ends
    the line), a 5xx `failed` (exit 3)."""
    from claimstream.client import ClaimstreamError, RequestRefused, WorkerUnavailable
    from claimstream.client.calls import Call

    try:
        answer, _ = client.call(Call("GET", path))
    except RequestRefused as exc:
        if exc.status in (401, 403):
            raise token_refused(client.url, exc.status, wanted) from None
        if exc.status == 404 and unknown is not None:
            raise CommandError(unknown) from None
        raise CommandError(f"the worker at {client.url} answered {exc}") from None
    except WorkerUnavailable as exc:
        raise no_answer(client.url, exc, more=more) from None
    except ClaimstreamError as exc:
        raise failed(client.url, exc) from None
    if not isinstance(answer, dict) or (holding is not None and holding not in answer):
        raise CommandError(f"the worker at {client.url} answered something else than {what}")
    return answer

"""`Client`: the blocking client (the standard library's urllib; nothing to install)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from claimstream.client.answers import (
    Accepted,
    CheckResult,
    FreezeStatus,
    Handling,
)
from claimstream.client.calls import (
    Call,
    Events,
    Retry,
    base_url,
    check_call,
    decode,
    error_of,
    feedback_call,
    freezes_call,
    gave_up,
    headers_of,
)

WORKER = "X-Claimstream-Worker"


class Client:
    """A claimstream worker's check, feedback and freeze look-up, for a settlement system.

        client = Client("http://worker:6066", token)
        result = client.check(event)           # or a list of one patient's events
        if result.decision == "reject": ...
        client.feedback(result.check_id, [Handling.to(v, "modified") for v in result.violations])

    `token`: a bearer token with the `settlement` role. Every call waits at most `timeout`
    seconds per try; a worker that cannot be reached, times out or answers 502/503 (still
    recovering, rebalancing) is tried again `retry.retries` times with backoff (honouring
    `Retry-After`), then `WorkerUnavailable`; a refusal (4xx) raises `RequestRefused` at once.
    """

    def __init__(
        self,
        url: str = "http://127.0.0.1:6066",
        token: str | None = None,
        *,
        timeout: float = 2.0,
        retry: Retry | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = base_url(url)
        self.token = token
        self.timeout = timeout
        self.retry = retry or Retry()
        self.sleep = sleep

    def check(self, events: Events, *, check_id: str | None = None) -> CheckResult:
        """Check one event, or a list of one patient's events, before settling them."""
        body, headers = self.call(check_call(events, check_id))
        return CheckResult.of(body, headers.get(WORKER))

    def feedback(
        self,
        check_id: str,
        handlings: Iterable[Handling | Mapping[str, Any]],
        *,
        at: str | None = None,
    ) -> Accepted:
        """Record what was done with a check's violations (modified, continued, cancelled)."""
        body, _ = self.call(feedback_call(check_id, handlings, at))
        return Accepted.of(body)

    def freezes(self, kind: str, id_: str, drug_code: str | None = None) -> FreezeStatus:
        """Whether `kind` `id_` (for `drug_code`) is frozen right now."""
        body, _ = self.call(freezes_call(kind, id_, drug_code))
        return FreezeStatus.of(body)

    def call(self, call: Call) -> tuple[Any, dict[str, str]]:
        """(answer, headers) of `call`, tried again as the class says."""
        last = "no answer"
        status: int | None = None
        for attempt in range(self.retry.retries + 1):
            retry_after: str | None = None
            try:
                return self._once(call)
            except urllib.error.HTTPError as exc:
                status = exc.code
                last, final = error_of(exc.code, decode(exc.read()))
                if final is not None:
                    raise final from None
                retry_after = exc.headers.get("Retry-After")
            except (OSError, TimeoutError) as exc:  # refused, reset, timed out (URLError too)
                status, last = None, f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            if attempt < self.retry.retries:
                self.sleep(self.retry.wait(attempt, retry_after))
        raise gave_up(call, self.url, last, self.retry, status)

    def _once(self, call: Call) -> tuple[Any, dict[str, str]]:
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
            self.url + call.path,
            data=call.body,
            headers=headers_of(call, self.token),
            method=call.method,
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
            return decode(response.read()), dict(response.headers)

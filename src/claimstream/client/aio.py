"""`AsyncClient`: the asyncio client (aiohttp), for settlement systems written with asyncio."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Self

import aiohttp

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
from claimstream.client.sync import WORKER


class AsyncClient:
    """`Client`'s calls as coroutines, over one aiohttp session (a connection pool):

    async with AsyncClient("http://worker:6066", token) as client:
        result = await client.check(event)
    """

    def __init__(
        self,
        url: str = "http://127.0.0.1:6066",
        token: str | None = None,
        *,
        timeout: float = 2.0,
        retry: Retry | None = None,
    ) -> None:
        self.url = base_url(url)
        self.token = token
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.retry = retry or Retry()
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def check(self, events: Events, *, check_id: str | None = None) -> CheckResult:
        body, headers = await self.call(check_call(events, check_id))
        return CheckResult.of(body, headers.get(WORKER))

    async def feedback(
        self,
        check_id: str,
        handlings: Iterable[Handling | Mapping[str, Any]],
        *,
        at: str | None = None,
    ) -> Accepted:
        body, _ = await self.call(feedback_call(check_id, handlings, at))
        return Accepted.of(body)

    async def freezes(self, kind: str, id_: str, drug_code: str | None = None) -> FreezeStatus:
        body, _ = await self.call(freezes_call(kind, id_, drug_code))
        return FreezeStatus.of(body)

    async def call(self, call: Call) -> tuple[Any, dict[str, str]]:
        last = "no answer"
        status: int | None = None
        for attempt in range(self.retry.retries + 1):
            retry_after: str | None = None
            try:
                status, body, headers = await self._once(call)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                status, last = None, f"{type(exc).__name__}: {exc}".rstrip(": ")
            else:
                if status < 400:
                    return body, headers
                last, final = error_of(status, body)
                if final is not None:
                    raise final
                retry_after = headers.get("Retry-After")
            if attempt < self.retry.retries:
                await asyncio.sleep(self.retry.wait(attempt, retry_after))
        raise gave_up(call, self.url, last, self.retry, status)

    async def _once(self, call: Call) -> tuple[int, Any, dict[str, str]]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        async with self._session.request(
            call.method, self.url + call.path, data=call.body, headers=headers_of(call, self.token)
        ) as response:
            return response.status, decode(await response.read()), dict(response.headers)

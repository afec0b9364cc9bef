"""The one retry policy: only TransientError is retried, with exponential backoff, and every wait is logged."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from loguru import logger
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from medallion.core.errors import TransientError

F = TypeVar("F", bound=Callable[..., object])


def _log_wait(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    logger.warning(
        "{fn}: attempt {n} failed ({exc}); retrying in {wait:.1f}s",
        fn=getattr(state.fn, "__qualname__", "call"),
        n=state.attempt_number,
        exc=exc,
        wait=wait,
    )


def retry_transient(
    attempts: int = 5,
    max_wait_s: float = 8.0,
    max_delay_s: float = 60.0,
    only: type[TransientError] = TransientError,
) -> Callable[[F], F]:
    """Decorate a call that may raise TransientError (or only its subclass ``only``): retry it, then
    re-raise the last error as it was."""
    return retry(  # type: ignore[return-value]
        retry=retry_if_exception_type(only),
        wait=wait_exponential(multiplier=0.5, max=max_wait_s),
        stop=stop_after_attempt(attempts) | stop_after_delay(max_delay_s),
        before_sleep=_log_wait,
        reraise=True,
    )

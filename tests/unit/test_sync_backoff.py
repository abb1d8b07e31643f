"""The per-row backoff after failed attempts: doubling from BACKOFF_BASE_S, capped at BACKOFF_MAX_S."""

import pytest

from licenses import sync


def test_backoff_doubles_from_the_base_and_stops_at_the_cap() -> None:
    assert sync.backoff_seconds(1) == sync.BACKOFF_BASE_S
    assert sync.backoff_seconds(2) == 2 * sync.BACKOFF_BASE_S
    assert sync.backoff_seconds(3) == 4 * sync.BACKOFF_BASE_S
    assert sync.backoff_seconds(64) == sync.BACKOFF_MAX_S


@pytest.mark.parametrize("attempts", [1025, 10_000, 10**9])
def test_a_row_failing_for_days_still_gets_the_capped_backoff(attempts: int) -> None:
    # A registry down over a weekend: at one attempt per BACKOFF_MAX_S a row passes 1,024 attempts in
    # about a day and a half; 2 ** 1,024 is too large for a float, and the drain must not crash on it.
    assert sync.backoff_seconds(attempts) == sync.BACKOFF_MAX_S

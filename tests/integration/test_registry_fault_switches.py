"""What the fault suite relies on in the reference registry: its log of applied writes (the proof
that no change was applied twice) and the clock-skew switch, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from city_registry.store import RegistryStore
from licenses import sync
from tests.factories.sync import KEY, RegistryProcess, envelope
from workers.registry_client import RegistryClient


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    proc = RegistryProcess(tmp_path_factory.mktemp("registry-switches")).start()
    yield proc
    proc.stop()


@pytest.fixture
def client(registry: RegistryProcess) -> Iterator[RegistryClient]:
    c = RegistryClient(registry.url, KEY, "321203", timeout=5)
    c.reset()
    yield c
    c.set_faults(reset=True)
    c.reset()
    c.close()


def applied_twice(registry: RegistryProcess) -> list[dict[str, object]]:
    store = RegistryStore(registry.database_url)
    try:
        return store.applied_twice()
    finally:
        store.engine.dispose()


def test_applied_log_holds_each_write_once_and_not_duplicates(client: RegistryClient,
                                                              registry: RegistryProcess) -> None:
    first, second = envelope("L1", revision=1, sequence=1), envelope("L1", revision=2, sequence=2,
                                                                     status="suspended")
    assert {r.status for r in client.post_batch("b1", [first, second])} <= {"created", "updated"}
    assert [r.status for r in client.post_batch("b2", [second])] == ["duplicate"]
    stats = client.stats()
    assert stats["applied"] == 1  # the batch wrote the licence row once, with its later change
    assert applied_twice(registry) == []


def test_applied_log_shows_a_change_written_twice(client: RegistryClient, registry: RegistryProcess) -> None:
    v1 = envelope("L2", revision=1, sequence=1)
    v2 = envelope("L2", revision=2, sequence=2, status="suspended")
    client.post_batch("b1", [v1])
    client.post_batch("b2", [v2])
    # The registry's state is damaged behind its back; the same change then repairs it (a second write).
    store = RegistryStore(registry.database_url)
    try:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE registry_licence SET status = 'valid'")
    finally:
        store.engine.dispose()
    assert [r.status for r in client.post_batch("b3", [v2])] == ["updated"]
    assert applied_twice(registry) == [{"idem_key": v2["idem_key"], "times": 2}]


@pytest.mark.parametrize("skew", [-400, 400])
def test_clock_skew_switch_answers_stale_timestamp_until_cleared(client: RegistryClient, skew: int) -> None:
    client.set_faults(clock_skew_s=skew)  # the control path itself is not skewed
    with pytest.raises(sync.RegistryError, match="时间戳"):
        client.post_batch("b1", [envelope("L3")])
    client.set_faults(clock_skew_s=0)
    assert [r.status for r in client.post_batch("b2", [envelope("L3")])] == ["created"]


def test_small_clock_skew_within_the_protocol_limit_is_accepted(client: RegistryClient) -> None:
    client.set_faults(clock_skew_s=120)
    assert [r.status for r in client.post_batch("b1", [envelope("L4")])] == ["created"]

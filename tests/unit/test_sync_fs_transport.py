"""The embedded broker's transport publishes atomically: a consumer never sees a half-written message."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from kombu import Connection

from core.config import Settings

# One exchange table folder for the module (kombu caches declarations per process, so a fresh folder
# per test would lose the bindings); never kombu's default ./control in the working directory.
CONTROL = tempfile.mkdtemp(prefix="gaogang-kombu-control-")


def _connection(folder: Path) -> Connection:
    return Connection(transport="workers.fs_transport:Transport", transport_options={
        "data_folder_in": str(folder), "data_folder_out": str(folder),
        "processed_folder": str(folder), "control_folder": CONTROL,
        "store_processed": False, "polling_interval": 0.01,
    })


def test_a_message_being_written_is_not_consumed_and_a_published_one_is(tmp_path: Path) -> None:
    with _connection(tmp_path) as conn:
        queue = conn.SimpleQueue("sync")
        # What a publisher holds while writing: an empty file under a name no queue matches.
        (tmp_path / ".0f3a.part").write_bytes(b"")
        with pytest.raises(queue.Empty):
            queue.get(timeout=0.05)
        queue.put({"task": "workers.sync_drain"})
        assert sorted(p.name.endswith(".sync.msg") for p in tmp_path.iterdir()) == [False, True]
        message = queue.get(timeout=1)
        assert message.payload == {"task": "workers.sync_drain"}
        message.ack()
        queue.close()


def test_no_message_file_is_visible_while_its_body_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kombu.utils.encoding import str_to_bytes

    from workers import fs_transport

    seen: list[list[str]] = []

    def spy(data: str) -> bytes:  # runs between creating the file and writing its body
        seen.append([p.name for p in tmp_path.iterdir() if p.name.endswith(".msg")])
        return str_to_bytes(data)

    monkeypatch.setattr(fs_transport, "str_to_bytes", spy)
    with _connection(tmp_path) as conn:
        queue = conn.SimpleQueue("sync")
        queue.put({"n": 1})
        queue.close()
    assert seen == [[]]


def test_the_embedded_celery_app_uses_the_atomic_transport(tmp_path: Path) -> None:
    from celery_app import make_celery

    app = make_celery(Settings.from_env({"INSTANCE_DIR": str(tmp_path)}))
    with app.connection_for_write() as conn:
        assert type(conn.transport).__module__ == "workers.fs_transport"

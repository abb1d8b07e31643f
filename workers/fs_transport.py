"""kombu's filesystem transport with atomic publishing (the embedded broker of celery_app).

kombu's ``_put`` creates ``<time>_<uuid>.<queue>.msg``, then locks and writes it; its ``_get`` moves
and reads files without taking that lock. A consumer polling at that instant reads an empty file,
``json.loads`` fails and the worker stops with "Unrecoverable error: JSONDecodeError" (seen under
load in benchmarks/sync_throughput.py). Here a message is written under a name no queue matches
and renamed into place (``os.replace`` is atomic on one filesystem), so a consumer sees either no
file or the whole message.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]  # kombu's two base classes disagree on the argument's name; positional in every caller
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # Starts with "." and ends in ".part": _get matches "<anything>.<queue>.msg" after the first
        # dot, which a partial file never does.
        partial = os.path.join(self.data_folder_out, f".{uuid.uuid4().hex}.part")
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel

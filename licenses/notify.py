"""Sending a holder a one-time code (用证记录 page): an interface and the file-backed outbox.

A production instance plugs in the platform's SMS or e-mail service, addressed by the holder code
through the identity platform that knows the holder's phone (统一身份认证); this module knows no
phone numbers. The file outbox appends one JSON line per message to a 0600 file under instance/:
it is what the demo uses and what tests read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Protocol

from core.types import utcnow
from licenses.masking import mask_code


class CodeSender(Protocol):
    def send(self, holder_code: str, message: str) -> None: ...


class FileOutboxSender:
    """Appends ``{"at", "to" (masked holder code), "holder_code", "message"}`` lines to ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, holder_code: str, message: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        line = {
            "at": utcnow().isoformat(),
            "to": mask_code(holder_code),
            "holder_code": holder_code,
            "message": message,
        }
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")

    def messages(self) -> list[dict[str, str]]:
        if not self.path.exists():
            return []
        return [json.loads(x) for x in self.path.read_text(encoding="utf-8").splitlines() if x.strip()]

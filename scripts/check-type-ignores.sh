#!/usr/bin/env bash
# Every `type: ignore` names the error it silences and says why, on the same line:
#     value = thing()  # type: ignore[attr-defined]  # <why the checker is wrong or cannot know>
# mypy's ignore-without-code enforces the code in the files mypy checks; this checks code and reason
# in every Python file of the project (tests and migrations too).
set -euo pipefail
cd "$(dirname "$0")/.."
if bare=$(grep -rnP --include='*.py' --exclude-dir=.venv --exclude-dir=.git --exclude-dir=node_modules \
    'type:\s*ignore(?!\[[a-z-]+(,\s*[a-z-]+)*\]\s+#\s*\S)' .); then
  echo "type: ignore without an error code and a reason after it:" >&2
  echo "$bare" >&2
  exit 1
fi

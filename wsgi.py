from core.config import SettingsError
from webapp import create_app

try:
    app = create_app()
except SettingsError as exc:
    # A missing or malformed setting is the operator's to fix: name it, without a traceback (gunicorn
    # prints this and its worker fails to boot; `flask` prints it and exits with status 1).
    raise SystemExit(f"settings error: {exc}") from None

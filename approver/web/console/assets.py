"""The console's static files, served to anyone (the login page needs its style before a
session exists) under names carrying a hash of their content, so browsers keep them a year
and an upgrade's new file has a new name."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from flask import Blueprint, abort, send_from_directory, url_for

FOLDER = Path(__file__).parent / "static"
YEAR = 365 * 86400

bp = Blueprint("console_assets", __name__, url_prefix="/console/static")


@functools.cache
def names() -> dict[str, str]:
    """Each file's hashed name (`console.<hash>.css`) to its own name."""
    found = {}
    for path in sorted(FOLDER.iterdir()):
        if path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            found[f"{path.stem}.{digest}{path.suffix}"] = path.name
    return found


@bp.app_template_global()
def asset_url(filename: str) -> str:
    """The URL of a console static file under its hashed name."""
    hashed = next(h for h, name in names().items() if name == filename)
    return url_for("console_assets.asset", name=hashed)


@bp.get("/<name>")
def asset(name: str):
    """A static file by its hashed name (cached a year), or by its own (revalidated)."""
    own = names().get(name)
    if own is not None:
        response = send_from_directory(FOLDER, own, max_age=YEAR)
        response.headers["Cache-Control"] = f"public, max-age={YEAR}, immutable"
        return response
    if name not in names().values():
        abort(404)
    response = send_from_directory(FOLDER, name, max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response

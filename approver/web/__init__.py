"""The web tier: a Flask app that authenticates, checks shape, enqueues and answers at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from approver import config
    from approver.pipeline import runtime

# Imported inside the functions: gunicorn's master imports this package for its config
# (approver.web.gunicorn_conf) and worker class, and has no use for the app's ~60 MB of
# modules; each worker imports them when it builds the app.


def create_app(settings: config.Settings | None = None) -> Flask:
    """Build the web app; settings default to the environment."""
    from flask import Flask

    from approver import config
    from approver.web import (
        billing,
        errors,
        handoff,
        health,
        hooks,
        observe,
        openapi,
        portal_hooks,
        slack_hooks,
        validators,
    )
    from approver.web.console import init_app as init_console

    settings = (settings or config.from_env()).require_webhook_tokens().require_secret_key()
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=settings.body_limit, JSON_SORT_KEYS=False)
    # Werkzeug answers "/hooks/tyk//T" with a 308 to "/hooks/tyk/T": a sender that follows
    # redirects would send its token twice on every call. A doubled slash is a 401 or a 404.
    app.url_map.merge_slashes = False
    app.extensions["approver"] = web_runtime(settings)
    errors.init_app(app)
    observe.init_app(app)
    app.register_blueprint(hooks.bp)
    app.register_blueprint(portal_hooks.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(handoff.bp)
    app.register_blueprint(billing.bp)
    app.register_blueprint(slack_hooks.bp)
    app.register_blueprint(validators.bp)
    app.register_blueprint(openapi.bp)
    init_console(app, settings)
    return app


def web_runtime(settings: config.Settings) -> runtime.Runtime:
    """The web tier's runtime: Redis with sub-second timeouts so an outage answers 503 fast."""
    from approver.pipeline import runtime
    from approver.state import connection

    rt = runtime.Runtime(settings)
    rt.redis = connection.connect(settings, timeout=0.5)
    return rt

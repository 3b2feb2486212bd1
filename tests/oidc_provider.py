"""A minimal OpenID Connect provider for tests: discovery, authorization code flow, a token
endpoint with client authentication, RS256-signed ID tokens and their JWKS, over real HTTP.

Who signs in is set on the provider (`provider.user`): its /authorize stands for the login
page a person would see, and answers at once with a code for that user.
"""

from __future__ import annotations

import base64
import secrets
import time
from urllib.parse import urlencode

from flask import Flask, jsonify, redirect, request
from joserfc import jwt
from joserfc.jwk import RSAKey


class Provider:
    """The provider's state: its client, its key, the person who signs in next."""

    def __init__(self, client_id: str, client_secret: str):
        self.client_id, self.client_secret = client_id, client_secret
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key"})
        self.signing_key = self.key  # set to another key to send forged tokens
        self.user: dict = {}
        self.claims: dict = {}  # extra or overriding ID token claims
        self.codes: dict[str, dict] = {}
        self.issuer = ""

    def id_token(self, nonce: str | None) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + 300,
                  **self.user, **({"nonce": nonce} if nonce else {}), **self.claims}
        return jwt.encode({"alg": "RS256", "kid": self.signing_key.kid}, claims,
                          self.signing_key)


def create_provider_app(client_id: str, client_secret: str) -> Flask:
    """The provider as a Flask app; its state is `app.provider`."""
    app = Flask(__name__)
    provider = Provider(client_id, client_secret)
    app.provider = provider

    @app.before_request
    def issuer():
        provider.issuer = request.host_url.rstrip("/")

    @app.get("/.well-known/openid-configuration")
    def discovery():
        base = provider.issuer
        return jsonify(issuer=base, authorization_endpoint=f"{base}/authorize",
                       token_endpoint=f"{base}/token", jwks_uri=f"{base}/jwks",
                       response_types_supported=["code"], subject_types_supported=["public"],
                       id_token_signing_alg_values_supported=["RS256"],
                       scopes_supported=["openid", "email", "profile"],
                       token_endpoint_auth_methods_supported=["client_secret_basic"])

    @app.get("/jwks")
    def jwks():
        return jsonify(keys=[provider.key.as_dict(private=False)])

    @app.get("/authorize")
    def authorize():
        args = request.args
        if args.get("client_id") != provider.client_id or args.get("response_type") != "code":
            return jsonify(error="unauthorized_client"), 400
        if "openid" not in (args.get("scope") or "").split():
            return jsonify(error="invalid_scope"), 400
        code = secrets.token_urlsafe(16)
        provider.codes[code] = {"nonce": args.get("nonce"),
                                "redirect_uri": args.get("redirect_uri")}
        query = urlencode({"code": code, "state": args.get("state", "")})
        return redirect(f"{args.get('redirect_uri')}?{query}")

    @app.post("/token")
    def token():
        sent = request.headers.get("Authorization", "")
        expected = "Basic " + base64.b64encode(
            f"{provider.client_id}:{provider.client_secret}".encode()).decode()
        if not secrets.compare_digest(sent, expected):
            return jsonify(error="invalid_client"), 401
        grant = provider.codes.pop(request.form.get("code", ""), None)
        if grant is None or request.form.get("grant_type") != "authorization_code" or (
                request.form.get("redirect_uri") != grant["redirect_uri"]):
            return jsonify(error="invalid_grant"), 400
        return jsonify(access_token=secrets.token_urlsafe(16), token_type="Bearer",
                       expires_in=300, id_token=provider.id_token(grant["nonce"]))

    return app

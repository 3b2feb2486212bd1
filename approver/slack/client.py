"""A small client of Slack's Web API (https://api.slack.com/web): JSON bodies, the bot
token as a bearer token, `ok: false` answers and HTTP errors raised as SlackError without the
token. The base URL is a setting, so tests run against a local server answering in Slack's
shapes."""

from __future__ import annotations

import requests

from approver.errors import ApproverError

TIMEOUT = (3.05, 10)
USER_AGENT = "tyk-approver-slack/1"


class SlackError(ApproverError):
    """A Slack API call failed: the method and Slack's error code, never the token."""

    def __init__(self, method: str, error: str, retry_after: int | None = None):
        super().__init__(f"Slack {method} failed: {error}")
        self.error = error
        self.retry_after = retry_after


class SlackClient:
    """Slack's Web API with a bot token."""

    def __init__(self, api_url: str, token: str, timeout=TIMEOUT):
        self.api_url = api_url.rstrip("/")
        self._token = token
        self.timeout = timeout

    def __repr__(self) -> str:  # the token is a credential
        return f"SlackClient({self.api_url!r})"

    def call(self, method: str, form: bool = False, **body) -> dict:
        """POST one method with a JSON body (a form, for methods that take no JSON, as
        users.info); its answer, or SlackError."""
        try:
            response = requests.post(
                f"{self.api_url}/{method}", json=None if form else body,
                data=body if form else None, timeout=self.timeout, allow_redirects=False,
                headers={"Authorization": f"Bearer {self._token}", "User-Agent": USER_AGENT})
        except requests.RequestException as exc:
            raise SlackError(method, type(exc).__name__) from None
        if response.status_code == 429:  # rate limited: Retry-After says for how long
            raise SlackError(method, "ratelimited", _seconds(response.headers.get("Retry-After")))
        try:
            answer = response.json() if response.status_code == 200 else None
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise SlackError(method, f"HTTP {response.status_code}")
        if answer.get("ok") is not True:
            raise SlackError(method, str(answer.get("error") or "not ok")[:100])
        return answer

    def post_message(self, channel: str, message: dict,
                     thread_ts: str | None = None) -> tuple[str, str]:
        """chat.postMessage (in a message's thread, given its ts): (channel, ts) of it."""
        thread = {"thread_ts": thread_ts} if thread_ts else {}
        answer = self.call("chat.postMessage", channel=channel, unfurl_links=False,
                           unfurl_media=False, **thread, **message)
        return str(answer["channel"]), str(answer["ts"])

    def update(self, channel: str, ts: str, message: dict) -> None:
        """chat.update: replace a message the bot posted (for everyone in the channel)."""
        self.call("chat.update", channel=channel, ts=ts, **message)

    def tell(self, channel: str, user: str, text: str) -> None:
        """chat.postEphemeral: a message only `user` sees, in `channel`."""
        self.call("chat.postEphemeral", channel=channel, user=user, text=text)

    def open_view(self, trigger_id: str, view: dict) -> None:
        """views.open: a modal, within 3 seconds of the click that gave `trigger_id`."""
        self.call("views.open", trigger_id=trigger_id, view=view)

    def user(self, user_id: str) -> dict:
        """users.info: the user, with `profile.email` (the users:read.email scope)."""
        return self.call("users.info", form=True, user=user_id).get("user") or {}


def _seconds(value: str | None) -> int | None:
    try:
        return max(1, int(value or ""))
    except ValueError:
        return None

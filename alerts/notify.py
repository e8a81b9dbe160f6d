"""Notifications through apprise: Teams, Slack, email, generic JSON webhooks and the rest, by URL.

A channel's URL carries its token, so it is read from an environment variable or a file named in the
configuration, never from the configuration itself, and never logged: error texts are scrubbed of it
before they are stored.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import apprise

from queries.config import AlertChannel

log = logging.getLogger("aoai_lens.notify")


class ChannelError(RuntimeError):
    """A channel that cannot be used (no URL, unreadable file, URL apprise does not know)."""


@dataclass(frozen=True)
class Delivery:
    channel: str
    ok: bool
    error: str | None


def channel_url(channel: AlertChannel, environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    if channel.url_env:
        url = env.get(channel.url_env, "").strip()
        if not url:
            raise ChannelError(f"channel {channel.name}: environment variable {channel.url_env} is not set")
        return url
    assert channel.url_file is not None
    try:
        url = Path(channel.url_file).read_text().strip()
    except OSError as e:
        raise ChannelError(f"channel {channel.name}: cannot read {channel.url_file}: {e.strerror}") from None
    if not url:
        raise ChannelError(f"channel {channel.name}: {channel.url_file} is empty")
    return url


def _scrub(text: str, url: str) -> str:
    """Remove the URL and its secret-looking parts from an error text."""
    out = text.replace(url, "<channel url>")
    rest = url.split("://", 1)[-1]
    for part in rest.replace("?", "/").replace("&", "/").replace("@", "/").split("/"):
        if len(part) >= 8:
            out = out.replace(part, "***")
    return out


class Notifier:
    """Sends a title and body to named channels; returns one Delivery per channel."""

    def __init__(self, channels: list[AlertChannel], environ: dict[str, str] | None = None) -> None:
        self.channels = {c.name: c for c in channels}
        self.environ = environ

    def send(self, channel_name: str, title: str, body: str, *, failure: bool = False) -> Delivery:
        channel = self.channels.get(channel_name)
        if channel is None:
            return Delivery(channel_name, False, f"unknown channel {channel_name!r}")
        try:
            url = channel_url(channel, self.environ)
        except ChannelError as e:
            return Delivery(channel_name, False, str(e))
        ap = apprise.Apprise()
        with apprise.LogCapture(level=logging.WARNING) as logs:
            if not ap.add(url):
                return Delivery(
                    channel_name,
                    False,
                    f"channel {channel_name}: apprise does not recognise the URL (check its scheme)",
                )
            try:
                ok = bool(
                    ap.notify(
                        body=body,
                        title=title,
                        notify_type=apprise.NotifyType.FAILURE if failure else apprise.NotifyType.SUCCESS,
                    )
                )
            except Exception as e:  # a plugin bug must not stop the other channels
                ok = False
                logs.write(f"{type(e).__name__}: {e}")
            captured = logs.getvalue().strip()
        if ok:
            return Delivery(channel_name, True, None)
        error = _scrub(captured.splitlines()[-1] if captured else "delivery failed", url)[:500]
        log.warning("notification to %s failed: %s", channel_name, error)
        return Delivery(channel_name, False, error)

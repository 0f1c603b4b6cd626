# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The JSON each alert provider type receives, field for field as Flagger's notifiers post it.

Slack, Discord and Rocket.Chat take Slack's attachment format (Discord through its ``/slack`` endpoint), Microsoft
Teams a MessageCard, Google Chat a card; ``generic`` receives Flagger's event-webhook payload with the alert in its
metadata, for any other receiver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

from ansible_collections.progressive.delivery.plugins.module_utils.alerts.severity import ERROR

SLACK, DISCORD, ROCKET, MSTEAMS, GCHAT, GENERIC = "slack", "discord", "rocket", "msteams", "gchat", "generic"
# googlechat is accepted as another name of Flagger's gchat.
TYPE_ALIASES = {"googlechat": GCHAT}
TYPES = (SLACK, DISCORD, ROCKET, MSTEAMS, GCHAT, GENERIC)


@dataclass(frozen=True)
class Message:
    """One alert as every provider sees it: the canary, the text, its facts, its severity."""

    name: str
    namespace: str
    text: str
    severity: str
    fields: Sequence[Mapping[str, str]] = ()
    phase: str = ""
    checksum: str = ""
    event_type: str = "Normal"
    timestamp_ms: int = 0

    @property
    def workload(self) -> str:
        return "%s.%s" % (self.name, self.namespace)


def canonical_type(provider_type: str) -> str:
    return TYPE_ALIASES.get(provider_type, provider_type)


def slack_payload(message: Message, channel: str, username: str, good: str = "good", bad: str = "danger") -> dict[str, Any]:
    return {
        "channel": channel,
        "username": username,
        "icon_url": "",
        "icon_emoji": ":rocket:",
        "attachments": [{
            "color": bad if message.severity == ERROR else good,
            "author_name": message.workload,
            "text": message.text,
            "mrkdwn_in": ["text"],
            "fields": [{"title": f["name"], "value": f["value"], "short": False} for f in message.fields],
        }],
    }


def msteams_payload(message: Message) -> dict[str, Any]:
    return {
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "themeColor": "FF0000" if message.severity == ERROR else "0076D7",
        "summary": message.workload,
        "sections": [{
            "activityTitle": message.text,
            "activitySubtitle": message.workload,
            "facts": [{"name": f["name"], "value": f["value"]} for f in message.fields],
        }],
    }


def gchat_payload(message: Message, title: str) -> dict[str, Any]:
    sections = [{"widgets": [{"textParagraph": {"text": "<font color=#848484><strong>%s</strong></font>" % message.text}}]}]
    sections.extend({"widgets": [{"textParagraph": {
        "text": "%s<br><font color=#848484><strong>%s</strong></font>" % (f["name"], f["value"])}}]}
        for f in message.fields)
    return {"cards": [{"header": {"title": title, "subtitle": message.workload}, "sections": sections}]}


def generic_payload(message: Message, alert_name: str) -> dict[str, Any]:
    metadata = {f["name"]: f["value"] for f in message.fields}
    metadata.update(eventMessage=message.text, eventType=message.event_type, severity=message.severity,
                    alert=alert_name, timestamp=str(message.timestamp_ms))
    return {"name": message.name, "namespace": message.namespace, "phase": message.phase,
            "checksum": message.checksum, "metadata": metadata}


def discord_address(address: str) -> str:
    """Discord takes Slack's format on the webhook's ``/slack`` path, which Flagger appends when it is missing."""
    if address.endswith("/slack"):
        return address
    parts = urlsplit(address)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + "/slack", parts.query, parts.fragment))


def build(provider_type: str, address: str, message: Message, channel: str, username: str,
          alert_name: str) -> tuple[str, dict[str, Any]]:
    """The URL and JSON body for one provider type; ValueError for a type Flagger has no notifier for."""
    kind = canonical_type(provider_type)
    if kind == SLACK:
        return address, slack_payload(message, channel, username)
    if kind == DISCORD:
        return discord_address(address), slack_payload(message, channel, username)
    if kind == ROCKET:
        return address, slack_payload(message, channel, username, good="#0076D7", bad="#FF0000")
    if kind == MSTEAMS:
        return address, msteams_payload(message)
    if kind == GCHAT:
        return address, gchat_payload(message, username)
    if kind == GENERIC:
        return address, generic_payload(message, alert_name)
    raise ValueError("provider type %r is not supported (one of %s, or googlechat)" % (provider_type, ", ".join(TYPES)))

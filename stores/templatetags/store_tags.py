from datetime import UTC, datetime

from django import template
from django.utils.html import format_html

from provisioning.engines import ENGINES
from stores import constants as c

register = template.Library()

STATUS_LABELS = dict(c.STATUS_CHOICES)


@register.filter
def get_item(mapping, key):
    return mapping.get(key, "")


@register.filter
def engine_title(name: str) -> str:
    engine = ENGINES.get(name)
    return engine.title if engine else name


@register.filter
def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


@register.filter
def reason_title(reason: str) -> str:
    return c.REASON_TITLES.get(reason, "")


@register.filter
def duration(ms) -> str:
    """``5681`` -> ``5.7 s``; ``83000`` -> ``1 min 23 s``; under a second in ms."""
    if ms is None:
        return ""
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s"


@register.simple_tag
def timestamp(value: datetime | None, style: str = "datetime"):
    """A ``<time>`` the browser shows in the viewer's time zone (static/js/app.js
    reads ``data-format``: ``datetime``, ``relative``, ``both`` or ``time``).
    The text inside, for a browser without JavaScript, is UTC and says so."""
    if value is None:
        return ""
    utc = value.astimezone(UTC)
    fallback = utc.strftime("%H:%M:%S UTC" if style == "time" else "%Y-%m-%d %H:%M UTC")
    return format_html('<time datetime="{}" data-format="{}">{}</time>',
                       utc.isoformat(timespec="seconds"), style, fallback)
@register.simple_tag
def sends_mail(store) -> bool:
    """Whether the store sends its mail through the platform's relay
    (STORE_SMTP_HOST) or only logs it."""
    from django.conf import settings

    return bool(settings.STORE_SMTP_HOST)

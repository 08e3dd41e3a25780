from django import template

register = template.Library()


@register.filter
def get_item(mapping, key):
    return mapping.get(key, "")


@register.simple_tag
def sends_mail(store) -> bool:
    """Whether the store sends its mail through the platform's relay
    (STORE_SMTP_HOST, and a chart that takes it) or only logs it."""
    from django.conf import settings

    from provisioning.engines import get_engine

    return bool(settings.STORE_SMTP_HOST) and get_engine(store.engine).mail_relay

from django import template
from django.conf import settings

register = template.Library()


@register.simple_tag
def signup_open() -> bool:
    """Whether anyone may sign up (STORE_SIGNUP=open): the nav shows the link."""
    return settings.STORE_SIGNUP == "open"

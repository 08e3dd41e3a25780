"""Store names, slugs and public hosts.

A name is free text for people (3-40 characters). Its slug becomes the first
label of the store's public host, so it must make a DNS label: lowercase
letters, digits and hyphens, starting and ending with a letter or digit.
"""

from __future__ import annotations

import re
import unicodedata

from django.conf import settings

from stores import constants as c

DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class InvalidName(ValueError):
    pass


def slugify_name(name: str) -> str:
    """Fold a name to ASCII and turn everything else into single hyphens."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")


def validate_name(name: object) -> str:
    """Return the cleaned name, or raise InvalidName saying what to fix."""
    if not isinstance(name, str):
        raise InvalidName("The name must be a string.")
    name = " ".join(name.split())
    if len(name) < c.NAME_MIN_LENGTH:
        raise InvalidName(f"The name must be at least {c.NAME_MIN_LENGTH} characters long.")
    if len(name) > c.NAME_MAX_LENGTH:
        raise InvalidName(f"The name must be at most {c.NAME_MAX_LENGTH} characters long.")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise InvalidName("The name must not contain control characters.")
    slug = slugify_name(name)
    if not slug:
        raise InvalidName(
            "The name must contain at least one letter (a-z) or digit: it becomes the "
            "store's web address, which can only use letters, digits and hyphens."
        )
    if not DNS_LABEL.match(slug):  # pragma: no cover - slugify_name guarantees it
        raise InvalidName("The name cannot be turned into a valid web address.")
    return name


def host_for(slug: str) -> str:
    return settings.STORE_HOST_PATTERN.format(slug=slug, base_domain=settings.STORE_BASE_DOMAIN)


def unique_slug(name: str, taken) -> str:
    """The name's slug, with -2, -3... appended when ``taken(slug)`` says so."""
    base = slugify_name(name)[:50].strip("-")
    slug, n = base, 1
    while taken(slug):
        n += 1
        slug = f"{base}-{n}"
    return slug

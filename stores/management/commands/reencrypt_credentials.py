"""Re-encrypt every store's credentials, and every webhook endpoint's
signing secrets, with the newest key.

Rotating the credentials key: put the new key first in STORE_CREDENTIALS_KEY
and keep the old one after it (``new,old``), deploy, run this command, then
drop the old key. Rows no configured key can decrypt are listed and left
as they are; the command then exits non-zero.
"""

from cryptography.fernet import InvalidToken, MultiFernet
from django.core.management.base import BaseCommand, CommandError

from stores.models import (
    CredentialsUnreadable,
    StoreCredentials,
    WebhookEndpoint,
    credentials_fernets,
)


class Command(BaseCommand):
    help = "Re-encrypt stored store credentials with the first key in STORE_CREDENTIALS_KEY."

    def handle(self, *args, **options):
        rotated = current = 0
        unreadable = []
        for creds in StoreCredentials.objects.order_by("pk").iterator():
            try:
                if creds.reencrypt():
                    rotated += 1
                else:
                    current += 1
            except CredentialsUnreadable:
                unreadable.append(creds.store_id)
        self.stdout.write(f"Re-encrypted {rotated} store(s); {current} already used the "
                          f"newest key.")
        endpoints, unreadable_endpoints = self.reencrypt_webhook_secrets()
        self.stdout.write(f"Re-encrypted the secrets of {endpoints} webhook endpoint(s).")
        if unreadable_endpoints:
            unreadable += [f"webhook endpoint {pk}" for pk in unreadable_endpoints]
        if unreadable:
            raise CommandError(
                f"{len(unreadable)} row(s) could not be decrypted with any configured key "
                f"and were left unchanged: {', '.join(unreadable)}. Add the key they were "
                "encrypted with to STORE_CREDENTIALS_KEY and run this again.")

    @staticmethod
    def reencrypt_webhook_secrets() -> tuple[int, list[int]]:
        """The current and previous secret of every endpoint, with the newest
        key; a row rewritten meanwhile (a rotation) is left to the next run."""
        fernets = credentials_fernets()
        newest, every = fernets[0], MultiFernet(fernets)
        done, unreadable = 0, []
        for endpoint in WebhookEndpoint.objects.order_by("pk").iterator():
            fields = {}
            for name in ("secret_encrypted", "previous_secret_encrypted"):
                token = getattr(endpoint, name).encode()
                if not token:
                    continue
                try:
                    newest.decrypt(token)
                except InvalidToken:
                    try:
                        fields[name] = every.rotate(token).decode()
                    except InvalidToken:
                        unreadable.append(endpoint.pk)
                        break
            else:
                if fields:
                    done += WebhookEndpoint.objects.filter(
                        pk=endpoint.pk, secret_encrypted=endpoint.secret_encrypted,
                    ).update(**fields)
        return done, unreadable

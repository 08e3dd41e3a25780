"""Re-encrypt every store's credentials with the newest key.

Rotating the credentials key: put the new key first in STORE_CREDENTIALS_KEY
and keep the old one after it (``new,old``), deploy, run this command, then
drop the old key. Rows no configured key can decrypt are listed and left
as they are; the command then exits non-zero.
"""

from django.core.management.base import BaseCommand, CommandError

from stores.models import CredentialsUnreadable, StoreCredentials


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
        if unreadable:
            raise CommandError(
                f"{len(unreadable)} store(s) could not be decrypted with any configured key "
                f"and were left unchanged: {', '.join(unreadable)}. Add the key they were "
                "encrypted with to STORE_CREDENTIALS_KEY and run this again.")

"""Token authentication for the API: django-rest-knox tokens (hashed at
rest) in the model stores.ApiToken. Kept apart from the views: DRF imports
this while it loads its own settings."""

from datetime import timedelta

from django.utils import timezone
from knox.auth import TokenAuthentication

from stores.models import ApiToken

# last_used_at is written at most this often per token: a busy client costs
# one UPDATE a minute, not one per request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class ApiTokenAuthentication(TokenAuthentication):
    """knox's authentication, plus when a token was last used; an expired
    token is refused (and deleted) like in knox, but a request does not
    sweep all of its user's other tokens (knox does, at one query more on
    every request): expired tokens stay listed on the tokens page until
    their owner removes them, and never authenticate."""

    def _cleanup_token(self, auth_token) -> bool:
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            auth_token.delete()
            return True
        return False

    def validate_user(self, auth_token):
        user, token = super().validate_user(auth_token)
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        return user, token

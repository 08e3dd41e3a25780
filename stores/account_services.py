"""Accounts: sign-up, e-mail verification, invitations, deleting an account.

Tokens are Django's own: verification links use a subclass of Django's
password-reset token generator (the documented way to make one-time,
expiring links), invitation links Django's signing with a maximum age. A
verification link stops working once the address is verified (its hash
covers the verification time), a reset link once the password changed, an
invitation once accepted.

STORE_SIGNUP decides who may sign up:
- ``open``: anyone; the address is verified before the first store;
- ``invite``: whoever holds an operator's invitation (it proves the address);
- ``closed``: nobody; operators create accounts in admin.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core import signing
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from stores import constants as c
from stores.models import Account, Invitation, Store
from stores.services import Actor, audit

log = logging.getLogger(__name__)

OPEN, INVITE, CLOSED = "open", "invite", "closed"
INVITATION_SALT = "stores.account_services.invitation"


class AccountError(Exception):
    """A request we refuse; ``field`` names the input to fix."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


class EmailVerificationTokenGenerator(PasswordResetTokenGenerator):
    """Django's reset-token machinery with its own salt; the hash covers the
    address and when it was verified, so a used or outdated link fails."""

    key_salt = "stores.account_services.EmailVerificationTokenGenerator"

    def _make_hash_value(self, user, timestamp) -> str:
        verified, pending = Account.objects.filter(user=user).values_list(
            "email_verified_at", "pending_email").first() or (None, "")
        return f"{user.pk}{user.email}{pending}{verified}{timestamp}"


verification_tokens = EmailVerificationTokenGenerator()


def signup_mode() -> str:
    return settings.STORE_SIGNUP


def normalize_email(email: object) -> str:
    return email.strip().lower() if isinstance(email, str) else ""


def email_taken(email: str) -> bool:
    users = get_user_model().objects
    return users.filter(email__iexact=email).exists() or users.filter(
        username__iexact=email).exists()


# -- invitations ---------------------------------------------------------------
def invitation_token(invitation: Invitation) -> str:
    return signing.dumps({"invitation": invitation.pk}, salt=INVITATION_SALT)


def invitation_for(token: str) -> Invitation:
    """The open invitation a link stands for, or AccountError saying why not."""
    try:
        data = signing.loads(token, salt=INVITATION_SALT, max_age=settings.INVITATION_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise AccountError("This invitation has expired. Ask the operator who sent it for "
                           "a new one.", status=410) from exc
    except signing.BadSignature as exc:
        raise AccountError("This invitation link is not valid; copy the whole link from "
                           "the e-mail.", status=404) from exc
    invitation = Invitation.objects.filter(pk=data.get("invitation")).first()
    if invitation is None:
        raise AccountError("This invitation was withdrawn.", status=404)
    if invitation.accepted_at is not None:
        raise AccountError("This invitation was already used. Sign in instead, or reset "
                           "your password.", status=410)
    return invitation


def invite(actor: Actor, email: str, note: str = "", *, base_url: str = "") -> Invitation:
    """Create an invitation and e-mail its link."""
    email = normalize_email(email)
    if email_taken(email):
        raise AccountError(f"{email} already has an account.", field="email")
    invitation = Invitation.objects.create(email=email, note=note, created_by=actor.user)
    audit(actor, "invite", email=email)
    send_invitation(invitation, base_url=base_url)
    return invitation


def send_invitation(invitation: Invitation, *, base_url: str = "") -> bool:
    link = (base_url or settings.PLATFORM_URL) + reverse("account:signup") + (
        f"?invite={invitation_token(invitation)}")
    sent = _send("invitation", invitation.email, {"invitation": invitation, "link": link,
                                                  "days": settings.INVITATION_MAX_AGE // 86400})
    if sent:
        Invitation.objects.filter(pk=invitation.pk).update(sent_at=timezone.now())
    return sent


# -- sign-up and verification ------------------------------------------------
def create_account(email: str, password: str, *, invitation: Invitation | None = None,
                   ip: str | None = None):
    """Create the user (the address is the user name) and their account.
    The form has checked the password against the validators."""
    email = normalize_email(email)
    mode = signup_mode()
    if mode == CLOSED or (mode == INVITE and invitation is None):
        raise AccountError("Sign-up is closed here; ask an operator for an account.",
                           status=403)
    if invitation is not None and invitation.email != email:
        raise AccountError("Sign up with the address the invitation was sent to.",
                           field="email")
    if email_taken(email):
        raise AccountError(f"{email} already has an account. Sign in, or reset your "
                           "password if you forgot it.", field="email", status=409)
    now = timezone.now()
    try:
        with transaction.atomic():
            user = get_user_model().objects.create_user(username=email, email=email,
                                                        password=password)
            Account.objects.create(
                user=user, verification_required=invitation is None,
                email_verified_at=now if invitation is not None else None,
            )
            if invitation is not None and not Invitation.objects.filter(
                    pk=invitation.pk, accepted_at__isnull=True).update(
                    accepted_at=now, accepted_by=user):
                raise AccountError("This invitation was already used.", status=410)
            audit(Actor(user, ip=ip, via="web"), "signup", mode=mode)
    except IntegrityError as exc:  # the same address, a moment earlier
        raise AccountError(f"{email} already has an account.", field="email",
                           status=409) from exc
    log.info("user=%s signed up (%s)", user.pk, mode)
    return user


def needs_verification(user) -> bool:
    return Account.objects.filter(user=user, verification_required=True,
                                  email_verified_at__isnull=True).exists()


def verification_link(user, base_url: str = "") -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    path = reverse("account:verify", args=[uid, verification_tokens.make_token(user)])
    return (base_url or settings.PLATFORM_URL) + path


def send_verification(user, *, base_url: str = "") -> bool:
    """Mail a verification link to the address being verified: a new one
    the user asked for, else the one they signed up with."""
    pending = Account.objects.filter(user=user).values_list("pending_email", flat=True).first()
    return _send("verify", pending or user.email, {
        "user": user, "link": verification_link(user, base_url), "change": bool(pending),
        "hours": settings.PASSWORD_RESET_TIMEOUT // 3600})


def request_email_change(user, new_email: str, *, base_url: str = "") -> bool:
    """Remember the new address and mail it a link; the old address stays
    until the link is opened. Returns whether the mail went out."""
    new_email = normalize_email(new_email)
    if new_email == normalize_email(user.email):
        raise AccountError("That is already your address.", field="email")
    if email_taken(new_email):
        raise AccountError("That address belongs to another account.", field="email",
                           status=409)
    account, _ = Account.objects.get_or_create(user=user)
    account.pending_email = new_email
    account.save(update_fields=["pending_email"])
    return send_verification(user, base_url=base_url)


def verify(uidb64: str, token: str):
    """Mark the address verified; AccountError when the link is bad, used or old."""
    try:
        user = get_user_model().objects.get(pk=urlsafe_base64_decode(uidb64).decode())
    except (ValueError, TypeError, OverflowError, get_user_model().DoesNotExist) as exc:
        raise AccountError("This verification link is not valid; copy the whole link "
                           "from the e-mail.", status=404) from exc
    pending = Account.objects.filter(user=user).values_list("pending_email", flat=True).first()
    if not pending and not needs_verification(user):
        raise AccountError("Your address is already verified: this link was used.",
                           status=410)
    if not verification_tokens.check_token(user, token):
        raise AccountError("This verification link has expired or was replaced by a newer "
                           "one. Sign in and send a new one from your account page.",
                           status=410)
    with transaction.atomic():
        if pending:
            if email_taken(pending):
                raise AccountError("That address belongs to another account now.", status=409)
            # Signed-up users sign in with their address: it follows.
            if normalize_email(user.username) == normalize_email(user.email):
                user.username = pending
            user.email = pending
            user.save(update_fields=["username", "email"])
        Account.objects.filter(user=user).update(email_verified_at=timezone.now(),
                                                 pending_email="")
    return user


# -- the account itself --------------------------------------------------------
def set_email_events(user, event_types: list[str]) -> Account:
    account, _ = Account.objects.get_or_create(user=user)
    account.email_events = event_types
    account.save(update_fields=["email_events"])
    return account


def delete_account(actor: Actor, user) -> None:
    """Delete the user and all they own; refused while they have live stores."""
    user_model = get_user_model()
    with transaction.atomic():
        # The same lock as creating a store: no store appears meanwhile.
        user_model.objects.select_for_update().filter(pk=user.pk).first()
        live = list(Store.objects.filter(owner=user, status__in=list(c.LIVE_STATES))
                    .order_by("created_at").values_list("name", "id"))
        if live:
            names = ", ".join(f"{name} ({store_id})" for name, store_id in live)
            raise AccountError(
                f"Delete your stores first: {names} still "
                f"{'exists' if len(live) == 1 else 'exist'}.", status=409)
        audit(actor, "delete_account", user=user.get_username())
        user.delete()
    log.info("user=%s deleted their account", user.pk)


def _send(kind: str, to: str, context: dict) -> bool:
    """Render accounts/email/<kind>_subject.txt and _body.txt and send them
    now. A mail server that is down is logged, never a crash: the person
    asks again (resend, reset)."""
    subject = " ".join(render_to_string(f"accounts/email/{kind}_subject.txt", context).split())
    body = render_to_string(f"accounts/email/{kind}_body.txt", context)
    try:
        EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [to]).send()
        return True
    except Exception as exc:  # smtplib, socket and ssl errors alike
        log.error("%s e-mail could not be sent: %s", kind, exc)
        return False

"""Forms of the account pages. Passwords are checked by Django's validators
(AUTH_PASSWORD_VALIDATORS) through Django's own creation form."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import BaseUserCreationForm

from stores import account_services, notification_types


class SignupForm(BaseUserCreationForm):
    email = forms.EmailField(label="E-mail address", max_length=150,
                             widget=forms.EmailInput(attrs={"autocomplete": "email",
                                                            "autofocus": True}))

    class Meta:
        model = get_user_model()
        fields = ("email",)

    def __init__(self, *args, invitation=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.invitation = invitation
        if invitation is not None:
            self.fields["email"].initial = invitation.email
            self.fields["email"].widget.attrs["readonly"] = True

    def clean_email(self) -> str:
        email = account_services.normalize_email(self.cleaned_data["email"])
        if self.invitation is not None and email != self.invitation.email:
            raise forms.ValidationError("Sign up with the address the invitation was sent to.")
        if account_services.email_taken(email):
            raise forms.ValidationError(
                "This address already has an account. Sign in, or reset your password if "
                "you forgot it.")
        return email

    def _post_clean(self):
        # The user name is the address: set it before the validators compare
        # the password with the user's attributes.
        self.instance.username = self.cleaned_data.get("email", "")
        super()._post_clean()


class EmailEventsForm(forms.Form):
    email_events = forms.MultipleChoiceField(
        choices=notification_types.choices, required=False,
        widget=forms.CheckboxSelectMultiple, label="E-mail me when",
    )


class EndpointForm(forms.Form):
    url = forms.CharField(label="URL", max_length=500,
                          widget=forms.URLInput(attrs={"placeholder": "https://"}))
    description = forms.CharField(max_length=200, required=False)
    event_types = forms.MultipleChoiceField(
        choices=notification_types.choices, widget=forms.CheckboxSelectMultiple,
        label="Events", error_messages={"required": "Pick at least one event type."},
    )


class EndpointEventsForm(forms.Form):
    event_types = forms.MultipleChoiceField(
        choices=notification_types.choices, widget=forms.CheckboxSelectMultiple,
        label="Events", error_messages={"required": "Pick at least one event type."},
    )


class PasswordConfirmedForm(forms.Form):
    """A form that asks for the signed-in user's password before it acts."""

    password = forms.CharField(widget=forms.PasswordInput(attrs={
        "autocomplete": "current-password"}), label="Your password")

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError("That is not your password.")
        return password


class EmailChangeForm(PasswordConfirmedForm):
    email = forms.EmailField(label="New e-mail address", max_length=150)
    field_order = ["email", "password"]


class DeleteAccountForm(PasswordConfirmedForm):
    pass

"""URLs under /accounts/ (the account pages, stores.account_pages)."""

from django.urls import path

from stores import account_pages as pages

app_name = "account"

urlpatterns = [
    path("", pages.home, name="home"),
    path("signup/", pages.signup, name="signup"),
    path("verify/resend/", pages.resend_verification, name="verify-resend"),
    path("verify/<uidb64>/<token>/", pages.verify, name="verify"),
    path("password_reset/", pages.password_reset, name="password_reset"),
    path("password_reset/done/", pages.password_reset_done, name="password_reset_done"),
    path("reset/<uidb64>/<token>/", pages.password_reset_confirm, name="password_reset_confirm"),
    path("reset/done/", pages.password_reset_complete, name="password_reset_complete"),
    path("password_change/", pages.password_change, name="password_change"),
    path("password_change/done/", pages.password_change_done, name="password_change_done"),
    path("email/", pages.email_change, name="email-change"),
    path("notifications/", pages.email_settings, name="email-settings"),
    path("webhooks/new/", pages.endpoint_create, name="webhook-create"),
    path("webhooks/<int:endpoint_id>/", pages.endpoint_detail, name="webhook"),
    path("webhooks/<int:endpoint_id>/events/", pages.endpoint_events, name="webhook-events"),
    path("webhooks/<int:endpoint_id>/test/", pages.endpoint_test, name="webhook-test"),
    path("webhooks/<int:endpoint_id>/enable/", pages.endpoint_enable, name="webhook-enable"),
    path("webhooks/<int:endpoint_id>/rotate/", pages.endpoint_rotate, name="webhook-rotate"),
    path("webhooks/<int:endpoint_id>/delete/", pages.endpoint_delete, name="webhook-delete"),
    path("webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/redeliver/",
         pages.delivery_redeliver, name="webhook-redeliver"),
    path("delete/", pages.delete_account, name="delete"),
]

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from storeplatform import health
from stores import accounts, metrics_view

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_view.metrics, name="metrics"),
    # Browsers ask for /favicon.ico on pages that name no icon (admin, API docs).
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"))),
    path("admin/", admin.site.urls),
    path("api/", include("stores.api.urls")),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/tokens/", accounts.tokens, name="tokens"),
    path("accounts/tokens/<str:prefix>/revoke/", accounts.revoke_token, name="revoke-token"),
    path("accounts/", include("stores.account_urls")),
    path("", include("stores.urls")),
]

# A form too large for DATA_UPLOAD_MAX_MEMORY_SIZE gets a page that says so;
# an unknown /api/ address is a JSON 404 like the API's own.
handler400 = "stores.middleware.bad_request"
handler404 = "stores.middleware.not_found"

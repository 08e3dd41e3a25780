from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from storeplatform import health
from stores import metrics_view

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_view.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/", include("stores.api.urls")),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", include("stores.account_urls")),
    path("", include("stores.urls")),
]

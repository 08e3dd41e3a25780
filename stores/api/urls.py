from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from stores.api.auth import obtain_token
from stores.api.views import BackupViewSet, DomainViewSet, StoreViewSet
from stores.api.webhooks import WebhookEndpointViewSet

router = DefaultRouter(trailing_slash=True)
router.register("stores", StoreViewSet, basename="store")
router.register(r"stores/(?P<store_pk>[^/.]+)/domains", DomainViewSet, basename="store-domain")
router.register(r"stores/(?P<store_pk>[^/.]+)/backups", BackupViewSet, basename="store-backup")
router.register("webhooks", WebhookEndpointViewSet, basename="webhook")

urlpatterns = [
    path("", include(router.urls)),
    path("auth/token/", obtain_token, name="api-token"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file: our
    # Content-Security-Policy refuses inline scripts.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]

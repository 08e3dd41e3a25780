from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.routers import DefaultRouter

from stores.api.views import StoreViewSet
from stores.api.webhooks import WebhookEndpointViewSet

router = DefaultRouter(trailing_slash=True)
router.register("stores", StoreViewSet, basename="store")
router.register("webhooks", WebhookEndpointViewSet, basename="webhook")

urlpatterns = [
    path("", include(router.urls)),
    path("auth/token/", obtain_auth_token, name="api-token"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

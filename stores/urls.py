from django.urls import path

from stores import views

app_name = "stores"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("stores/changes/", views.dashboard_changes, name="dashboard-changes"),
    path("stores/new/", views.create, name="create"),
    path("stores/address/", views.address, name="address"),
    path("stores/<str:store_id>/", views.detail, name="detail"),
    path("stores/<str:store_id>/changes/", views.detail_changes, name="detail-changes"),
    path("stores/<str:store_id>/credentials/", views.credentials, name="credentials"),
    path("stores/<str:store_id>/retry/", views.retry, name="retry"),
    path("stores/<str:store_id>/revisions/", views.revisions, name="revisions"),
    path("stores/<str:store_id>/upgrade/", views.upgrade, name="upgrade"),
    path("stores/<str:store_id>/rollback/", views.rollback, name="rollback"),
    path("stores/<str:store_id>/delete/", views.delete, name="delete"),
]

from django.urls import path

from stores import backup_views, domain_views, views

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
    path("stores/<str:store_id>/suspend/", views.suspend, name="suspend"),
    path("stores/<str:store_id>/resume/", views.resume, name="resume"),
    # Custom domains (stores/domain_views.py).
    path("stores/<str:store_id>/domains/", domain_views.card, name="domains"),
    path("stores/<str:store_id>/backups/", backup_views.card, name="backups"),
    path("stores/<str:store_id>/backups/new/", backup_views.back_up, name="backup-new"),
    path("stores/<str:store_id>/backups/<str:backup_id>/restore/", backup_views.restore,
         name="backup-restore"),
    path("stores/<str:store_id>/clone/", backup_views.clone, name="clone"),
    path("stores/<str:store_id>/domains/add/", domain_views.add, name="domain-add"),
    path("stores/<str:store_id>/domains/<int:domain_id>/verify/", domain_views.verify,
         name="domain-verify"),
    path("stores/<str:store_id>/domains/<int:domain_id>/primary/", domain_views.make_primary,
         name="domain-primary"),
    path("stores/<str:store_id>/domains/<int:domain_id>/remove/", domain_views.remove,
         name="domain-remove"),
]

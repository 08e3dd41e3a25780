"""Who may act on a store: its owner, or an operator holding the matching
model permission. One rule for the API (StorePermission and stores_for,
used by the viewset) and admin (StoreAdmin asks the same permissions).

An operator is what admin requires: an active staff user with the
permission (superusers have them all). Staff without permissions is an
ordinary owner. Credentials are the owner's alone: no permission opens
them, so no one else can log into a shop.
"""

from __future__ import annotations

import re

from django.db.models import QuerySet
from rest_framework.permissions import BasePermission

from stores.models import Store

# What acting on someone else's store needs, by viewset action (API) and
# admin action. Actions missing here are the owner's alone.
OPERATOR_PERMISSIONS = {
    "list": "stores.view_store",
    "retrieve": "stores.view_store",
    "events": "stores.view_store",
    "revisions": "stores.view_store",
    "destroy": "stores.delete_store",
    "retry": "stores.retry_store",
    "upgrade": "stores.upgrade_store",
    "rollback": "stores.rollback_store",
    "force_fail": "stores.force_fail_store",
    "suspend": "stores.suspend_store",
    "resume": "stores.resume_store",
    "backup": "stores.backup_store",
    "restore": "stores.restore_store",
    "clone": "stores.restore_store",
}

# Ids are made by stores.models.new_store_id: anything else names no store,
# and is answered 404 without asking the database (a NUL byte in an id is
# an error in PostgreSQL, not a miss).
STORE_ID = re.compile(r"[a-z][a-z0-9]{9}")
STORE_ID_PATTERN = f"^{STORE_ID.pattern}$"


def is_store_id(value: str) -> bool:
    return STORE_ID.fullmatch(value) is not None


def is_operator(user, permission: str | None) -> bool:
    return bool(permission) and user.is_active and user.is_staff and user.has_perm(permission)


def stores_for(user, action: str) -> QuerySet[Store]:
    """The stores ``user`` may see for ``action``: their own, plus every
    store when they may view stores as an operator (acting on them is then
    StorePermission's question)."""
    stores = Store.objects.select_related("owner")
    if action in OPERATOR_PERMISSIONS and is_operator(user, "stores.view_store"):
        return stores
    return stores.filter(owner=user)


class StorePermission(BasePermission):
    """Owners may do everything to their stores; anyone else needs the
    action's permission (OPERATOR_PERMISSIONS)."""

    def has_object_permission(self, request, view, store: Store) -> bool:
        if store.owner_id == request.user.pk:
            return True
        permission = OPERATOR_PERMISSIONS.get(view.action)
        self.message = (
            f"This store is not yours: {view.action} on someone else's store needs the "
            f"permission {permission}." if permission else "Only the store's owner may do this."
        )
        return is_operator(request.user, permission)

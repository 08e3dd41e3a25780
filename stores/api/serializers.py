from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from provisioning.engines import ENGINES
from stores import constants as c
from stores.domains import dns_records
from stores.models import Backup, Domain, Store, StoreEvent


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, instead of silently ignoring them."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"detail": "Expected a JSON object."})
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {field: ["Unknown field: remove it from the request."] for field in unknown}
            )
        return super().to_internal_value(data)


class StringField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of coercing them."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field({"type": "string", "minLength": c.NAME_MIN_LENGTH,
                      "maxLength": c.NAME_MAX_LENGTH})
class NameField(StringField):
    """The lengths are documented for clients; stores.naming checks them
    (after folding runs of whitespace) with its own messages."""


class StoreCreateSerializer(StrictSerializer):
    # The name's rules live in stores.naming, shared with the web page, so
    # both give the same messages; the schema still documents them.
    name = NameField(
        trim_whitespace=False,
        help_text=f"{c.NAME_MIN_LENGTH}-{c.NAME_MAX_LENGTH} characters, with at least one "
                  "letter or digit; its slug becomes the store's host name.",
    )
    engine = serializers.ChoiceField(
        choices=sorted(ENGINES),
        error_messages={"invalid_choice": '"{input}" is not an engine; choose one of: '
                                          + ", ".join(sorted(ENGINES)) + "."},
    )


class CloneSerializer(StrictSerializer):
    name = NameField(trim_whitespace=False, help_text="The new store's name.")
    backup_id = StringField(required=False, max_length=12,
                            help_text="The backup to copy; the latest good one if omitted.")


class UpgradeSerializer(StrictSerializer):
    skip_backup = serializers.BooleanField(
        required=False, default=False,
        help_text="Operators only: upgrade without the backup first (audited).")


class RollbackSerializer(StrictSerializer):
    revision = serializers.IntegerField(min_value=1, max_value=2**31 - 1)


class DomainCreateSerializer(StrictSerializer):
    # The host name's rules live in stores.domains, shared with the web page.
    hostname = StringField(max_length=300, allow_blank=True, help_text="A host name of yours, like "
                                                     "shop.example.com.")


class DnsRecordSerializer(serializers.Serializer):
    type = serializers.CharField()
    name = serializers.CharField()
    value = serializers.CharField()
    purpose = serializers.CharField()


class DomainSerializer(serializers.ModelSerializer):
    url = serializers.CharField(read_only=True)
    records = serializers.SerializerMethodField()

    class Meta:
        model = Domain
        fields = [
            "id", "hostname", "status", "is_primary", "url", "verification_token", "records",
            "verified_at", "certificate_state", "last_checked_at", "last_error", "created_at",
        ]
        read_only_fields = fields

    @staticmethod
    def get_records(domain: Domain) -> list[dict]:
        return DnsRecordSerializer(dns_records(domain), many=True).data


class StoreSerializer(serializers.ModelSerializer):
    # null for a store waiting in the warm pool (operators only see those).
    owner = serializers.CharField(source="owner.username", read_only=True, allow_null=True)
    storefront_url = serializers.CharField(read_only=True)
    primary_url = serializers.CharField(read_only=True)
    admin_url = serializers.CharField(read_only=True)
    status_title = serializers.CharField(read_only=True)
    domains = DomainSerializer(many=True, read_only=True)

    class Meta:
        model = Store
        fields = [
            "id", "name", "engine", "status", "status_reason", "status_title", "status_message",
            "storefront_url", "primary_url", "admin_url", "host", "domains", "owner",
            "current_step", "step_started_at", "chart_version", "helm_revision", "created_at",
            "updated_at", "ready_at", "deleted_at", "diagnostics",
        ]
        read_only_fields = fields


class BackupSerializer(serializers.ModelSerializer):
    class Meta:
        model = Backup
        fields = ["id", "store", "kind", "status", "created_at", "started_at", "finished_at",
                  "size", "sha256", "location", "verified_at", "error", "pinned"]
        read_only_fields = fields


class RestoreSerializer(StrictSerializer):
    """No fields: the backup is the one in the URL."""


class StoreEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = StoreEvent
        fields = [
            "id", "created_at", "kind", "status_from", "status_to", "step", "message",
            "reason", "duration_ms", "actor",
        ]
        read_only_fields = fields


class CredentialsSerializer(serializers.Serializer):
    admin_url = serializers.CharField()
    username = serializers.CharField()
    email = serializers.CharField()
    password = serializers.CharField()


class RevisionSerializer(serializers.Serializer):
    revision = serializers.IntegerField(source="number")
    updated = serializers.DateTimeField(source="updated_at", allow_null=True)
    status = serializers.CharField()
    chart = serializers.CharField()
    app_version = serializers.CharField(allow_blank=True)
    description = serializers.CharField(allow_blank=True)


# -- webhooks (stores.webhooks) ------------------------------------------------
class WebhookEndpointSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    url = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    event_types = serializers.ListField(child=serializers.CharField())
    enabled = serializers.BooleanField()
    disabled_reason = serializers.CharField(allow_blank=True)
    failing_since = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(help_text="Shown once: keep it to verify signatures.")


class WebhookEndpointCreateSerializer(StrictSerializer):
    # The URL's rules live in stores.webhooks, shared with the account page.
    url = StringField(allow_blank=True, help_text="https:// URL on a public address "
                                                  "(http:// too while DEBUG is on).")
    event_types = serializers.ListField(child=StringField(), allow_empty=False)
    description = StringField(required=False, allow_blank=True, max_length=200)


class WebhookEndpointUpdateSerializer(StrictSerializer):
    url = StringField(required=False, allow_blank=True)
    event_types = serializers.ListField(child=StringField(), required=False, allow_empty=False)
    description = StringField(required=False, allow_blank=True, max_length=200)
    enabled = serializers.BooleanField(required=False)


class DeliveryAttemptSerializer(serializers.Serializer):
    attempt = serializers.IntegerField(source="number")
    started_at = serializers.DateTimeField()
    status_code = serializers.IntegerField(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)
    response_excerpt = serializers.CharField(allow_blank=True)
    error = serializers.CharField(allow_blank=True)


class WebhookDeliverySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    event_id = serializers.CharField()
    event_type = serializers.CharField()
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    last_status_code = serializers.IntegerField(allow_null=True)
    redelivery_of = serializers.IntegerField(source="redelivery_of_id", allow_null=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    attempt_log = DeliveryAttemptSerializer(many=True)

{{/* Names and labels. */}}
{{- define "platform.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "platform.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "platform.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "platform.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "platform.selectorLabels" -}}
app.kubernetes.io/name: {{ include "platform.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "platform.labels" -}}
{{ include "platform.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Labels of one component: include "platform.componentLabels" (list . "web") */}}
{{- define "platform.componentLabels" -}}
{{ include "platform.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "platform.componentSelector" -}}
{{ include "platform.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "platform.serviceAccountName" -}}
{{- default (include "platform.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "platform.image" -}}
{{ printf "%s:%s" .Values.image.repository .Values.image.tag }}
{{- end -}}

{{- define "platform.postgresHost" -}}
{{ include "platform.fullname" . }}-postgresql
{{- end -}}

{{- define "platform.redisHost" -}}
{{ include "platform.fullname" . }}-redis
{{- end -}}

{{/* Restricted Pod Security Standard, for pods and containers. */}}
{{- define "platform.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "platform.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "platform.validate" -}}
{{- if not .Values.secrets.existingSecret -}}
{{- fail "secrets.existingSecret is required: the name of the Secret holding django-secret-key (see README)" -}}
{{- end -}}
{{- if and (not .Values.postgresql.enabled) (not .Values.externalDatabase.existingSecret) -}}
{{- fail "externalDatabase.existingSecret is required when postgresql.enabled is false" -}}
{{- end -}}
{{- if and (not .Values.redis.enabled) (not .Values.externalRedis.existingSecret) -}}
{{- fail "externalRedis.existingSecret is required when redis.enabled is false" -}}
{{- end -}}
{{- if and .Values.ingress.tls.enabled (not .Values.ingress.tls.secretName) -}}
{{- fail "ingress.tls.secretName is required when ingress.tls.enabled is true" -}}
{{- end -}}
{{- if and .Values.storeBackups.objectStorage.bucket .Values.networkPolicy.enabled (not .Values.storeBackups.egress.cidrs) -}}
{{- fail "storeBackups.egress.cidrs is required when storeBackups.objectStorage.bucket is set: the addresses of the object storage, which the worker's NetworkPolicy opens (see README, Network policies)" -}}
{{- end -}}
{{- end -}}

{{/*
Environment of every platform process (web, worker, beat, migrations).
Non-secret settings come from the ConfigMap; secrets only as secretKeyRef.
DATABASE_URL and REDIS_URL for the in-cluster servers are assembled with
Kubernetes' $(VAR) expansion, so the password never appears in a manifest.
*/}}
{{- define "platform.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "platform.fullname" . }}-config
env:
  - name: DJANGO_SECRET_KEY
    valueFrom:
      secretKeyRef:
        name: {{ .Values.secrets.existingSecret }}
        key: {{ .Values.secrets.djangoSecretKeyKey }}
  - name: STORE_CREDENTIALS_KEY
    valueFrom:
      secretKeyRef:
        name: {{ .Values.secrets.existingSecret }}
        key: {{ .Values.secrets.credentialsKeyKey }}
  - name: METRICS_TOKEN
    valueFrom:
      secretKeyRef:
        name: {{ .Values.secrets.existingSecret }}
        key: {{ .Values.secrets.metricsTokenKey }}
        optional: {{ not .Values.metrics.requireToken }}
  - name: EMAIL_HOST_PASSWORD
    valueFrom:
      secretKeyRef:
        name: {{ .Values.secrets.existingSecret }}
        key: {{ .Values.secrets.emailPasswordKey }}
        optional: true
{{- if .Values.postgresql.enabled }}
  - name: POSTGRES_PASSWORD
    valueFrom:
      secretKeyRef:
        name: {{ .Values.secrets.existingSecret }}
        key: {{ .Values.postgresql.passwordKey }}
  - name: DATABASE_URL
    value: {{ printf "postgres://%s:$(POSTGRES_PASSWORD)@%s:5432/%s" .Values.postgresql.username (include "platform.postgresHost" .) .Values.postgresql.database | quote }}
{{- else }}
  - name: DATABASE_URL
    valueFrom:
      secretKeyRef:
        name: {{ .Values.externalDatabase.existingSecret }}
        key: {{ .Values.externalDatabase.urlKey }}
{{- end }}
{{- if .Values.redis.enabled }}
  - name: REDIS_PASSWORD
    valueFrom:
      secretKeyRef:
        name: {{ .Values.secrets.existingSecret }}
        key: {{ .Values.redis.passwordKey }}
  - name: REDIS_URL
    value: {{ printf "redis://:$(REDIS_PASSWORD)@%s:6379/0" (include "platform.redisHost" .) | quote }}
{{- else }}
  - name: REDIS_URL
    valueFrom:
      secretKeyRef:
        name: {{ .Values.externalRedis.existingSecret }}
        key: {{ .Values.externalRedis.urlKey }}
{{- end }}
{{- range $name, $ref := .Values.config.extraSecretEnv }}
  - name: {{ $name }}
    valueFrom:
      secretKeyRef:
        name: {{ $ref.secret }}
        key: {{ $ref.key }}
{{- end }}
{{- end -}}

{{/* Volumes every platform pod mounts: a writable /tmp (HOME, helm caches). */}}
{{- define "platform.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- end -}}

{{- define "platform.tmpMount" -}}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/*
Store backups (issue 12): the object storage keys, as files from the Secret
storeBackups.existingSecret, and the variables naming those files. Only with
a bucket: without one, store backups are off and no pod waits for a Secret
that need not exist. Use in env (after platform.env), volumeMounts, volumes.
*/}}
{{- define "platform.storeBackups.keysDir" -}}
/var/run/storeplatform/store-backups
{{- end -}}

{{- define "platform.storeBackups.env" -}}
{{- if .Values.storeBackups.objectStorage.bucket -}}
- name: STORE_BACKUP_S3_ACCESS_KEY_FILE
  value: {{ printf "%s/access-key" (include "platform.storeBackups.keysDir" .) }}
- name: STORE_BACKUP_S3_SECRET_KEY_FILE
  value: {{ printf "%s/secret-key" (include "platform.storeBackups.keysDir" .) }}
{{- end }}
{{- end -}}

{{- define "platform.storeBackups.mount" -}}
{{- if .Values.storeBackups.objectStorage.bucket -}}
- name: store-backup-keys
  mountPath: {{ include "platform.storeBackups.keysDir" . }}
  readOnly: true
{{- end }}
{{- end -}}

{{- define "platform.storeBackups.volume" -}}
{{- if .Values.storeBackups.objectStorage.bucket -}}
- name: store-backup-keys
  secret:
    secretName: {{ .Values.storeBackups.existingSecret }}
    optional: false
    # Owner root, group fsGroup (the pods' 10001): readable by the platform
    # user and no one else.
    defaultMode: 0440
    items:
      - {key: access-key, path: access-key}
      - {key: secret-key, path: secret-key}
{{- end }}
{{- end -}}

{{/*
Init container that holds an app pod until the database schema matches the
code (`migrate --check` exits non-zero while migrations are pending), so a
new version never serves or works against an old schema.
*/}}
{{- define "platform.waitForMigrations" -}}
- name: wait-for-migrations
  image: {{ include "platform.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command:
    - sh
    - -c
    - |
      until python manage.py migrate --check >/dev/null 2>&1; do
        echo "waiting for database migrations (the migrate Job of this release)"
        sleep 5
      done
  {{- include "platform.env" . | nindent 2 }}
  securityContext:
    {{- include "platform.containerSecurityContext" . | nindent 4 }}
  resources:
    {{- toYaml .Values.migrations.resources | nindent 4 }}
  volumeMounts:
    {{- include "platform.tmpMount" . | nindent 4 }}
{{- end -}}

{{/* Name prefix for every object: the release name (store-<id>). */}}
{{- define "medusa.fullname" -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "medusa.labels" -}}
app.kubernetes.io/name: medusa
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: storeplatform
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
storeplatform.io/store-id: {{ .Values.store.id | quote }}
{{- end -}}

{{/* Selector labels for one component: server, postgresql, redis. */}}
{{- define "medusa.selector" -}}
app.kubernetes.io/name: medusa
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "medusa.postgresHost" -}}
{{ include "medusa.fullname" . }}-postgresql
{{- end -}}

{{- define "medusa.redisHost" -}}
{{ include "medusa.fullname" . }}-redis
{{- end -}}

{{/* Medusa's backend URL: the public host (templates/_https.tpl). */}}
{{- define "medusa.publicUrl" -}}
{{ .Values.store.scheme }}://{{ include "medusa.publicHost" . }}
{{- end -}}

{{/* Browsers may call the API from every host the store answers on. */}}
{{- define "medusa.corsOrigins" -}}
{{- $origins := list (include "medusa.publicUrl" .) (printf "%s://%s" .Values.store.scheme .Values.store.host) -}}
{{- range .Values.domains }}{{ $origins = append $origins (printf "%s://%s" $.Values.store.scheme .host) }}{{ end -}}
{{ $origins | uniq | join "," }}
{{- end -}}

{{/* The restricted Pod Security Standard, for every container. */}}
{{- define "medusa.containerSecurityContext" -}}
allowPrivilegeEscalation: false
privileged: false
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "medusa.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.existingSecret }}
      key: {{ .key }}
{{- end -}}

{{/*
Environment shared by the setup init container and the server. The database
password enters the URL through Kubernetes' $(VAR) interpolation, so it never
appears in a rendered manifest. The platform generates URL-safe passwords
(see charts/medusa/README.md).
*/}}
{{- define "medusa.env" -}}
- name: NODE_ENV
  value: production
- name: PORT
  value: {{ .Values.medusa.port | quote }}
- name: NODE_OPTIONS
  value: {{ printf "--max-old-space-size=%d" (int .Values.medusa.maxOldSpaceMiB) | quote }}
- name: MEDUSA_DISABLE_TELEMETRY
  value: "true"
- name: MEDUSA_WORKER_MODE
  value: shared
- name: STORE_NAME
  value: {{ .Values.store.name | quote }}
- name: MEDUSA_PUBLIC_URL
  value: {{ include "medusa.publicUrl" . | quote }}
- name: STORE_CORS
  value: {{ include "medusa.corsOrigins" . | quote }}
- name: ADMIN_CORS
  value: {{ include "medusa.corsOrigins" . | quote }}
- name: AUTH_CORS
  value: {{ include "medusa.corsOrigins" . | quote }}
{{- /* Session cookies may only be Secure when shoppers arrive over https. */}}
- name: COOKIE_SECURE
  value: {{ ternary "true" "false" (eq .Values.store.scheme "https") | quote }}
{{ include "medusa.secretEnv" (dict "root" . "name" "DB_PASSWORD" "key" "db-password") }}
- name: DATABASE_URL
  value: {{ printf "postgres://%s:$(DB_PASSWORD)@%s:5432/%s" .Values.postgresql.username (include "medusa.postgresHost" .) .Values.postgresql.database | quote }}
- name: REDIS_URL
  value: {{ printf "redis://%s:6379" (include "medusa.redisHost" .) | quote }}
{{ include "medusa.secretEnv" (dict "root" . "name" "JWT_SECRET" "key" "jwt-secret") }}
{{ include "medusa.secretEnv" (dict "root" . "name" "COOKIE_SECRET" "key" "cookie-secret") }}
{{- end -}}

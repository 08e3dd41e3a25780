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
A literal env value. Kubernetes expands $(VAR) in env values (and `$$` to
`$`), so a user's "$(DB_PASSWORD)" would become the password: every `$` is
doubled to reach the container as typed. Quoted for YAML.
*/}}
{{- define "medusa.literal" -}}
{{ . | toString | replace "$" "$$" | quote }}
{{- end -}}

{{/*
Environment shared by every Medusa container (setup, server, worker).
Call with (dict "root" . "workerMode" "shared|server|worker"). The database
password enters the URL through Kubernetes' $(VAR) interpolation, so it
never appears in a rendered manifest; the platform generates URL-safe
passwords (see charts/medusa/README.md).
*/}}
{{- define "medusa.env" -}}
{{- $root := .root -}}
{{- with .root -}}
- name: NODE_ENV
  value: production
- name: PORT
  value: {{ .Values.medusa.port | quote }}
- name: NODE_OPTIONS
  value: {{ printf "--max-old-space-size=%d" (int .Values.medusa.maxOldSpaceMiB) | quote }}
- name: MEDUSA_DISABLE_TELEMETRY
  value: "true"
- name: MEDUSA_WORKER_MODE
  value: {{ $.workerMode | quote }}
{{- /* A worker serves no dashboard. */}}
- name: ADMIN_DISABLED
  value: {{ ternary "true" "false" (eq $.workerMode "worker") | quote }}
- name: STORE_NAME
  value: {{ include "medusa.literal" .Values.store.name }}
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
{{ include "medusa.secretEnv" (dict "root" $root "name" "DB_PASSWORD" "key" "db-password") }}
- name: DATABASE_URL
  value: {{ printf "postgres://%s:$(DB_PASSWORD)@%s:5432/%s" .Values.postgresql.username (include "medusa.postgresHost" .) .Values.postgresql.database | quote }}
- name: REDIS_URL
  value: {{ printf "redis://%s:6379" (include "medusa.redisHost" .) | quote }}
{{ include "medusa.secretEnv" (dict "root" $root "name" "JWT_SECRET" "key" "jwt-secret") }}
{{ include "medusa.secretEnv" (dict "root" $root "name" "COOKIE_SECRET" "key" "cookie-secret") }}
{{- end -}}
{{- end -}}

{{/*
The SMTP relay, for the container that runs subscribers (the server in
shared mode, the worker in split mode). Nothing without smtp.host: mail is
then logged by Medusa's local provider.
*/}}
{{- define "medusa.smtpEnv" -}}
{{- with .Values.smtp -}}
{{- if .host -}}
- name: SMTP_HOST
  value: {{ include "medusa.literal" .host }}
- name: SMTP_PORT
  value: {{ .port | quote }}
- name: SMTP_USER
  value: {{ include "medusa.literal" .username }}
{{- if .existingSecret }}
- name: SMTP_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: password
{{- end }}
- name: SMTP_FROM
  value: {{ include "medusa.literal" (.from | default (printf "shop@%s" $.Values.store.host)) }}
- name: SMTP_TLS
  value: {{ .tls | quote }}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Does the pod of this component send mail? */}}
{{- define "medusa.sendsMail" -}}
{{- if and .root.Values.smtp.host (eq .component (ternary "worker" "server" (eq .root.Values.medusa.workerMode "split"))) -}}
true
{{- end -}}
{{- end -}}

{{/*
The Medusa containers' writable paths: /tmp (an emptyDir) and the uploads
volume at /app/static. Everything else is the image's read-only tree.
*/}}
{{- define "medusa.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .uploads }}
- name: uploads
  mountPath: /app/static
{{- end }}
{{- end -}}

{{- define "medusa.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.medusa.tmpSizeLimit }}
- name: uploads
  persistentVolumeClaim:
    claimName: {{ include "medusa.fullname" . }}-uploads
{{- end -}}

{{/* The pod-level security context of every Medusa pod. */}}
{{- define "medusa.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
fsGroup: 1000
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The Medusa pods that talk to PostgreSQL and Redis, as NetworkPolicy peers. */}}
{{- define "medusa.appPeers" -}}
- podSelector:
    matchLabels:
      {{- include "medusa.selector" (dict "root" . "component" "server") | nindent 6 }}
{{- if eq .Values.medusa.workerMode "split" }}
- podSelector:
    matchLabels:
      {{- include "medusa.selector" (dict "root" . "component" "worker") | nindent 6 }}
{{- end }}
{{- end -}}

{{/* Egress from a Medusa pod to the store's PostgreSQL and Redis. */}}
{{- define "medusa.backendEgress" -}}
- to:
    - podSelector:
        matchLabels:
          {{- include "medusa.selector" (dict "root" . "component" "postgresql") | nindent 10 }}
  ports:
    - port: 5432
      protocol: TCP
- to:
    - podSelector:
        matchLabels:
          {{- include "medusa.selector" (dict "root" . "component" "redis") | nindent 10 }}
  ports:
    - port: 6379
      protocol: TCP
{{- end -}}

{{/*
Egress to the SMTP relay: its port only, on public addresses (the private,
link-local and carrier-grade NAT ranges stay closed, as for the WooCommerce
chart's setup Job). A NetworkPolicy cannot name a host, so any public
address on that port is reachable.
*/}}
{{- define "medusa.smtpEgress" -}}
- to:
    - ipBlock:
        cidr: 0.0.0.0/0
        except: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 169.254.0.0/16, 100.64.0.0/10]
  ports:
    - port: {{ .Values.smtp.port }}
      protocol: TCP
{{- end -}}

{{/* Suspend and resume (issue 13): replicas of every Deployment and
StatefulSet, none while the store is suspended. */}}
{{- define "medusa.replicas" -}}
{{- if .Values.suspended }}0{{ else }}1{{ end -}}
{{- end -}}

{{/* Is the shop stopped? Suspended (issue 13), or in maintenance for a
restore (issue 12): the server and worker stop, and while suspended
PostgreSQL and Redis too; a store in maintenance keeps them running. */}}
{{- define "medusa.appStopped" -}}
{{- if or .Values.suspended .Values.maintenance }}true{{ end -}}
{{- end -}}

{{/* Replicas of the Medusa server and worker: none while the shop is stopped. */}}
{{- define "medusa.appReplicas" -}}
{{- if include "medusa.appStopped" . }}0{{ else }}1{{ end -}}
{{- end -}}

{{/* The backend of the store's Ingresses: the shop, or while it is stopped
(suspended, maintenance) the platform's paused page through the ExternalName
Service (templates/paused.yaml). */}}
{{- define "medusa.backend" -}}
service:
{{- if and (include "medusa.appStopped" .) .Values.paused.backend }}
  name: {{ include "medusa.fullname" . }}-paused
  port:
    number: {{ .Values.paused.port }}
{{- else }}
  name: {{ include "medusa.fullname" . }}-medusa
  port:
    name: http
{{- end }}
{{- end -}}

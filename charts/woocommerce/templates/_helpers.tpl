{{/* Names and labels shared by every template. */}}

{{- define "woo.fullname" -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "woo.selectorLabels" -}}
app.kubernetes.io/name: woocommerce
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "woo.labels" -}}
{{ include "woo.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: storeplatform
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
storeplatform.io/store-id: {{ .Values.store.id | quote }}
{{- end -}}

{{/* Where WordPress lives (home, siteurl): the public host (templates/_https.tpl). */}}
{{- define "woo.storeUrl" -}}
{{ .Values.store.scheme }}://{{ include "woo.publicHost" . }}
{{- end -}}

{{- define "woo.mariadbHost" -}}
{{ include "woo.fullname" . }}-mariadb
{{- end -}}

{{/* Image of the WordPress site: official, or the baked one with WooCommerce. */}}
{{- define "woo.wordpressImage" -}}
{{- $img := .Values.images.wordpress -}}
{{- if eq .Values.woocommerce.source "baked" }}{{ $img = .Values.images.baked }}{{ end -}}
{{ $img.repository }}:{{ $img.tag }}
{{- end -}}

{{/* Image of the setup Job: wordpress:cli, or the baked image (it carries WP-CLI). */}}
{{- define "woo.setupImage" -}}
{{- $img := .Values.images.cli -}}
{{- if eq .Values.woocommerce.source "baked" }}{{ $img = .Values.images.baked }}{{ end -}}
{{ $img.repository }}:{{ $img.tag }}
{{- end -}}

{{/* Pod-level security: every pod of the chart meets PSA "restricted". */}}
{{- define "woo.podSecurity" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
fsGroup: {{ .uid }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "woo.containerSecurity" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Database connection as read by wp-config.php (the image's wp-config-docker.php). */}}
{{- define "woo.dbEnv" -}}
- name: WORDPRESS_DB_HOST
  value: {{ include "woo.mariadbHost" . }}:3306
- name: WORDPRESS_DB_NAME
  value: wordpress
- name: WORDPRESS_DB_USER
  value: wordpress
- name: WORDPRESS_DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.existingSecret }}
      key: db-password
{{- end -}}

{{/*
A string from values as an env value that Kubernetes passes through as is:
the kubelet expands $(VAR) in env values, command and args, and $$ is its
escape for a literal $. Quoted with toJson, so YAML keeps it exact too.
*/}}
{{- define "woo.literal" -}}
{{ toString . | replace "$" "$$" | toJson }}
{{- end -}}

{{/* Public addresses only: not the cluster's private ranges (the API server
listens there), nor link-local (cloud metadata) or carrier-grade NAT. */}}
{{- define "woo.publicInternet" -}}
- ipBlock:
    cidr: 0.0.0.0/0
    except: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 169.254.0.0/16, 100.64.0.0/10]
{{- end -}}

{{/* Where the chart's must-use plugins are mounted, outside the WordPress
volume (see templates/wordpress.yaml for why). */}}
{{- define "woo.muPluginDir" -}}
/opt/storeplatform/mu-plugins
{{- end -}}

{{/*
PHP evaluated by wp-config.php (the image's wp-config-docker.php evals
WORDPRESS_CONFIG_EXTRA) in the site and in the cron Job's WP-CLI:
- no outbound HTTP (the NetworkPolicies would drop it after a long timeout)
  and no self-updates (the image pins the versions);
- no WP-Cron on page loads: it would call the site's own public URL, which
  from inside the pod goes nowhere; the CronJob runs the events instead;
- the chart's must-use plugins (e-mail);
- WordPress raises PHP's memory limit to WP_MAX_MEMORY_LIMIT (256M) on admin
  pages and in background jobs; pinning both to the configured limit keeps
  the Apache workers within the container's memory (see values.yaml).
Argument: the PHP memory limit, e.g. "192M".
*/}}
{{- define "woo.configExtra" -}}
define('WP_HTTP_BLOCK_EXTERNAL', true);
define('AUTOMATIC_UPDATER_DISABLED', true);
define('WP_AUTO_UPDATE_CORE', false);
define('DISABLE_WP_CRON', true);
define('WPMU_PLUGIN_DIR', '{{ include "woo.muPluginDir" . }}');
define('WP_MEMORY_LIMIT', '{{ .memoryLimit }}');
define('WP_MAX_MEMORY_LIMIT', '{{ .memoryLimit }}');
{{- end -}}

{{/*
The SMTP relay, as environment for the mail must-use plugin
(files/mu-plugins/storeplatform-mail.php). No host: mail is logged.
*/}}
{{- define "woo.smtpEnv" -}}
{{- $smtp := .Values.smtp -}}
- name: STORE_SMTP_HOST
  value: {{ include "woo.literal" $smtp.host }}
- name: STORE_SMTP_PORT
  value: {{ include "woo.literal" $smtp.port }}
- name: STORE_SMTP_TLS
  value: {{ include "woo.literal" $smtp.tls }}
- name: STORE_SMTP_USER
  value: {{ include "woo.literal" $smtp.username }}
- name: STORE_SMTP_FROM
  value: {{ include "woo.literal" ($smtp.from | default (printf "shop@%s" .Values.store.host)) }}
{{- with $smtp.existingSecret }}
- name: STORE_SMTP_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: password
{{- end }}
{{- end -}}

{{/* WP-CLI pods (setup Job, cron) share the WordPress volume, which is
ReadWriteOnce: they must land on the WordPress pod's node. */}}
{{- define "woo.nextToWordpress" -}}
podAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    - topologyKey: kubernetes.io/hostname
      labelSelector:
        matchLabels:
          {{- include "woo.selectorLabels" . | nindent 10 }}
          app.kubernetes.io/component: wordpress
{{- end -}}

{{/* Suspend and resume (issue 13): replicas of every Deployment and
StatefulSet, none while the store is suspended. */}}
{{- define "woo.replicas" -}}
{{- if .Values.suspended }}0{{ else }}1{{ end -}}
{{- end -}}

{{/* Is the shop stopped? Suspended (issue 13), or in maintenance for a
restore (issue 12): the site and cron stop, and while suspended the database
too; a store in maintenance keeps MariaDB running for the restore Job. */}}
{{- define "woo.appStopped" -}}
{{- if or .Values.suspended .Values.maintenance }}true{{ end -}}
{{- end -}}

{{/* Replicas of the site (WordPress): none while the shop is stopped. */}}
{{- define "woo.appReplicas" -}}
{{- if include "woo.appStopped" . }}0{{ else }}1{{ end -}}
{{- end -}}

{{/* The backend of the store's Ingresses: the shop, or while it is stopped
(suspended, maintenance) the platform's paused page through the ExternalName
Service (templates/paused.yaml). */}}
{{- define "woo.backend" -}}
service:
{{- if and (include "woo.appStopped" .) .Values.paused.backend }}
  name: {{ include "woo.fullname" . }}-paused
  port:
    number: {{ .Values.paused.port }}
{{- else }}
  name: {{ include "woo.fullname" . }}-wordpress
  port:
    name: http
{{- end }}
{{- end -}}

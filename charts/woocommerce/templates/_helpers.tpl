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

{{/*
HTTPS and custom domains (issue 11; docs/chart-contract.md).

The public host: the primary custom domain, else store.host. Every other
host the release serves (store.host, the other custom domains) redirects
there, so a store has one canonical address.
*/}}
{{- define "woo.publicHost" -}}
{{ .Values.store.publicHost | default .Values.store.host }}
{{- end -}}

{{/* Does any Ingress of the release redirect to the public host? */}}
{{- define "woo.redirectsToPrimary" -}}
{{- if or (ne .Values.store.host (include "woo.publicHost" .)) .Values.domains }}true{{ end -}}
{{- end -}}

{{/*
Annotations of one store Ingress: the cert-manager issuer (ingress-shim then
makes its Certificate), and the redirects, written for the controller named
by ingress.controller. Arguments: root, host (what this Ingress serves),
certificate (ask cert-manager for one).
*/}}
{{- define "woo.ingressAnnotations" -}}
{{- $v := .root.Values -}}
{{- $tls := $v.ingress.tls -}}
{{- $public := include "woo.publicHost" .root -}}
{{- $toPrimary := ne .host $public -}}
{{- $prefix := printf "%s-%s" .root.Release.Namespace (include "woo.fullname" .root) -}}
{{- if .certificate }}
cert-manager.io/cluster-issuer: {{ $tls.clusterIssuer | quote }}
{{- end }}
{{- if eq $v.ingress.controller "traefik" }}
{{- $middlewares := list }}
{{- if and $tls.enabled $v.ingress.httpsRedirect }}
{{- $middlewares = append $middlewares (printf "%s-https-redirect@kubernetescrd" $prefix) }}
{{- end }}
{{- if and $tls.enabled $v.ingress.hsts.enabled }}
{{- $middlewares = append $middlewares (printf "%s-hsts@kubernetescrd" $prefix) }}
{{- end }}
{{- if $toPrimary }}
{{- $middlewares = append $middlewares (printf "%s-to-primary@kubernetescrd" $prefix) }}
{{- end }}
{{- with $middlewares }}
traefik.ingress.kubernetes.io/router.middlewares: {{ join "," . | quote }}
{{- end }}
{{- else if eq $v.ingress.controller "nginx" }}
{{- if and $tls.enabled $v.ingress.httpsRedirect }}
nginx.ingress.kubernetes.io/force-ssl-redirect: "true"
{{- end }}
{{- if $toPrimary }}
nginx.ingress.kubernetes.io/permanent-redirect: {{ printf "%s://%s$request_uri" $v.store.scheme $public | quote }}
{{- end }}
{{- end }}
{{- end -}}

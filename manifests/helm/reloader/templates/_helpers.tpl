{{/*
Names. They follow Stakater's chart on purpose: the Deployment, its selector labels, the
ServiceAccount and the Roles get the same names, so `helm upgrade` of a Stakater release to this
chart (same release name) updates those objects in place instead of failing on the Deployment's
immutable selector.
*/}}

{{- define "reloader.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" | lower -}}
{{- end -}}

{{- define "reloader.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (default .Chart.Name .Values.nameOverride) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "reloader.namespace" -}}
{{- .Values.namespace | default .Release.Namespace -}}
{{- end -}}

{{/* The Deployment's selector: never changes between chart versions. */}}
{{- define "reloader.selectorLabels" -}}
app: {{ include "reloader.fullname" . }}
release: {{ .Release.Name | quote }}
{{- with .Values.reloader.matchLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "reloader.labels" -}}
{{ include "reloader.selectorLabels" . }}
app.kubernetes.io/name: {{ include "reloader.name" . }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | quote }}
{{- end -}}

{{- define "reloader.serviceAccountName" -}}
{{- $sa := .Values.reloader.serviceAccount | default dict -}}
{{- if $sa.create -}}
{{- $sa.name | default (include "reloader.fullname" .) -}}
{{- else -}}
{{- $sa.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* "true" when the admission webhook runs: reloader.webhook.enabled, or watchGlobally when unset. */}}
{{- define "reloader.webhookEnabled" -}}
{{- $enabled := dig "webhook" "enabled" nil .Values.reloader -}}
{{- if kindIs "bool" $enabled -}}
{{- if $enabled }}true{{ end -}}
{{- else if .Values.reloader.watchGlobally -}}
true
{{- end -}}
{{- end -}}

{{/* "true" when cert-manager provides the webhook certificate. */}}
{{- define "reloader.certManager" -}}
{{- if and (include "reloader.webhookEnabled" .) (eq (dig "webhook" "certificates" "mode" "self-managed" .Values.reloader) "cert-manager") -}}
true
{{- end -}}
{{- end -}}

{{/* "true" when the reloader itself keeps the webhook's certificates and configurations. */}}
{{- define "reloader.selfManagedWebhook" -}}
{{- if and (include "reloader.webhookEnabled" .) (not (include "reloader.certManager" .)) -}}
true
{{- end -}}
{{- end -}}

{{/* "true" when the reloader keeps a stamp key (docs/security.md): the annotations strategy's
stamps are keyed, and under env-vars the webhook's records are (its answers never carry a plain
hash of a Secret). */}}
{{- define "reloader.keyedStamps" -}}
{{- if or (ne .Values.reloader.reloadStrategy "env-vars") (include "reloader.webhookEnabled" .) -}}
true
{{- end -}}
{{- end -}}

{{- define "reloader.webhookService" -}}
{{- printf "%s-webhook" (include "reloader.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "reloader.webhookSecret" -}}
{{- printf "%s-webhook-tls" (include "reloader.fullname" .) -}}
{{- end -}}

{{/* The ClusterRole (watching rules, and the webhook's get/patch on its two configurations). */}}
{{- define "reloader.clusterRoleName" -}}
{{- printf "%s-role" (include "reloader.fullname" .) -}}
{{- end -}}

{{/* Fixed names the reloader uses in its own namespace. */}}
{{- define "reloader.stampKeySecret" -}}reloader-stamp-key{{- end -}}
{{- define "reloader.leaseName" -}}stakater-reloader-lock{{- end -}}
{{- define "reloader.metaInfoConfigMap" -}}reloader-meta-info{{- end -}}

{{/*
Namespaces watched with watchGlobally false and a `namespaces` list: the release namespace plus
the list (YAML list or comma-separated string), trimmed, deduplicated and sorted. JSON list.
*/}}
{{- define "reloader.watchNamespaces" -}}
{{- $list := .Values.reloader.namespaces | default list -}}
{{- if kindIs "string" $list -}}
{{- $list = splitList "," $list -}}
{{- end -}}
{{- $names := list (include "reloader.namespace" .) -}}
{{- range $list -}}
{{- $name := . | toString | trim -}}
{{- if $name -}}
{{- $names = append $names $name -}}
{{- end -}}
{{- end -}}
{{- $names | uniq | sortAlpha | toJson -}}
{{- end -}}

{{/*
The image. Stakater's own image names are treated as unset, so a Stakater values file that lists
its image installs the reloader's (values.yaml, image).
*/}}
{{- define "reloader.image" -}}
{{- $stakater := list "stakater/reloader" "docker.io/stakater/reloader" "ghcr.io/stakater/reloader" "quay.io/stakater/reloader" -}}
{{- $repository := .Values.image.repository | default "" -}}
{{- $name := .Values.image.name | default "" -}}
{{- $tag := .Values.image.tag | default "" | toString -}}
{{- $digest := .Values.image.digest | default "" -}}
{{- if or (has $repository $stakater) (has $name $stakater) -}}
{{- if has $repository $stakater }}{{ $repository = "" }}{{ end -}}
{{- if has $name $stakater }}{{ $name = "" }}{{ end -}}
{{- $tag = "" -}}
{{- $digest = "" -}}
{{- end -}}
{{- $tag = $tag | default .Chart.AppVersion -}}
{{- if .Values.global.imageRegistry -}}
{{- $repository = printf "%s/%s" .Values.global.imageRegistry ($name | default "example/reloader") -}}
{{- else -}}
{{- $repository = $repository | default "ghcr.io/example/reloader" -}}
{{- end -}}
{{- if $digest -}}
{{- printf "%s@%s" $repository $digest -}}
{{- else -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "reloader.imagePullSecrets" -}}
{{- range .Values.global.imagePullSecrets }}
{{- if kindIs "map" . }}
- name: {{ .name }}
{{- else }}
- name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
RBAC rules for the sources and workloads the reloader watches and writes, per enabled feature.
Used by the ClusterRole (watchGlobally) and by the Role in each watched namespace. The comments in
docs/security.md explain each rule.
*/}}
{{- define "reloader.workloadRules" -}}
{{- $r := .Values.reloader -}}
{{- if not (and $r.ignoreSecrets $r.ignoreConfigMaps) }}
- apiGroups: [""]
  resources:
  {{- if not $r.ignoreConfigMaps }}
    - configmaps
  {{- end }}
  {{- if not $r.ignoreSecrets }}
    - secrets
  {{- end }}
  verbs: [get, list, watch]
{{- end }}
- apiGroups: [apps]
  resources: [deployments, daemonsets, statefulsets]
  verbs: [get, list, watch, patch]
{{- if not $r.ignoreCronJobs }}
- apiGroups: [batch]
  resources: [cronjobs]
  verbs: [get, list, watch, patch]
{{- end }}
{{- if not $r.ignoreJobs }}
# A Job's pod template is immutable: it is deleted and created again. A CronJob's run is a Job.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, patch, create, delete]
{{- else if not $r.ignoreCronJobs }}
# Jobs are not watched (ignoreJobs), but a CronJob's run is a Job the reloader creates.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [create]
{{- end }}
{{- if $r.isArgoRollouts }}
- apiGroups: [argoproj.io]
  resources: [rollouts]
  verbs: [get, list, watch, patch]
{{- end }}
{{- if or $r.isOpenshift (.Capabilities.APIVersions.Has "apps.openshift.io/v1") }}
- apiGroups: [apps.openshift.io]
  resources: [deploymentconfigs]
  verbs: [get, list, watch, patch]
{{- end }}
{{- range $r.extraWorkloadKinds }}
# --extra-workload-kinds: {{ .kind }}, rolled like a Deployment.
- apiGroups: [{{ .group | quote }}]
  resources: [{{ .plural | quote }}]
  verbs: [get, list, watch, patch]
{{- end }}
{{- if $r.enableCSIIntegration }}
- apiGroups: [secrets-store.csi.x-k8s.io]
  resources: [secretproviderclasspodstatuses, secretproviderclasses]
  verbs: [get, list, watch]
{{- end }}
{{- if $r.podRestarts }}
# Pod restarts (podRestarts): the pods of OnDelete StatefulSets and DaemonSets, and of workloads
# with rollout-strategy: restart, listed and evicted one at a time (an eviction honours
# PodDisruptionBudgets).
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
- apiGroups: [""]
  resources: [pods/eviction]
  verbs: [create]
{{- end }}
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end -}}

{{/*
The chart's labels with extra ones from values, one key once. dict "root" $ "extra" <map>; the
extra labels win (a PrometheusRule's `release` label for the Prometheus selector, say), except
with "keepSelector" true (pod templates), where the Deployment's selector labels win.
*/}}
{{- define "reloader.labelsWith" -}}
{{- $base := include "reloader.labels" .root | fromYaml -}}
{{- $extra := dict -}}
{{- with .extra }}{{ $extra = tpl (toYaml .) $.root | fromYaml }}{{ end -}}
{{- if .keepSelector -}}
{{- $selector := include "reloader.selectorLabels" .root | fromYaml -}}
{{- toYaml (merge (deepCopy $selector) $extra $base) -}}
{{- else -}}
{{- toYaml (merge (deepCopy $extra) $base) -}}
{{- end -}}
{{- end -}}

{{/* CEL: every webhook of the configuration is the old one but for its caBundle (webhook-policy.yaml). */}}
{{- define "reloader.caBundleOnly" -}}
object.webhooks.size() == oldObject.webhooks.size() && object.webhooks.all(w, oldObject.webhooks.exists(o, o.name == w.name && o.clientConfig.?service == w.clientConfig.?service && o.clientConfig.?url == w.clientConfig.?url && o.?rules == w.?rules && o.?namespaceSelector == w.?namespaceSelector && o.?objectSelector == w.?objectSelector && o.?matchConditions == w.?matchConditions && o.?failurePolicy == w.?failurePolicy && o.?matchPolicy == w.?matchPolicy && o.?sideEffects == w.?sideEffects && o.?timeoutSeconds == w.?timeoutSeconds && o.?admissionReviewVersions == w.?admissionReviewVersions && o.?reinvocationPolicy == w.?reinvocationPolicy))
{{- end -}}

{{/*
--extra-workload-kinds from reloader.extraWorkloadKinds: GROUP/VERSION/KIND[=PATH], comma-separated
(the plural is the binary's to discover; the chart uses it for RBAC and the webhook's rules).
*/}}
{{- define "reloader.extraWorkloadKinds" -}}
{{- $items := list -}}
{{- range .Values.reloader.extraWorkloadKinds -}}
{{- $item := printf "%s/%s/%s" .group .version .kind -}}
{{- if and .templatePath (ne .templatePath "spec.template") }}{{ $item = printf "%s=%s" $item .templatePath }}{{ end -}}
{{- $items = append $items $item -}}
{{- end -}}
{{- join "," $items -}}
{{- end -}}

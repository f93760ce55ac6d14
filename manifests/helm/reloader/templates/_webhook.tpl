{{/*
The webhook configurations' namespaceSelector, as src/admission/register.rs computes it from the
flags the chart gives the reloader (the chart test compares the two): never kube-system,
kube-node-lease or the release namespace, nor ignoreNamespaces; only the watched namespaces with
watchGlobally false; and the terms of namespaceSelector (Stakater's syntax: k=v, k:v, k:*, k!=v,
!k, k, k in (a,b), k notin (a,b); the numeric k>1 and k<1 have no namespaceSelector form and
are left out: the reloader's handlers apply them). JSON.
*/}}
{{- define "reloader.webhookNamespaceSelector" -}}
{{- $r := .Values.reloader -}}
{{- $ns := include "reloader.namespace" . -}}
{{- $excluded := list "kube-system" "kube-node-lease" $ns -}}
{{- if and $r.watchGlobally $r.ignoreNamespaces -}}
{{- range splitList "," $r.ignoreNamespaces | sortAlpha | uniq -}}
{{- $name := trim . -}}
{{- if and $name (not (has $name $excluded)) }}{{ $excluded = append $excluded $name }}{{ end -}}
{{- end -}}
{{- end -}}
{{- $selector := list (dict "key" "kubernetes.io/metadata.name" "operator" "NotIn" "values" $excluded) -}}
{{- if not $r.watchGlobally -}}
{{- $watched := list $ns -}}
{{- if $r.namespaces }}{{ $watched = include "reloader.watchNamespaces" . | fromJsonArray }}{{ end -}}
{{- $selector = append $selector (dict "key" "kubernetes.io/metadata.name" "operator" "In" "values" $watched) -}}
{{- else if $r.namespaceSelector -}}
{{- /* Terms: split on the commas outside parentheses. */ -}}
{{- range regexFindAll "[^,()]*(\\([^()]*\\))?[^,()]*" (toString $r.namespaceSelector) -1 -}}
{{- $t := trim . -}}
{{- if not $t }}{{ continue }}{{ end -}}
{{- if contains "(" $t -}}
{{- $set := "^(.*\\S)\\s+(in|notin)\\s*\\((.*)\\)$" -}}
{{- $values := list -}}
{{- range splitList "," (regexReplaceAll $set $t "${3}") }}{{ $values = append $values (trim .) }}{{ end -}}
{{- $operator := ternary "NotIn" "In" (eq (regexReplaceAll $set $t "${2}") "notin") -}}
{{- $selector = append $selector (dict "key" (trim (regexReplaceAll $set $t "${1}")) "operator" $operator "values" $values) -}}
{{- else if hasPrefix "!" $t -}}
{{- $selector = append $selector (dict "key" (trim (trimPrefix "!" $t)) "operator" "DoesNotExist") -}}
{{- else if regexMatch "[<>]" $t -}}
{{- /* k>1, k<1: the handlers apply them. */ -}}
{{- else if regexMatch "[!=:]" $t -}}
{{- $term := "^([^!=:]*)(!=|==|=|:)(.*)$" -}}
{{- $key := trim (regexReplaceAll $term $t "${1}") -}}
{{- $op := regexReplaceAll $term $t "${2}" -}}
{{- $value := trim (regexReplaceAll $term $t "${3}") -}}
{{- if and (eq $value "*") (ne $op "!=") -}}
{{- $selector = append $selector (dict "key" $key "operator" "Exists") -}}
{{- else -}}
{{- $selector = append $selector (dict "key" $key "operator" (ternary "NotIn" "In" (eq $op "!=")) "values" (list $value)) -}}
{{- end -}}
{{- else -}}
{{- $selector = append $selector (dict "key" $t "operator" "Exists") -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson (dict "matchExpressions" $selector) -}}
{{- end -}}

{{/* The client CA file the webhook reads (--admission-client-ca), when one is configured. */}}
{{- define "reloader.clientCAPath" -}}
{{- $ca := dig "webhook" "clientCA" dict .Values.reloader -}}
{{- if and (include "reloader.webhookEnabled" .) (or $ca.pem $ca.configMap $ca.secret) -}}
{{- printf "/etc/reloader/client-ca/%s" ($ca.key | default "ca.crt") -}}
{{- end -}}
{{- end -}}

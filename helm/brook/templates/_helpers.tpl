{{/* Chart name, possibly overridden. */}}
{{- define "brook.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name of the operator's resources. */}}
{{- define "brook.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "brook.selectorLabels" -}}
app.kubernetes.io/name: {{ include "brook.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "brook.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 }}
{{ include "brook.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "brook.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "brook.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* sha256 of the chart's CRD files, in name order. */}}
{{- define "brook.crdsChecksum" -}}
{{- $all := "" -}}
{{- range $path, $_ := .Files.Glob "files/crds/*.yaml" -}}
{{- $all = print $all ($.Files.Get $path) -}}
{{- end -}}
{{- $all | sha256sum -}}
{{- end -}}

{{- define "brook.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The operator's permissions (least privilege: what its handlers call). */}}
{{- define "brook.rules" -}}
# Its own resources: watch them, add its finalizer and progress annotations.
- apiGroups: [brook.dev]
  resources: [kafkaclusters, topics]
  verbs: [get, list, watch, patch]
- apiGroups: [brook.dev]
  resources: [kafkaclusters/status, topics/status]
  verbs: [get, patch]
# Owner references with blockOwnerDeletion on a KafkaCluster.
- apiGroups: [brook.dev]
  resources: [kafkaclusters/finalizers]
  verbs: [update]
# The objects of a cluster, applied server-side (apply creates them when absent).
- apiGroups: [""]
  resources: [configmaps, services, serviceaccounts]
  verbs: [get, create, patch]
- apiGroups: [apps]
  resources: [statefulsets]
  verbs: [get, list, watch, create, patch]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, create, patch]
# Broker pods: read their state, delete one at a time for an ISR-aware rolling restart.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, delete]
# Events about what it did.
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end -}}

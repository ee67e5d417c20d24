{{- define "vcm.name" -}}vcm{{- end -}}

{{- define "vcm.fullname" -}}
{{- if contains "vcm" .Release.Name -}}{{ .Release.Name | trunc 50 | trimSuffix "-" }}{{- else -}}{{ printf "%s-vcm" .Release.Name | trunc 50 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "vcm.labels" -}}
app.kubernetes.io/name: vcm
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "vcm.selector" -}}
app.kubernetes.io/name: vcm
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* vcm's own ServiceAccount: the identity its host RBAC and admission policy name. */}}
{{- define "vcm.serviceAccount" -}}{{ include "vcm.fullname" . }}{{- end -}}

{{- define "vcm.checks" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.store.existingSecret) -}}
{{- fail "replicaCount: the embedded SQLite store has one writer, so one replica; for several, use PostgreSQL (store.existingSecret), where replicas claim clusters and place them in the database" -}}
{{- end -}}
{{- if not (hasPrefix "vcm-" .Release.Namespace) -}}
{{- fail (printf "namespace %q: install vcm in a namespace named vcm-* (vcm-system, say); the admission policy confines vcm's writes to vcm-* namespaces, its own included" .Release.Namespace) -}}
{{- end -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.audit.signingKeySecret) -}}
{{- fail "audit.signingKeySecret: several replicas append to one audit chain and must sign it with one key; create the Secret (see values.yaml) and name it here" -}}
{{- end -}}
{{- if and (gt (int .Values.replicaCount) 1) .Values.persistence.enabled -}}
{{- fail "persistence: several replicas cannot share one ReadWriteOnce volume; with PostgreSQL set persistence.enabled=false (the data directory is then per pod)" -}}
{{- end -}}
{{- if and .Values.crd.enabled (not .Values.crd.namespaces) -}}
{{- fail "crd.namespaces: the VirtualCluster door needs at least one namespace mapped to a team (crd.namespaces.<namespace>=<team>); objects elsewhere are refused" -}}
{{- end -}}
{{- if and (not .Values.store.existingSecret) (not .Values.persistence.enabled) (not .Values.store.ephemeral) -}}
{{- fail "store: with the embedded SQLite store (no store.existingSecret), persistence.enabled must be true, or every restart loses every cluster record (store.ephemeral=true accepts that, for a throw-away installation)" -}}
{{- end -}}
{{- if and .Values.store.ephemeral (or .Values.persistence.enabled .Values.store.existingSecret) -}}
{{- fail "store.ephemeral: a throw-away SQLite store on an emptyDir; set persistence.enabled=false and no store.existingSecret with it" -}}
{{- end -}}
{{- end -}}

{{/* Names and labels shared by the templates. */}}
{{- define "quorumdb.fullname" -}}
{{- printf "%s-quorumdb-operator" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "quorumdb.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "quorumdb.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "quorumdb.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "quorumdb.selectorLabels" -}}
app.kubernetes.io/name: quorumdb-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "quorumdb.labels" -}}
{{ include "quorumdb.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: quorumdb
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The chart's name. */}}
{{- define "consortia.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name (NAME): pods are NAME-0 ..., the headless
Service NAME-peers. k8s-secrets --name must be the same. */}}
{{- define "consortia.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* f: the faulty validators BFT tolerates. */}}
{{- define "consortia.f" -}}
{{- div (sub (int .Values.validators.count) 1) 3 -}}
{{- end -}}

{{- define "consortia.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Selector labels: never a version, so upgrades keep matching. */}}
{{- define "consortia.selectorLabels" -}}
app.kubernetes.io/name: {{ include "consortia.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "consortia.labels" -}}
{{ include "consortia.selectorLabels" . }}
app.kubernetes.io/version: {{ default .Chart.AppVersion .Values.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: consortia
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The validator pods' selector (component validator). */}}
{{- define "consortia.validatorSelector" -}}
{{ include "consortia.selectorLabels" . }}
app.kubernetes.io/component: validator
{{- end -}}

{{/* Options every service of a node takes: the bus over ipc:// sockets in
the pod's shared emptyDir /run/consortia, the files from the Secret and the
ConfigMap, the data on the validator's volume. $(CONSORTIA_NODE_NAME) is the
pod's name (Kubernetes expands it from the env var of that name). */}}
{{- define "consortia.commonArgs" -}}
- --genesis=/etc/consortia/genesis/genesis.json
- --node_key=/etc/consortia/keys/$(CONSORTIA_NODE_NAME).node_key.json
- --data_dir=/var/lib/consortia/data
- --mempool_endpoint=ipc:///run/consortia/mempool.sock
- --storage_endpoint=ipc:///run/consortia/storage.sock
- --storage_events=ipc:///run/consortia/events.sock
- --metrics_host=0.0.0.0
- --log_level={{ .Values.validators.logLevel }}
{{- end -}}

{{- define "consortia.commonEnv" -}}
- name: CONSORTIA_NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- end -}}

{{- define "consortia.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* Probes of a service on its metrics port: liveness /healthz,
readiness /readyz, and (block sync) a startup probe on /readyz. */}}
{{- define "consortia.probes" -}}
{{- $port := .port -}}
{{- $p := .root.Values.probes -}}
startupProbe:
  httpGet: {path: /readyz, port: {{ $port }}}
  periodSeconds: {{ $p.startup.periodSeconds }}
  failureThreshold: {{ $p.startup.failureThreshold }}
livenessProbe:
  httpGet: {path: /healthz, port: {{ $port }}}
  periodSeconds: {{ $p.liveness.periodSeconds }}
  failureThreshold: {{ $p.liveness.failureThreshold }}
readinessProbe:
  httpGet: {path: /readyz, port: {{ $port }}}
  periodSeconds: {{ $p.readiness.periodSeconds }}
  failureThreshold: {{ $p.readiness.failureThreshold }}
{{- end -}}

{{- define "consortia.mounts" -}}
- name: bus
  mountPath: /run/consortia
- name: data
  mountPath: /var/lib/consortia
- name: keys
  mountPath: /etc/consortia/keys
  readOnly: true
- name: genesis
  mountPath: /etc/consortia/genesis
  readOnly: true
{{- end -}}

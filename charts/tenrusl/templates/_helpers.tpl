{{/* The chart's name, or nameOverride; 63 characters at most (a label value). */}}
{{- define "tenrusl.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's base name for every object: fullnameOverride, else the release name when it already
contains the chart's name, else "<release>-<chart>". 40 characters at most, so that the longest
suffix ("-retry-policy", and the CronJob's 52-character limit) still fits.
*/}}
{{- define "tenrusl.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* "<chart>-<version>" for the helm.sh/chart label. */}}
{{- define "tenrusl.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels that select a component's pods; call with (dict "ctx" $ "component" "receiver"). */}}
{{- define "tenrusl.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tenrusl.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Every object's labels: the standard app.kubernetes.io set plus the component's selector. */}}
{{- define "tenrusl.labels" -}}
helm.sh/chart: {{ include "tenrusl.chart" .ctx }}
{{ include "tenrusl.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: tenrusl
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The TenRusl image: repository:tag, or repository@digest; the tag defaults to appVersion. */}}
{{- define "tenrusl.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The ServiceAccount of the receiver, the retry runner and the tests: it holds no API rights. */}}
{{- define "tenrusl.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tenrusl.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding provider secrets and the admin key (keys are environment variable names). */}}
{{- define "tenrusl.appSecretName" -}}
{{- default (include "tenrusl.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/* The CronJob the operator suspends and the WebhookRetryPolicy names. */}}
{{- define "tenrusl.retryCronJobName" -}}
{{- printf "%s-retry" (include "tenrusl.fullname" .) }}
{{- end }}

{{/*
The policy ConfigMap the CronJob mounts. The operator writes it under the policy's
spec.configMapName, else "<policy name>-policy" (operator/reconcile.py configmap_name); the chart's
policy leaves configMapName unset, so this is "<retryPolicy.name>-policy".
*/}}
{{- define "tenrusl.policyConfigMapName" -}}
{{- printf "%s-policy" .Values.retryPolicy.name }}
{{- end }}

{{/*
The policy file, mounted the same way wherever a retry run can start (the CronJob's pods, and the
receiver pods where the runbook runs `tenrusl status` and `tenrusl retry once`): the ConfigMap is
optional (no policy yet, or no operator: the environment's defaults apply), read-only, at the path
of docs/operator.md. The env entry, the container's volumeMount, and the pod's volume.
*/}}
{{- define "tenrusl.policyFileEnv" -}}
- name: TENRUSL_POLICY_FILE
  value: /etc/tenrusl/policy/policy.json
{{- end }}

{{- define "tenrusl.policyVolumeMount" -}}
- name: policy
  mountPath: /etc/tenrusl/policy
  readOnly: true
{{- end }}

{{- define "tenrusl.policyVolume" -}}
- name: policy
  configMap:
    name: {{ include "tenrusl.policyConfigMapName" . }}
    optional: true
{{- end }}

{{/* Where TENRUSL_DATABASE_URL comes from: the bundled PostgreSQL's Secret or an existing one. */}}
{{- define "tenrusl.databaseUrlRef" -}}
{{- if .Values.postgresql.enabled -}}
name: {{ include "tenrusl.fullname" . }}-postgresql
key: url
{{- else -}}
name: {{ required "externalDatabase.existingSecret is required when postgresql.enabled is false" .Values.externalDatabase.existingSecret }}
key: {{ .Values.externalDatabase.existingSecretKey }}
{{- end }}
{{- end }}

{{/* Whether the processes get a Redis URL (Redis is optional: everything falls back without it). */}}
{{- define "tenrusl.redisEnabled" -}}
{{- if or .Values.redis.enabled .Values.externalRedis.existingSecret }}true{{ end }}
{{- end }}

{{- define "tenrusl.redisUrlRef" -}}
{{- if .Values.redis.enabled -}}
name: {{ include "tenrusl.fullname" . }}-redis
key: url
{{- else -}}
name: {{ .Values.externalRedis.existingSecret }}
key: {{ .Values.externalRedis.existingSecretKey }}
{{- end }}
{{- end }}

{{/*
The environment every TenRusl process shares: the settings ConfigMap, the app Secret (provider
secrets, admin key), and the database and Redis URLs, each by reference, never by value.
*/}}
{{- define "tenrusl.envFrom" -}}
- configMapRef:
    name: {{ include "tenrusl.fullname" . }}
- secretRef:
    name: {{ include "tenrusl.appSecretName" . }}
{{- end }}

{{- define "tenrusl.storeEnv" -}}
- name: TENRUSL_DATABASE_URL
  valueFrom:
    secretKeyRef:
      {{- include "tenrusl.databaseUrlRef" . | nindent 6 }}
{{- if include "tenrusl.redisEnabled" . }}
- name: TENRUSL_REDIS_URL
  valueFrom:
    secretKeyRef:
      {{- include "tenrusl.redisUrlRef" . | nindent 6 }}
{{- end }}
{{- end }}

{{/* The restricted Pod Security Standard, pod level, plus the values' additions. */}}
{{- define "tenrusl.podSecurityContext" -}}
{{- toYaml (mergeOverwrite (dict "runAsNonRoot" true "seccompProfile" (dict "type" "RuntimeDefault")) (deepCopy .Values.podSecurityContext)) }}
{{- end }}

{{/* The restricted Pod Security Standard, container level, with a read-only root filesystem. */}}
{{- define "tenrusl.containerSecurityContext" -}}
{{- toYaml (mergeOverwrite (dict "allowPrivilegeEscalation" false "readOnlyRootFilesystem" true "runAsNonRoot" true "capabilities" (dict "drop" (list "ALL")) "seccompProfile" (dict "type" "RuntimeDefault")) (deepCopy .Values.securityContext)) }}
{{- end }}

{{/*
The init container that migrates the database before a receiver or retry pod starts. Every such
pod runs it; `tenrusl migrate` holds an advisory lock, so concurrent runs wait and then find
nothing to do, and --wait covers a database (the bundled one) that is still starting.
*/}}
{{- define "tenrusl.migrateInitContainer" -}}
- name: migrate
  image: {{ include "tenrusl.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: ["migrate", "--wait", {{ .Values.migrations.waitSeconds | quote }}]
  envFrom:
    {{- include "tenrusl.envFrom" . | nindent 4 }}
  env:
    {{- include "tenrusl.storeEnv" . | nindent 4 }}
  securityContext:
    {{- include "tenrusl.containerSecurityContext" . | nindent 4 }}
  resources:
    {{- toYaml .Values.migrations.resources | nindent 4 }}
  volumeMounts:
    - name: tmp
      mountPath: /tmp
{{- end }}

{{/* A random value, or the one already in the live Secret (so upgrades keep it). */}}
{{- define "tenrusl.keepOrGenerate" -}}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace .secret }}
{{- if and $existing (index ($existing.data | default dict) .key) }}
{{- index $existing.data .key | b64dec }}
{{- else }}
{{- randAlphaNum 32 }}
{{- end }}
{{- end }}

{{/* A CPU quantity ("500m", "2", 1.5) in millicores; empty is 0. */}}
{{- define "tenrusl.millicores" -}}
{{- $v := toString . -}}
{{- if not $v -}}0
{{- else if hasSuffix "m" $v -}}{{ trimSuffix "m" $v | int }}
{{- else -}}{{ mulf (float64 $v) 1000 | int }}
{{- end -}}
{{- end }}

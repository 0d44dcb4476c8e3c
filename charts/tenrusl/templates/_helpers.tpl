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

{{/*
A pod template's labels: the selector labels and .Values.podLabels, nothing that changes with the
chart's version, so a chart bump that changes nothing in a pod does not restart it.
*/}}
{{- define "tenrusl.podLabels" -}}
{{ include "tenrusl.selectorLabels" . }}
{{- with .ctx.Values.podLabels }}
{{ toYaml . }}
{{- end }}
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
{{- include "tenrusl.imageRef" (dict "image" .Values.image "ctx" .) }}
{{- end }}

{{/*
The operator's image (the TenRusl image plus the Kubernetes client, which the receiver image
leaves out): its own repository, the TenRusl image's tag unless it names its own, its own digest.
*/}}
{{- define "tenrusl.operatorImage" -}}
{{- $o := .Values.operator.image }}
{{- include "tenrusl.imageRef" (dict "image" (dict "repository" $o.repository "tag" ($o.tag | default .Values.image.tag) "digest" $o.digest) "ctx" .) }}
{{- end }}

{{- define "tenrusl.imageRef" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag) }}
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
The chart's WebhookRetryPolicy: retryPolicy.name, else the name a live policy of this release
already has ("default", from 0.1.0; so an upgrade keeps it and its pause), else the full name.
The live one is looked up only where the cluster serves the kind (the lookup fails otherwise).
*/}}
{{- define "tenrusl.retryPolicyName" -}}
{{- if .Values.retryPolicy.name }}
{{- .Values.retryPolicy.name }}
{{- else }}
{{- $legacy := dict }}
{{- if .Capabilities.APIVersions.Has "tenrusl.io/v1alpha1/WebhookRetryPolicy" }}
{{- $legacy = lookup "tenrusl.io/v1alpha1" "WebhookRetryPolicy" .Release.Namespace "default" }}
{{- end }}
{{- if and $legacy (eq (dig "metadata" "labels" "app.kubernetes.io/instance" "" $legacy) .Release.Name) }}
{{- "default" }}
{{- else }}
{{- include "tenrusl.fullname" . }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The policy ConfigMap the CronJob mounts. The operator writes it under the policy's
spec.configMapName, else "<policy name>-policy" (operator/reconcile.py configmap_name); the chart's
policy leaves configMapName unset, so this is "<policy name>-policy".
*/}}
{{- define "tenrusl.policyConfigMapName" -}}
{{- printf "%s-policy" (include "tenrusl.retryPolicyName" .) }}
{{- end }}

{{/*
The chart's WebhookRetryPolicy object. Rendered as a resource where the cluster already serves the
kind (an upgrade, or the CRD applied beforehand); on a first install Helm cannot create it in the
release that creates its CRD, so the operator gets it (TENRUSL_OPERATOR_POLICY) and creates it
with these labels and Helm's ownership annotations, and the next upgrade adopts it. `paused` is
never rendered: pausing is a live kubectl action that an upgrade must not undo.
*/}}
{{- define "tenrusl.retryPolicy" -}}
{{- $ctx := .ctx }}
{{- $labels := include "tenrusl.labels" (dict "ctx" $ctx "component" "retry-policy") | fromYaml }}
{{- if .forOperator }}
{{- /* Not the chart's version: a chart bump that changes nothing else must not restart the operator. */}}
{{- $labels = omit $labels "helm.sh/chart" "app.kubernetes.io/version" }}
{{- end }}
apiVersion: tenrusl.io/v1alpha1
kind: WebhookRetryPolicy
metadata:
  name: {{ include "tenrusl.retryPolicyName" $ctx }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- toYaml $labels | nindent 4 }}
  annotations:
    meta.helm.sh/release-name: {{ $ctx.Release.Name }}
    meta.helm.sh/release-namespace: {{ $ctx.Release.Namespace }}
spec:
  cronJobName: {{ include "tenrusl.retryCronJobName" $ctx }}
  {{- with $ctx.Values.retryPolicy.spec }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
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
nothing to do, and --wait covers a database (the bundled one) that is still starting. Its DDL has
no statement timeout and a short lock timeout with retries (docs/configuration.md, "Migrations").
*/}}
{{- define "tenrusl.migrateInitContainer" -}}
{{- $m := .Values.migrations }}
- name: migrate
  image: {{ include "tenrusl.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: ["migrate", "--wait", {{ $m.waitSeconds | quote }}]
  envFrom:
    {{- include "tenrusl.envFrom" . | nindent 4 }}
  env:
    {{- include "tenrusl.storeEnv" . | nindent 4 }}
    - name: TENRUSL_MIGRATE_LOCK_TIMEOUT_MS
      value: {{ mul $m.lockTimeoutSeconds 1000 | quote }}
    - name: TENRUSL_MIGRATE_LOCK_RETRIES
      value: {{ $m.lockRetries | quote }}
    - name: TENRUSL_MIGRATE_STATEMENT_TIMEOUT_MS
      value: {{ mul $m.statementTimeoutSeconds 1000 | quote }}
    {{- with $m.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  securityContext:
    {{- include "tenrusl.containerSecurityContext" . | nindent 4 }}
  resources:
    {{- toYaml $m.resources | nindent 4 }}
  volumeMounts:
    - name: tmp
      mountPath: /tmp
    {{- with .Values.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{/*
A secret value the chart owns: the value given, else the one in the live Secret (it wins over
anything generated: a kept volume was initialised with it), else, on a first install, a new random
one. Never regenerated: an upgrade (or a render claiming to be one) that cannot read the live
Secret fails, naming every value to set, instead of writing a new secret the data does not know;
with secrets.generate=false (renders without cluster access: helm template, Argo CD) nothing is
ever generated. Call with (dict "ctx" $ "secret" NAME "key" KEY "given" VALUE).
*/}}
{{- define "tenrusl.secretValue" -}}
{{- if .given }}
{{- .given }}
{{- else }}
{{- $data := (get (lookup "v1" "Secret" .ctx.Release.Namespace .secret) "data") | default dict }}
{{- if hasKey $data .key }}
{{- index $data .key | b64dec }}
{{- else if .ctx.Release.IsUpgrade }}
{{- fail (printf "tenrusl: this upgrade cannot read the Secrets that hold the values generated at install: the render has no access to the cluster (helm template, Argo CD), or they were deleted. A new value would no longer match the data, so none is made. %s" (include "tenrusl.secretsToGive" .ctx)) }}
{{- else if not .ctx.Values.secrets.generate }}
{{- fail (printf "tenrusl: secrets.generate is false (renders without cluster access: helm template, Argo CD), so no secret is generated. %s" (include "tenrusl.secretsToGive" .ctx)) }}
{{- else }}
{{- randAlphaNum 32 }}
{{- end }}
{{- end }}
{{- end }}

{{/*
"Set ...": every secret value the chart would otherwise generate, each with where its current value
is (a release installed before), so one failed render names them all.
*/}}
{{- define "tenrusl.secretsToGive" -}}
{{- $ns := .Release.Namespace }}
{{- $full := include "tenrusl.fullname" . }}
{{- $wanted := list }}
{{- if not .Values.secrets.existingSecret }}
{{- if not .Values.secrets.adminKey }}
{{- $wanted = append $wanted (list "secrets.adminKey" $full "TENRUSL_ADMIN_KEY") }}
{{- end }}
{{- if and (has "mock" .Values.config.providers) (not (hasKey .Values.secrets.providers "TENRUSL_MOCK_SECRET")) }}
{{- $wanted = append $wanted (list "secrets.providers.TENRUSL_MOCK_SECRET" $full "TENRUSL_MOCK_SECRET") }}
{{- end }}
{{- end }}
{{- if and .Values.postgresql.enabled (not .Values.postgresql.auth.password) }}
{{- $wanted = append $wanted (list "postgresql.auth.password" (printf "%s-postgresql" $full) "password") }}
{{- end }}
{{- if and .Values.redis.enabled (not .Values.redis.password) }}
{{- $wanted = append $wanted (list "redis.password" (printf "%s-redis" $full) "password") }}
{{- end }}
{{- $names := list }}
{{- $where := list }}
{{- range $wanted }}
{{- $names = append $names (index . 0) }}
{{- $where = append $where (printf "%s: kubectl -n %s get secret %s -o jsonpath='{.data.%s}' | base64 -d" (index . 0) $ns (index . 1) (index . 2)) }}
{{- end }}
{{- printf "Set %s (or existing Secrets: secrets.existingSecret, externalDatabase, externalRedis). On a release installed before, the current values are: %s." (join ", " $names) (join "; " $where) }}
{{- end }}

{{/* The annotations on a Secret the chart makes: it survives `helm uninstall` (README, "Uninstall"). */}}
{{- define "tenrusl.keptSecretAnnotations" -}}
helm.sh/resource-policy: keep
{{- end }}

{{/*
Checksums that roll pods when what they read changes, computed from the values only (never from a
generated or looked-up secret, nor from labels): identical renders, and no restart for a chart
bump that changes nothing a pod reads.
*/}}
{{- define "tenrusl.configChecksum" -}}
{{- toJson .Values.config | sha256sum }}
{{- end }}

{{- define "tenrusl.secretChecksum" -}}
{{- $given := dict "secrets" .Values.secrets "postgresql" .Values.postgresql.auth "redis" .Values.redis.password }}
{{- toJson (merge $given (dict "externalDatabase" .Values.externalDatabase "externalRedis" .Values.externalRedis)) | sha256sum }}
{{- end }}

{{/*
Pod-level settings every TenRusl pod template shares: the priority class, and the extra volumes
(e.g. a managed database's CA bundle, mounted with extraVolumeMounts).
*/}}
{{- define "tenrusl.priorityClassName" -}}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . | quote }}
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

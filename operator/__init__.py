"""The TenRusl operator: a ``WebhookRetryPolicy`` pauses and tunes the retry CronJob.

The folder is ``operator/`` but the import name is ``tenrusl_operator``, because ``operator`` is a
standard-library module that Python imports before any user code. Modules:

- ``crd``: the custom resource's names, its schema file, and defaulting and validation helpers.
- ``reconcile``: pure functions from a policy's spec to the policy file, the ConfigMap and status.
- ``kube``: the few Kubernetes API calls both the operator and the kubectl plugin make.
- ``handlers``: the kopf handlers (``kopf run -m tenrusl_operator.handlers`` finds them).
- ``cli``: ``tenrusl operator``; ``plugin``: ``kubectl tenrusl``.
"""

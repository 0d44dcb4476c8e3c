"""The TenRusl operator: a ``WebhookRetryPolicy`` pauses and tunes the retry CronJob.

The folder is ``operator/`` but the import name is ``tenrusl_operator``, because ``operator`` is a
standard-library module that Python imports before any user code. Modules:

- ``crd``: the custom resource's names, its schema file, and defaulting and validation helpers.
- ``reconcile``: pure functions from a policy's spec to the policy file, the ConfigMap and status.
- ``kube``: the few Kubernetes API calls both the operator and the kubectl plugin make.
- ``handlers``: the kopf handlers (``kopf run -m tenrusl_operator.handlers`` finds them).
- ``cli``: ``tenrusl operator``; ``plugin``: ``kubectl tenrusl``.
"""

if __name__ == "operator":
    # Python found this folder before the standard library's `operator` (the repository root is
    # first on sys.path, and nothing imported `operator` yet, e.g. under `python -S`). Everything
    # that needs the real module (collections, for one) would then fail with a puzzling error.
    raise ImportError(
        "TenRusl's operator/ folder was imported as the standard library's `operator` module, "
        "because the repository root is first on sys.path. Start Python in safe-path mode "
        "(`python -P -m ...` or PYTHONSAFEPATH=1) or use the console scripts (`tenrusl`, "
        "`kubectl-tenrusl`); the folder's import name is `tenrusl_operator`."
    )

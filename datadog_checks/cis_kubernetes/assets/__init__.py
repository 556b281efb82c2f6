"""The Datadog side of the check: its dashboard, monitors, logs pipeline, Cloud SIEM rules and security filter, set
up in an organisation by `python -m datadog_checks.cis_kubernetes.assets plan|apply` (or `cis-kubernetes-assets`).

It runs outside the Agent with the wheel's `assets` extra (datadog-api-client). The check never imports it and the
single file for checks.d leaves it out (devtools/amalgamate.py).
"""

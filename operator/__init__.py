"""Brook operator: the Kopf operator that runs Brook clusters on Kubernetes."""

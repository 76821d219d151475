"""Cluster metadata: log records, the image every broker holds, controller decisions."""

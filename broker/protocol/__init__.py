"""Kafka wire protocol: framing, headers, codecs, API version table."""

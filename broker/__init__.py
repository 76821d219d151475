"""Brook broker: a Kafka-compatible message broker."""

"""The compatibility suite: one scenario suite, several clients, Brook and Apache Kafka.

    python -m bench.compat [--clients confluent-kafka,kafka-python,java] [--only groups]

writes docs/compatibility.md and bench/results/compat-<time>.json.
"""

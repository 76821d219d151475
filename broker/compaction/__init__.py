"""Log compaction: keep the latest record per key in a compacted topic's closed segments.

Pure parts: `settings` (topic configs), `plan` (whether and what to clean),
`state` (the cleaner checkpoint and tombstone clock), `rewrite` (offset map and
batch filtering). `cleaner` runs them against live partition logs and swaps the
cleaned segments in through `brook.broker.storage.segment_swap`.
"""

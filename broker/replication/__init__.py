"""Data replication: leader-side follower tracking, follower fetching, acks=all waits."""

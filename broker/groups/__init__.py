"""Consumer groups: the classic rebalance protocol and committed offsets.

Pure parts (`placement`, `log_format`, `subscription`, `group`, `offsets`) hold no
I/O; `coordinator` wires them to the `__consumer_offsets` log and to asyncio.
"""

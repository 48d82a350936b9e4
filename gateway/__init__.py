"""EDI / message-integration gateway for Japanese port logistics.

The data flow is the package layout: channels (receive) → store (raw, committed) → formats (parse, validate)
→ mapping (map) → store.canonical (persist) → store.outbox → outbound (dispatch). See docs/architecture.md.
"""

__version__ = "0.1.0"

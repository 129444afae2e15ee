"""Data management plan snippets computed from the scanned facts (Science Europe text, maDMP JSON)."""

"""The archive layer and its SQLite store (archives/)."""

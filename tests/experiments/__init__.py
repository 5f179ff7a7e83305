"""The experiment scripts and their helpers (experiments/)."""

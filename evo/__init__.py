"""evo: an open-ended evolutionary data generator.

An LLM proposes candidates (the operator), a domain verifier scores them, and a
MAP-Elites archive keeps the best candidate in each region of an embedding space.
"""

__version__ = "0.1.0"

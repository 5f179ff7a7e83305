"""Domain plugins (domains/), with the adversarial corpora against their verifiers."""

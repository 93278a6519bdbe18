"""Customer data protection: encryption at rest and key rotation, masking before the LLM, erasure (and the
customer's own request, forget_me) and retention."""

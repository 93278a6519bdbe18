"""Customer data protection: encryption at rest and key rotation, masking before the LLM, erasure and retention."""

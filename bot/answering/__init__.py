"""Answers to knowledge questions: chunking, embeddings, the Chroma index, hybrid retrieval, extractive and LLM
answers with their grounding check and budget, feedback, evaluation, and the question turn (questions)."""

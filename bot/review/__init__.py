"""Conversation review for the manager console: the conversation index, NLU annotations, test stories, training
results, sales analytics."""

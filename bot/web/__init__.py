"""The console process: the web chat widget, the manager console and their accounts."""

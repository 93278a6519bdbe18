"""Selling: the catalog and its search, pricing rules, the cart, quotations (and their PDF), leads."""

"""Selling: the catalog and its search, pricing rules, the cart, quotations (and their PDF), leads, customer input
parsing (inputs), and the turns the actions call: shopping (cart), browsing (catalog), quoting, qualifying."""

"""Carts, orders, stock reservation, idempotent checkout and the order lifecycle."""

"""Categories and products: browsing, search and admin management."""

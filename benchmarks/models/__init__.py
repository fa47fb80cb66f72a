"""Model comparison at equal parameter budgets (the DS-NeRV paper's table, scaled to a CPU)."""

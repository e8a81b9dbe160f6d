"""The cost model: the price book (`prices`, `skus`, `overrides`, `retail`), attribution, PTU sharing,
the allocation and statement (`report`), budgets and their forecast, the FOCUS rows, and the cost CLI
commands. Pure functions over frames, except where `report.allocate` reads through a Lens."""

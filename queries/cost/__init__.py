"""Cost: the price book (`prices`), the Retail Prices API client (`retail`) and the cost CLI commands."""

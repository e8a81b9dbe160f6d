"""Data sources behind one small interface, chosen from settings in `queries.lens`."""

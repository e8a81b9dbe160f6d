"""Benchmarks: how fast and how big aoai-lens is, measured against the naive notebook way.

`python -m bench.run` (or `make bench`) writes bench/results.json and the table in bench/README.md.
"""

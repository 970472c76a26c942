"""Benchmark against tshark: capture generator (gen), runner (bench), profiler (hotspots), README table (table)."""

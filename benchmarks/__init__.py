"""groovebox benchmarks: `python -m benchmarks` (make bench) runs every section in one run."""

"""vidrag benchmarks: each module's ``main()`` prints a table and writes JSON to results/."""

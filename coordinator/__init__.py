"""The laptop side of greenfed: servicer, rounds, allocator, aggregation, store, reports."""

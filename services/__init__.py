"""Use cases: one module per family; commands in, typed results out. The only floor that wires
stores, signers, the TSA and documents together; api/ adapters call it."""

"""Looking at runs: learning curves (:mod:`.plots`). Heavy imports (matplotlib) happen
inside the functions that need them."""

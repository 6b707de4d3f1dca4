"""Deploy safety: the deploy gate (budget policy), later canary analysis and migration safety."""

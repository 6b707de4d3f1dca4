"""SLOs and error budgets: the spec section, the pure math, evaluation and the budget policy."""

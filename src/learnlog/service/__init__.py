"""Use cases: take a unit of work, call domain rules, stage the results. Never commit."""

"""Local-only code (offline provider, local stack helpers): never deployed with the Lambdas."""

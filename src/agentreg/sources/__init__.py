"""Discovery sources: each turns what it finds into observations for ``services.reconcile``; none touches
the store."""

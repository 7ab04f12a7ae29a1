from console_support import paper_run  # noqa: F401  (the module fixture: a ledger from a real paper run)

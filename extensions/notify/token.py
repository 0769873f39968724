"""The name of the Slurm-events token in the billing service's environment: the hub's root
sets it without loading the inbox (which loads the ledger's models)."""

SLURM_EVENTS_TOKEN_ENV = "COREHOUR_SLURM_EVENTS_TOKEN"

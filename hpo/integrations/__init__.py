"""Integrations of hpo with training libraries, one module each, imported only when asked for:
`import hpo` imports none of them (nor the library they integrate).

- hpo.integrations.transformers: HpoCallback, a transformers.TrainerCallback that reports a
  Trainer's evaluations to a command trial, stops training when the search prunes the trial,
  and names the best checkpoint Trainer kept.
"""

"""What decides and applies: a key request's way from the queue to Tyk and the record.

`runtime` holds the per-process services the rest needs; `sources` are the portal
adapters; `enqueue` puts work on the queue and `jobs` are what RQ runs; `decide` decides
and applies one request; `reconcile` finds what no webhook announced; `review` is the
inbox people decide from; `billing` is what a billing change does; `notify` tells people;
`health`, `metrics` and `backtest` report.
"""

"""Architecture search: define-by-run spaces over every family, hard budgets from the cost model,
strategies as Optuna samplers, crash-safe studies in Optuna storages, and reports.

Built on Optuna (its trial API, samplers, pruners and storages) rather than beside it; see
:mod:`archsmith.search.records` for what each trial records in its study.
"""

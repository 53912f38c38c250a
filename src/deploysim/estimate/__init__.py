"""deploysim.estimate: rates, intervals, comparisons, planning and tail forecasts.

Pure statistics (no I/O): ``intervals`` (Wilson, Jeffreys, Clopper–Pearson), ``floor``
(measurement floor, with the grader's false-positive rate), ``correction`` (Rogan–Gladen with a
validation-aware interval), ``design`` (rates with several samples per prefix and design
weights), ``comparisons`` (Fisher, McNemar, rate ratios, Benjamini–Hochberg), ``plan`` (sample
sizes), ``tail`` (Gumbel-tail worst-query risk and the log-normal baseline), ``predictive``
(predictive distributions of a realised count), ``discrepancy`` (the simulation-to-production
discrepancy: prior and estimate from past validations), ``coverage`` (interval coverage
study). The stage entry point is ``stage.run(inputs, store)``; ``validation``
and ``probs_file`` read validation records and probability files. Formulas: docs/statistics.md.
"""

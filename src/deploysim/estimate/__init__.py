"""deploysim.estimate: rates, intervals, comparisons, planning and tail forecasts.

Pure statistics (no I/O): ``intervals`` (Wilson, Jeffreys, Clopper–Pearson), ``floor``
(measurement floor), ``correction`` (Rogan–Gladen with a validation-aware interval),
``comparisons`` (Fisher, McNemar, rate ratios, Benjamini–Hochberg), ``plan`` (sample sizes),
``tail`` (Gumbel-tail worst-query risk and the log-normal baseline), ``coverage`` (interval
coverage study). The stage entry point is ``stage.run(inputs, store)``; ``validation``
and ``probs_file`` read validation records and probability files. Formulas: docs/statistics.md.
"""

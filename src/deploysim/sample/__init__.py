"""deploysim.sample: uniform, seeded prefix sampling over eligible turns (DESIGN.md step 3).

Entry points: :func:`deploysim.sample.sampler.sample_prefixes` (in memory) and
:func:`deploysim.sample.stage.run` (the pipeline stage writing a run store);
see docs/sources-and-sampling.md.
"""

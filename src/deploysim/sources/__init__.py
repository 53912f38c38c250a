"""deploysim.sources: streaming log readers (DESIGN.md step 1).

Entry points: :class:`deploysim.sources.reader.SourceReader` (scanned rows + counts) and
:func:`deploysim.sources.reader.iter_conversations` (Conversation records + counts). Format
converters live in :mod:`deploysim.sources.formats`; see docs/sources-and-sampling.md.
"""

"""Studies: a matrix of models x datasets x splits x observers x devices x variants.

``edgetpu-bench study STUDY.toml`` (or ``python -m benchmark.study``) expands
the study file (:mod:`.spec`), keys every cell by content (:mod:`.cells`),
skips the finished ones, runs the rest on a local process pool or on Ray
(:mod:`.executors`), merges sharded cells (:mod:`.merge`) and writes one tidy
table and one comparison report (:mod:`.runner`). See docs/studies.md.
"""

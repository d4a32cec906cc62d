"""Explain an int8 drop: ``python -m benchmark.diagnose`` / ``edgetpu-bench diagnose``.

Runtime only (the LiteRT interpreter, no TensorFlow). For an int8 model and,
where present, its float twin, the evaluation images and the calibration
(representative) images are run through interpreters that keep every
intermediate tensor (``experimental_preserve_all_tensors``), and per tensor:

- the share of values at the int8 limits (eval vs calibration) and, with the
  float model, the share of float values outside the tensor's int8 range;
- the range the eval data uses vs the tensor's int8 range;
- the per-layer error: *layer* error (each float op run on the dequantized
  int8 inputs of the int8 op, what TFLite's ``QuantizationDebugger`` reports)
  and *accumulated* error (the float model's tensor vs the int8 model's), as
  RMSE in units of the tensor's scale and SQNR in dB;

plus the input-clipping check, logit statistics (clipping, ties in the top-1,
direction of new errors), the calibration set's size and class/group mix, and
a verdict naming the most likely mechanism with its evidence.

Modules: :mod:`~benchmark.diagnose.graph` (pairing the two graphs, one-op
float models), :mod:`~benchmark.diagnose.collect` (streaming statistics),
:mod:`~benchmark.diagnose.verdict` (the rules), :mod:`~benchmark.diagnose.cli`
(data, output).
"""

"""edgetpu-bench: what does full-integer quantization do to my model?"""

__version__ = "0.1.0"

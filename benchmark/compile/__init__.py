"""Edge TPU compilation: the ``edgetpu_compiler`` wrapper, its log parser, a static analyzer."""

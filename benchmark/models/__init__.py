"""Model families and their registry (building a model needs TensorFlow/Keras)."""

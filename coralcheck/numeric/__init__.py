"""Numeric checks (the `[numeric]` extra): run float and quantized models on the same samples.

LiteRT (`ai-edge-litert`), or TensorFlow's interpreter as a fallback, is imported only inside
the functions that run models; sample loading and the metrics need only numpy.
"""

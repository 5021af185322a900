"""What the tests share, so that no test module imports another: builders of models no converter
writes (`tflite_builder`, `edgetpu_builder` for compiled ones, `nets.Net`, `hostile` for hostile
input), hand-made reports and validators (`reports`), a source model's findings (`findings`),
the stand-in compiler (`compiler`), the corpus comparison (`agreement`), Keras models
(`keras_toys`, `user_conversions`), the fuzzing engine (`fuzzing`) and the browser (`browser`).
"""

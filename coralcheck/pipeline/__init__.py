"""The pipeline: a model file's analysis and rules put together into its ModelReport.

`coralcheck.api.check_model` picks the path for a file:

- `source.analyze`: a source model: the placement prediction, the source-model rules, the
  parameter memory and the latency estimate;
- `compiled.inspect_compiled`: a compiled model on its own (the C001–C011 rules);
- `pair.compare_with_compiled`: a source model's report filled from its compiled twin
  (`--compiled`; the C020–C024 rules);
- `compiler.compile_and_compare`: `--compile`, a run of the real edgetpu_compiler compared like
  a twin (the C030–C040 rules).

`log.log_report` is `coralcheck log`: a compiler log against the prediction (C050).
"""

"""analyze: what a model does on the Edge TPU, computed (the rules in coralcheck.checks phrase
it as findings; coralcheck.pipeline puts both into a ModelReport).

- `placement.predict`: what edgetpu_compiler does with every op of the main subgraph, and why
  (per-op verdicts in `verdicts.py`, partitioning in `partition.py`, root causes in `causes.py`);
- `cost.op_macs`, `memory.estimate_memory`: MACs, parameter bytes against the on-chip cache;
- `latency`: milliseconds per inference on the target device;
- `compiled`: the facts of a compiled model (segments, executables, parameter memory);
- `pair.map_pair`: where every source op of a (source, compiled) pair really runs;
- `logcompare`: a compiler log's op counts against a placement;
- `overview`: inputs, outputs, op shapes and op counts of any model; `opgraph`: its data flow
  (for the graph views); `repeats`: one finding for repeats of one finding.
"""

"""The real edgetpu_compiler: reading what it prints, and running it.

- `log.parse_log(text)`: its console output or `.log` file → a `CompilerLog` (`records.py`);
  the per-model summary block is read by `blocks.py`, error lines are classified into failure
  kinds by `failures.py` (the op statuses it prints are named in coralcheck/edgetpu/statuses.py);
- `run.run_compiler(...)`: find and run it (`--compile`), through `process.py`.

Nothing here knows the rules: the C rules that report what it did are coralcheck.checks.compiler.
"""

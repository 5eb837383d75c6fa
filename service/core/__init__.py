"""The computation: the reference `Value` class, the op registry, graphs built and evaluated,
grading, expressions, pictures and the compiled fast path. No Flask, no HTTP, no I/O."""

"""The run engine: the train and test loops and what a run needs around them: the run context
(rank, device, distributed state), DDP, determinism, compile, the training display, benchmarks."""

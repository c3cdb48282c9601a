"""Static-graph versus eager benchmarking suite for TensorFlow: runner, statistics, store."""

"""``memzoo speed``: throughput, step latency and state bytes of the memory layers, against
reference implementations and the machine's measured matmul peak."""

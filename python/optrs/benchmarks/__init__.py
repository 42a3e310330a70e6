"""The benchmark harness behind ``optrs bench`` (and ``benches/``): ``adam`` times optrs's Adam
against NumPy, torch and C yardsticks of this machine's memory bandwidth; ``cnn`` times a training
step of the seed's MNIST CNN against torch's. Both print Markdown tables."""

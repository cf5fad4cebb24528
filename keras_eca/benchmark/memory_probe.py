"""`python -m keras_eca.benchmark.memory_probe SPEC_JSON`: peak training
memory of one model in a fresh process; prints one JSON line."""

import json
import sys

from keras_eca.benchmark import runner


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    print(json.dumps(runner.probe_training_memory(json.loads(argv[0]))))


if __name__ == "__main__":
    main()

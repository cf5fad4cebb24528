"""Runs the speed and memory benchmark; same options as `keras-eca benchmark`.

    python benchmarks/run_benchmark.py                 # the full suite, 224 px
    python benchmarks/run_benchmark.py --pair eca_resnet18:resnet18 --image-size 64
"""

import sys

from keras_eca import cli

if __name__ == "__main__":
    sys.exit(cli.main(["benchmark", *sys.argv[1:]]))

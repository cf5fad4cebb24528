"""Runs `keras_eca.training.train` in its own process for the resume tests.

    python -m tests.training.train_worker SETTINGS_JSON [--kill-at-step N]
        [--kill-during-save N]

`--kill-at-step N` SIGKILLs the process right after global step N;
`--kill-during-save N` SIGKILLs it half way through writing the N-th
backup file of this process (a torn temporary file is left behind);
`--kill-during-export` SIGKILLs it while it writes the final SavedModel.
"""

import argparse
import json
import os
import signal

import numpy as np


def _kill():
    os.kill(os.getpid(), signal.SIGKILL)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("settings")
    parser.add_argument("--kill-at-step", type=int)
    parser.add_argument("--kill-during-save", type=int)
    parser.add_argument("--kill-during-export", action="store_true")
    args = parser.parse_args()
    settings = json.loads(args.settings)

    import keras

    from keras_eca import training

    class KillAtStep(keras.callbacks.Callback):
        def __init__(self, step):
            super().__init__()
            self.step = step

        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.optimizer.iterations.numpy()) == self.step:
                _kill()

    callbacks = []
    if args.kill_at_step is not None:
        callbacks.append(KillAtStep(args.kill_at_step))
    if args.kill_during_save is not None:
        savez = np.savez
        count = [0]

        def dying_savez(file, **arrays):
            count[0] += 1
            if count[0] == args.kill_during_save:
                savez(file, **dict(list(arrays.items())[: len(arrays) // 2]))
                file.flush()
                _kill()
            savez(file, **arrays)

        np.savez = dying_savez
    if args.kill_during_export:
        from keras_eca.training import run_folder

        def dying_export(model, path):
            path.parent.joinpath(f".{path.name}.x.partial").mkdir()
            _kill()

        run_folder.export_saved_model = dying_export
    training.train(callbacks=callbacks, **settings)


if __name__ == "__main__":
    main()

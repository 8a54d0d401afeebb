"""``python -m keras_pose.cli``: the `keras-pose` command."""

import sys

from keras_pose.cli import main

if __name__ == "__main__":
    sys.exit(main())

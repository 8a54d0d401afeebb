"""The `keras-pose` command line, one module per verb.

``keras_pose.cli:main`` is the console script; ``python -m keras_pose.cli``
runs the same. `keras_pose.cli.main` (the module: import it with
``importlib.import_module("keras_pose.cli.main")``; the package attribute
``main`` is the function) holds the parser and the error handling;
`presets`, `convert`, `predict` (+ `predict_files`), `evaluate`, `train`
and `export` one verb each, `common` what they share. Library logic lives in
the library (`keras_pose.datasets.load_detections`,
`keras_pose.datasets.load_pose_annotations`, `keras_pose.video.predict_video`).
"""

from keras_pose.cli.main import VERBS, build_parser, main

__all__ = ["VERBS", "build_parser", "main"]
